"""Trains SRCNN on patch records: `make train SCALE=3 [MODEL=9-5-5 EPOCHS=.. RUN=runs/x3]`.

python -m pipelines.train --records=tfrecords/x3 --run_dir=runs/x3 --model=9-5-5
"""

from __future__ import annotations

import json
import os

from absl import app, flags, logging

from .common import fail, parse_scales
from srcnn_tf import model as model_lib
from srcnn_tf import records as records_lib
from srcnn_tf import runs
from srcnn_tf import train as train_lib

_M = model_lib.ModelConfig()
_T = train_lib.TrainConfig(record_dir="", run_dir="")

_RECORDS = flags.DEFINE_string("records", None, "Records folder (tfrecords/x3).", required=True)
_RUN_DIR = flags.DEFINE_string("run_dir", None, "Run directory (created; resumed if present).",
                               required=True)
_SCALE = flags.DEFINE_list("scale", None, "Expected scale(s); checked against the records "
                           "(1.5,2,3 for a multi-scale set).")
_RECIPE = flags.DEFINE_enum("recipe", "fast", sorted(train_lib.RECIPES),
                            "fast: the measured default (Adam, He init, cosine); paper: SGD "
                            "momentum 0.9, lr 1e-4 (last layer 1e-5), Gaussian init, constant lr. "
                            "Explicit flags override the recipe.")
_MODEL = flags.DEFINE_string("model", _M.preset, "Preset 9-1-5, 9-3-5, 9-5-5 or any 'f1-f2-f3'.")
_N1 = flags.DEFINE_integer("n1", _M.n1, "Filters of the first layer.", lower_bound=1)
_N2 = flags.DEFINE_integer("n2", _M.n2, "Filters of the second layer.", lower_bound=1)
_PADDING = flags.DEFINE_enum("padding", _M.padding, ["valid", "same"], "Convolution padding.")
_SCALE_INPUT = flags.DEFINE_bool(
    "scale_input", None, "Tell the model each patch's factor (two constant input planes; "
    "default: on for multi-scale records). A single-scale --init_from model starts it with "
    "zero weights on the planes.")
_BLIND = flags.DEFINE_float("blind_fraction", _T.blind_fraction,
                            "With --scale_input: the fraction of examples trained without their "
                            "factor (the model then also serves callers that do not know it).",
                            lower_bound=0.0, upper_bound=0.99)
_INIT = flags.DEFINE_enum("init", None, ["he", "gaussian"], "Weight init (recipe default).")
_OPTIMIZER = flags.DEFINE_enum("optimizer", None, ["adam", "sgd"], "Optimiser (recipe default).")
_LR = flags.DEFINE_float("learning_rate", None, "Base learning rate (recipe default).",
                         lower_bound=0.0)
_LR_MULT = flags.DEFINE_list("lr_multipliers", None,
                             "Per-layer learning-rate multipliers, 3 values (default 1,1,0.1).")
_SCHEDULE = flags.DEFINE_enum("schedule", None, ["constant", "cosine", "step"],
                              "Learning-rate schedule (recipe default).")
_WARMUP = flags.DEFINE_integer(
    "warmup_steps", _T.warmup_steps, "Raise the learning rate linearly from 0 over the first N "
    "steps (0: none): for warm starts, whose fresh Adam moments otherwise move a converged "
    "model off its optimum.", lower_bound=0)
_EPSILON = flags.DEFINE_float(
    "adam_epsilon", _T.adam_epsilon, "Adam's epsilon: Adam moves a weight by about the learning "
    "rate whatever its gradient's size, and a larger epsilon damps weights whose gradients are "
    "smaller than it (ReLU filters that barely fire).", lower_bound=0.0)
_BATCH = flags.DEFINE_integer("batch_size", _T.batch_size, "Global batch size.", lower_bound=1)
# Without --epochs, --max_steps or --max_minutes a run trains for DEFAULT_MINUTES, its schedule
# decaying over them: measured to pass the ECCV x3 result on T91 in 15 CPU minutes (README,
# "Time to quality").
DEFAULT_MINUTES = 15.0
DEFAULT_EPOCH_CAP = 1000
_EPOCHS = flags.DEFINE_integer("epochs", None, f"Epochs over the training patches (default: "
                               f"{_T.epochs} when --max_steps or --max_minutes is given, else "
                               f"up to {DEFAULT_EPOCH_CAP} within the default "
                               f"{DEFAULT_MINUTES:g} minutes).", lower_bound=1)
_MAX_STEPS = flags.DEFINE_integer("max_steps", 0, "Stop after this many steps (0: epochs).",
                                  lower_bound=0)
_MAX_MINUTES = flags.DEFINE_float("max_minutes", None, "Wall-clock budget (0: none); a "
                                  "cosine or step schedule then decays over it. Default: "
                                  f"{DEFAULT_MINUTES:g} when neither --epochs nor --max_steps "
                                  "is given, else none.", lower_bound=0.0)
_AUGMENT = flags.DEFINE_bool("augment", None, "Random flips/rot90 on the fly (recipe default: "
                             "on for fast, off for paper; --noaugment turns it off).")
_CACHE = flags.DEFINE_bool("cache", _T.cache, "Keep the serialised records in memory and draw "
                           "each epoch as a permutation of all patches (--nocache: a shuffle "
                           "buffer over the stored order, which keeps each image together).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed for init, shuffling and augmentation.")
_DETERMINISTIC = flags.DEFINE_bool("deterministic", False, "Deterministic data order.")
_VAL_EVERY = flags.DEFINE_integer("val_every", _T.val_every, "Validate every N steps.",
                                  lower_bound=1)
_CKPT_EVERY = flags.DEFINE_integer("checkpoint_every", _T.checkpoint_every,
                                   "Checkpoint every N steps.", lower_bound=1)
_LOG_EVERY = flags.DEFINE_integer("log_every", _T.log_every, "Log every N steps.", lower_bound=1)
_KEEP = flags.DEFINE_integer("keep_checkpoints", _T.keep_checkpoints, "Checkpoints kept.",
                             lower_bound=1)
_MIXED = flags.DEFINE_enum("mixed_precision", "auto",
                           ["auto", "none", "mixed_float16", "mixed_bfloat16"],
                           "auto: mixed_float16 on GPU, mixed_bfloat16 on CPUs with native "
                           "bfloat16 (AVX512-BF16/AMX), float32 elsewhere.")
_DEVICES = flags.DEFINE_list("devices", [], "Mirror over these devices (default: all GPUs).")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
_EMA = flags.DEFINE_float(
    "ema_decay", _T.ema_decay, "Keep an exponential moving average of the weights with this "
    "decay (e.g. 0.999; 0: off): validation, the best checkpoint and exports then use the "
    "average, and metrics.jsonl logs the last iterate's PSNR beside it (val_psnr_raw).",
    lower_bound=0.0, upper_bound=0.99999)
_INIT_FROM = flags.DEFINE_string(
    "init_from", None, "Warm start (fine-tuning): a SavedModel version folder "
    "(saved_models/srcnn_x3/1), a model folder (its newest version), a run directory or a "
    "weights file (.npz, as make jax-bundle writes); ignored when --run_dir already has a "
    "checkpoint to resume.")

flags.register_validator(
    "init_from", lambda p: p is None or os.path.exists(os.path.join(p, "config.json"))
    or os.path.exists(os.path.join(runs.newest_version(p), "saved_model.pb"))
    or (p.endswith(".npz") and os.path.isfile(p)),
    message="--init_from must be a SavedModel version folder (with saved_model.pb), a folder of "
    "them, a run directory (with config.json) or a weights file (.npz)")


@flags.validator("lr_multipliers", message="--lr_multipliers needs 3 positive numbers")
def _check_mult(value: list[str] | None) -> bool:
    if value is None:
        return True
    try:
        return len(value) == 3 and all(float(v) > 0 for v in value)
    except ValueError:
        return False


@flags.validator("scale")
def _check_scale(value: list[str] | None) -> bool:
    if value:
        parse_scales(value, "scale")
    return True


@flags.validator("model", message="--model must be f1-f2-f3 with odd sizes, e.g. 9-5-5")
def _check_model(value: str) -> bool:
    try:
        model_lib.parse_preset(value)
    except ValueError:
        return False
    return True


def _scale_input() -> bool:
    """--scale_input, on by default for multi-scale records (several factors in the manifest)."""
    if _SCALE_INPUT.value is not None:
        return _SCALE_INPUT.value
    try:
        return isinstance(records_lib.load_manifest(_RECORDS.value)["scale"], list)
    except (FileNotFoundError, ValueError):
        return False  # the trainer reports the missing records


def budget(epochs: int | None, max_steps: int, max_minutes: float | None) -> tuple[int, float]:
    """(epochs, max_minutes) for the given flags: the default minutes only when no budget is
    given at all."""
    if epochs is None and not max_steps and max_minutes is None:
        return DEFAULT_EPOCH_CAP, DEFAULT_MINUTES
    return (_T.epochs if epochs is None else epochs), (max_minutes or 0.0)


def config_from_flags() -> train_lib.TrainConfig:
    epochs, max_minutes = budget(_EPOCHS.value, _MAX_STEPS.value, _MAX_MINUTES.value)
    chosen = {
        "optimizer": _OPTIMIZER.value, "learning_rate": _LR.value, "schedule": _SCHEDULE.value,
        "lr_multipliers": tuple(float(v) for v in _LR_MULT.value) if _LR_MULT.value else None,
        "init": _INIT.value, "augment": _AUGMENT.value,
    }
    return train_lib.make_config(
        _RECORDS.value, _RUN_DIR.value, _RECIPE.value,
        model_lib.ModelConfig(preset=_MODEL.value, n1=_N1.value, n2=_N2.value,
                              padding=_PADDING.value, scale_input=_scale_input()),
        blind_fraction=_BLIND.value,
        scale=parse_scales(_SCALE.value, "scale") if _SCALE.value else None,
        batch_size=_BATCH.value, warmup_steps=_WARMUP.value, adam_epsilon=_EPSILON.value,
        epochs=epochs,
        max_steps=_MAX_STEPS.value, max_minutes=max_minutes,
        cache=_CACHE.value, seed=_SEED.value, deterministic=_DETERMINISTIC.value,
        val_every=_VAL_EVERY.value, checkpoint_every=_CKPT_EVERY.value,
        log_every=_LOG_EVERY.value, keep_checkpoints=_KEEP.value,
        mixed_precision="" if _MIXED.value == "none" else _MIXED.value,
        devices=tuple(_DEVICES.value), progress=_PROGRESS.value,
        init_from=_INIT_FROM.value or "", ema_decay=_EMA.value,
        **{k: v for k, v in chosen.items() if v is not None})


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = config_from_flags()
    try:
        summary = train_lib.train(config)
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    logging.info("done: %s", json.dumps(summary))


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
