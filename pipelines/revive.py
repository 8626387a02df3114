"""Refills the dead filters of a trained model for a warm start: `make revive`.

python -m pipelines.revive --init_from=saved_models/srcnn_x4 --records=tfrecords/291g_ds/x4 \
    --out_dir=bundle

Measures which ReLU filters never fire on every --sample_every-th training patch of --records,
gives each dead one a noisy copy of a live filter of its layer (sharing the live one's outgoing
weights, so the output barely moves: filters.revive) and writes the weights as
<out_dir>/<model>-<version>+split.npz, which `make train INIT=...` starts from.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
from absl import app, flags

from .common import fail
from srcnn_tf import filters, records, runs, weights
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers

_INIT_FROM = flags.DEFINE_string("init_from", None, "The model to revive: an exported version "
                                 "folder, a model folder (its newest version), a run directory "
                                 "or a weights file (.npz).", required=True)
_RECORDS = flags.DEFINE_string("records", None, "Records whose training patches decide which "
                               "filters are dead (those the model trains on next).",
                               required=True)
_OUT_DIR = flags.DEFINE_string("out_dir", "bundle", "Folder to write the weights file into.")
_SAMPLE_EVERY = flags.DEFINE_integer(
    "sample_every", 211, "Take every Nth training patch (211: ~3,000 of the 630,000 patches of "
    "T91 + BSD200 + General100 with the downscaled copies).", lower_bound=1)
_NOISE = flags.DEFINE_float("noise", 0.01, "Noise on each copy's incoming weights, as a "
                            "fraction of the copied kernel's standard deviation (0: the output "
                            "is unchanged, and the copies stay equal in training).",
                            lower_bound=0.0)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the noise.")

flags.register_validator("records", lambda p: os.path.isfile(os.path.join(p, "manifest.json")),
                         message="--records must be a records folder (with manifest.json; "
                         "make records)")


def revive(source: str, record_dir: str, out_dir: str, sample_every: int, noise: float,
           seed: int) -> str:
    """Writes the revived weights of `source`; returns the path. Prints what it did."""
    info = runs.describe_init(source)
    config = ModelConfig(**info["model"])
    if config.scale_input:
        raise ValueError(f"--init_from: {source} is a multi-scale (scale_input) model; revive "
                         f"takes a single-scale one")
    patches = np.stack([p["input"] for p in itertools.islice(records.read_patches(record_dir),
                                                             0, None, sample_every)])
    if patches.shape[-1] != config.in_channels:
        raise ValueError(f"--records: {record_dir} holds {patches.shape[-1]}-channel patches, "
                         f"{source} takes {config.in_channels}")
    model = build_srcnn(config, dtype="float32")
    runs.restore_weights(model, info.pop("checkpoint"))
    reference = model.predict(patches, batch_size=256, verbose=0)
    counts = filters.revive(model, patches, noise=noise, seed=seed)
    moved = np.abs(model.predict(patches, batch_size=256, verbose=0) - reference)
    for layer, (before, after) in zip(conv_layers(model), counts):
        print(f"{layer.name}: {before} of {layer.filters} filters dead on {len(patches)} "
              f"patches, {after} after")
    print(f"output moved by at most {moved.max():.2e} (rms {np.sqrt((moved ** 2).mean()):.2e}, "
          f"pixel values in [0, 1])")
    info["label"] = f"{info['label']}+split"
    path = os.path.join(out_dir, info["label"].replace("/", "-") + ".npz")
    os.makedirs(out_dir, exist_ok=True)
    weights.write_weights(path, [layer.get_weights() for layer in conv_layers(model)], info)
    return path


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        path = revive(_INIT_FROM.value, _RECORDS.value, _OUT_DIR.value, _SAMPLE_EVERY.value,
                      _NOISE.value, _SEED.value)
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    print(f"{path}: start a training from it with make train INIT={path}")


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
