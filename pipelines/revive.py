"""Refills the dead filters of a trained model for a warm start: `make revive`.

python -m pipelines.revive --init_from=saved_models/srcnn_x4 --records=tfrecords/291g_ds/x4 \
    --out_dir=bundle

Measures which ReLU filters never fire on every --sample_every-th training patch of --records,
gives each dead one a noisy copy of a live filter of its layer (sharing the live one's outgoing
weights, so the output barely moves: filters.revive) and writes the weights as
<out_dir>/<model>-<version>+split.npz, which `make train INIT=...` starts from.
"""

from __future__ import annotations

from absl import app, flags

from .common import fail, require_records_folder
from srcnn_tf import filters, weights
from srcnn_tf.model import conv_layers

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
_DEAD_BELOW = flags.DEFINE_float(
    "dead_below", 0.0, "Count a filter as dead when it fires at no more than this fraction of "
    "the positions (0: only filters that never fire). Above 0 the rarely firing filters' part of "
    "the output is dropped: on srcnn_x3/13, 0.01 cost 0.020 dB held-out, more than training "
    "won back (docs/training.md).", lower_bound=0.0, upper_bound=0.5)

require_records_folder("records")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        revived = filters.revive_weights(_INIT_FROM.value, _RECORDS.value, _SAMPLE_EVERY.value,
                                         _NOISE.value, _SEED.value, _DEAD_BELOW.value)
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    for name, total, before, after in revived.layers:
        print(f"{name}: {before} of {total} filters dead on {revived.patches} patches, "
              f"{after} after" + (f" (dead: firing at <= {_DEAD_BELOW.value:g})"
                                  if _DEAD_BELOW.value else ""))
    print(f"output moved by at most {revived.moved[0]:.2e} (rms {revived.moved[1]:.2e}, pixel "
          f"values in [0, 1])")
    path = weights.write_warm_start(
        _OUT_DIR.value, [layer.get_weights() for layer in conv_layers(revived.model)],
        revived.info)
    print(f"{path}: start a training from it with make train INIT={path}")


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
