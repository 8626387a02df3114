"""Trains SRCNN on JAX from an image pack, where TensorFlow is absent (an accelerator machine).

python -m pipelines.train_jax --pack=bundle/images.npz --run_dir=runs/x3_jax --scale=3 \
    --init=bundle/srcnn_x3-6.npz --minutes=8

The pack and the warm-start weights come from `make jax-bundle`; export the run where
TensorFlow is with `make export RUN=runs/x3_jax`. Needs jax, numpy, pillow, opencv, absl-py.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from .common import fail, parse_scales
from srcnn_tf import jax_train
from srcnn_tf.architecture import ModelConfig, parse_preset

_D = jax_train.JaxTrainConfig(run_dir="", scale=(3,))

_PACK = flags.DEFINE_string("pack", None, "Image pack (make jax-bundle).", required=True)
_RUN_DIR = flags.DEFINE_string("run_dir", None, "Run directory to create.", required=True)
_SCALE = flags.DEFINE_list("scale", None, "Factor(s) to train: 3, or 1.5,2,3 (multi-scale; "
                           "default: the pack's records).")
_INIT = flags.DEFINE_string("init", None, "Warm-start weights: a .npz from make jax-bundle, "
                            "or a run directory of this trainer (its best weights).")
_MODEL = flags.DEFINE_string("model", "9-5-5", "Preset 9-1-5, 9-3-5, 9-5-5 or 'f1-f2-f3'.")
_N1 = flags.DEFINE_integer("n1", 64, "Filters of the first layer.", lower_bound=1)
_N2 = flags.DEFINE_integer("n2", 32, "Filters of the second layer.", lower_bound=1)
_MINUTES = flags.DEFINE_float("minutes", _D.minutes, "Training budget (wall clock).",
                              lower_bound=0.01)
_BATCH = flags.DEFINE_integer("batch_size", _D.batch_size, "Batch size.", lower_bound=1)
_LR = flags.DEFINE_float("learning_rate", _D.learning_rate, "Base learning rate (cosine).",
                         lower_bound=1e-12)
_WARMUP = flags.DEFINE_float("warmup_fraction", _D.warmup_fraction, "Linear learning-rate "
                              "warm-up over this share of the budget.", lower_bound=0.0,
                              upper_bound=0.99)
_AUGMENT = flags.DEFINE_bool("augment", _D.augment, "Random flips/transposes per patch.")
_BLIND = flags.DEFINE_float("blind_fraction", 0.15, "Multi-scale: share of patches trained "
                            "without their factor.", lower_bound=0.0, upper_bound=0.99)
_PRECISION = flags.DEFINE_enum("precision", _D.precision, ["bfloat16", "float32"],
                               "Convolution precision (the reconstruction stays float32).")
_STEPS_PER_CALL = flags.DEFINE_integer("steps_per_call", _D.steps_per_call,
                                       "Steps per compiled call.", lower_bound=1)
_VAL_EVERY = flags.DEFINE_float("val_every_minutes", _D.val_every_minutes,
                                "Validate every this many minutes.", lower_bound=0.01)
_SEED = flags.DEFINE_integer("seed", 0, "Seed for init, sampling and augmentation.")
_EMA = flags.DEFINE_float("ema_decay", _D.ema_decay, "Average of the weights kept beside them "
                          "(0: off): validated and kept as best (make train's --ema_decay).",
                          lower_bound=0.0, upper_bound=0.99999)

flags.register_validator("pack", lambda p: os.path.isfile(p),
                         message="--pack must be an image pack file (make jax-bundle)")
flags.register_validator("init", lambda p: p is None or os.path.exists(p),
                         message="--init must be a weights file (.npz, make jax-bundle) or a "
                                 "run directory")
flags.register_validator("run_dir", lambda p: not os.path.exists(os.path.join(p, "config.json")),
                         message="--run_dir already holds a run: name a new one")


@flags.validator("scale")
def _check_scale(value: list[str] | None) -> bool:
    if value:
        parse_scales(value, "scale", upper=4.0)
    return True


@flags.validator("model", message="--model must be f1-f2-f3 with odd sizes, e.g. 9-5-5")
def _check_model(value: str) -> bool:
    try:
        parse_preset(value)
    except ValueError:
        return False
    return True


def config_from_flags() -> jax_train.JaxTrainConfig:
    from srcnn_tf import packs

    scales = (parse_scales(_SCALE.value, "scale", upper=4.0) if _SCALE.value
              else packs.pack_scales(packs.read_pack(_PACK.value), None))
    model = ModelConfig(preset=_MODEL.value, n1=_N1.value, n2=_N2.value,
                        scale_input=len(scales) > 1)
    return jax_train.JaxTrainConfig(
        run_dir=_RUN_DIR.value, scale=scales, model=model, minutes=_MINUTES.value,
        batch_size=_BATCH.value, learning_rate=_LR.value, warmup_fraction=_WARMUP.value,
        augment=_AUGMENT.value,
        blind_fraction=_BLIND.value if model.scale_input else 0.0,
        precision=_PRECISION.value, steps_per_call=_STEPS_PER_CALL.value,
        val_every_minutes=_VAL_EVERY.value, seed=_SEED.value, ema_decay=_EMA.value)


def main(argv: list[str]) -> None:
    del argv
    try:
        config = config_from_flags()
        summary = jax_train.train(config, _PACK.value, _INIT.value)
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    logging.info("%s: best val %.4f dB at step %d of %d (%.1f min, %.0f patches/s)",
                 config.run_dir, summary["best_val_psnr"], summary["best_step"],
                 summary["steps"], summary["minutes"], summary["patches_per_s"])


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
