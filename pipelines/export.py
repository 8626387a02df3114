"""Exports a run's best checkpoint for TF Serving: `make export SCALE=3 [RUN=runs/x3 OUT=..]`.

python -m pipelines.export --run_dir=runs/x3 --out_dir=saved_models
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from .common import fail
from srcnn_tf import export

_RUN_DIR = flags.DEFINE_string("run_dir", None, "Training run directory.")
_FROM = flags.DEFINE_string("from_saved_model", None,
                            "Instead of --run_dir: an exported version folder to write again as "
                            "a new version with the same weights (e.g. an export made before "
                            "the TF Serving loader fix).")
_OUT_DIR = flags.DEFINE_string("out_dir", "saved_models",
                               "Export root; writes <out_dir>/srcnn_x<scale>/<version>/.")
_VERSION = flags.DEFINE_integer("version", None, "Version number (default: next integer).",
                                lower_bound=1)
_NAME = flags.DEFINE_string("name", None, "Model name (folder under --out_dir); default "
                            "srcnn_x<scale>, the one make upscale looks for.")
_STEP = flags.DEFINE_integer("step", None, "With --run_dir: export the checkpoint kept at this "
                             "step (its weight average when the run kept one) instead of best/, "
                             "e.g. the best of a float32 held-out curve (make figures "
                             "RUN=... ARGS=--test_dir=<records>).", lower_bound=0)
_MAX_PIXELS = flags.DEFINE_integer("max_pixels", 16_000_000,
                                   "Largest batch * output pixels a request may ask for.",
                                   lower_bound=1)

flags.register_validator("run_dir", lambda p: p is None or os.path.isdir(p),
                         message="--run_dir is not a directory (train first: make train)")
flags.register_validator(
    "from_saved_model", lambda p: p is None or os.path.exists(os.path.join(p, "metadata.json")),
    message="--from_saved_model must be an exported version folder (with metadata.json)")


@flags.multi_flags_validator(["run_dir", "from_saved_model"],
                             message="give --run_dir or --from_saved_model (exactly one)")
def _check_source(f: dict) -> bool:
    return (f["run_dir"] is None) != (f["from_saved_model"] is None)


flags.register_multi_flags_validator(
    ["step", "run_dir"], lambda f: f["step"] is None or f["run_dir"] is not None,
    message="--step picks a checkpoint of --run_dir: give --run_dir")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        if _FROM.value:
            path = export.reexport(_FROM.value, _OUT_DIR.value, _VERSION.value, _NAME.value)
        else:
            path = export.export_run(_RUN_DIR.value, _OUT_DIR.value, _VERSION.value,
                                     _MAX_PIXELS.value, _NAME.value, _STEP.value)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        fail(e)
    logging.info("exported %s", path)


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
