"""Learns the sparse-coding baseline's coupled dictionaries (Yang et al., TIP 2010):
`make sc-dictionary SCALE=3 [DATA=dir1,dir2]` writes saved_models/sc_x3/<version>/, which
`make evaluate MODEL=sc` uses. With no DATA, the photographs bundled with scikit-image.
"""

from __future__ import annotations

import os
import time

from absl import app, flags, logging

from .common import fail
from srcnn_tf import sources, sparse_coding

_SCALE = flags.DEFINE_integer("scale", 3, "Upscaling factor.", lower_bound=2)
_DATA = flags.DEFINE_list("data", [], "Folders of training images (default: the photographs "
                          "bundled with scikit-image).")
_OUT_DIR = flags.DEFINE_string("out_dir", "saved_models", "Writes <out_dir>/sc_x<scale>/<v>/.")
_ATOMS = flags.DEFINE_integer("atoms", 1024, "Dictionary size.", lower_bound=2)
_PATCHES = flags.DEFINE_integer("patches", 100_000, "Training patch pairs sampled.",
                                lower_bound=100)
_LAMBDA = flags.DEFINE_float("train_lambda", 0.15, "Sparsity weight while learning.",
                             lower_bound=0.0)
_EPOCHS = flags.DEFINE_integer("epochs", 1, "Passes over the patches.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Sampling and learning seed.")

flags.register_validator("data", lambda v: all(os.path.isdir(d) for d in v),
                         message="--data: every entry must be an existing folder")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    folders = _DATA.value or [sources.default_image_dir()]
    start = time.time()
    try:
        dictionaries = sparse_coding.train_from_folders(
            folders, _SCALE.value, _PATCHES.value, _ATOMS.value, _LAMBDA.value, _EPOCHS.value,
            _SEED.value, verbose=True,
            names=None if _DATA.value else sources.DEFAULT_IMAGES)
    except ValueError as e:
        fail(e)
    data = [os.path.basename(os.path.normpath(f)) for f in _DATA.value] or ["scikit-image"]
    path = sparse_coding.save_version(dictionaries, _OUT_DIR.value, {
        "data": data, "epochs": _EPOCHS.value, "seed": _SEED.value,
        "minutes": round((time.time() - start) / 60, 2)})
    logging.info("wrote %s (%d atoms from %d patches, %.1f min)", path, _ATOMS.value,
                 dictionaries.patches, (time.time() - start) / 60)


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
