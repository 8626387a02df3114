"""TFLite fp32/fp16/dynamic-int8/int8 beside the newest SavedModel: `make tflite SCALE=3`.

python -m pipelines.tflite --scale=3 --records=tfrecords/x3 --eval_dir=path/to/Set5
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from .common import fail
from srcnn_tf import export, runs
from srcnn_tf import tflite as tflite_lib

_SCALE = flags.DEFINE_integer("scale", 3, "Scale of the model to convert (the newest "
                              "srcnn_x<scale>); --model_dir for any other, e.g. "
                              "saved_models/srcnn_multiscale.", lower_bound=2)
_MODELS = flags.DEFINE_string("models_dir", "saved_models", "Export root.")
_MODEL_DIR = flags.DEFINE_string("model_dir", None,
                                 "A SavedModel version folder, or a model folder (its newest "
                                 "version); default: the newest of --scale. PSNR is measured "
                                 "at the scale(s) the model was trained for.")
_RECORDS = flags.DEFINE_string("records", None,
                               "Training records for int8 calibration (tfrecords/x3); default: "
                               "the records of --run_dir.")
_RUN_DIR = flags.DEFINE_string("run_dir", None,
                               "The training run of the model: its records calibrate int8.")
_EVAL_DIR = flags.DEFINE_list("eval_dir", None, "HR image folders for the PSNR columns, "
                              "comma-separated (e.g. Set5,Set14).")
_FINETUNE = flags.DEFINE_integer("int8_finetune_steps", tflite_lib.FINETUNE_STEPS,
                                 "Steps of quantization-aware distillation of the int8 variant "
                                 "on the records (0: equalization and rounding only).",
                                 lower_bound=0)
_VARIANTS = flags.DEFINE_multi_enum("variant", list(tflite_lib.VARIANTS),
                                    list(tflite_lib.VARIANTS), "Variants to write.")


def _run_records(run_dir: str | None) -> str | None:
    """The records folder a run trained on (config.json), when it still exists here."""
    if not run_dir:
        return None
    try:
        record_dir = runs.RunDir(run_dir).config()["train"]["record_dir"]
    except FileNotFoundError as e:
        fail(f"--run_dir: {e}")
    if not os.path.exists(os.path.join(record_dir, "manifest.json")):
        logging.warning("the records of %s (%s) are not here", run_dir, record_dir)
        return None
    return record_dir


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    variants = tuple(_VARIANTS.value)
    records = _RECORDS.value or _run_records(_RUN_DIR.value)
    if "int8" in variants and not records:
        logging.warning("int8 skipped: no calibration records (give RECORDS=tfrecords/x%d or "
                        "RUN=<the model's run directory>, or --records / --run_dir)", _SCALE.value)
        variants = tuple(v for v in variants if v != "int8")
    try:
        model_dir = (runs.resolve_export(_MODEL_DIR.value, "--model_dir") if _MODEL_DIR.value
                     else export.latest_export(_MODELS.value, _SCALE.value))
        scale = runs.read_json(os.path.join(model_dir, "metadata.json"))["scale"]
        result = tflite_lib.export_tflite(model_dir, records, _EVAL_DIR.value, scale, variants,
                                          finetune_steps=_FINETUNE.value)
    except (FileNotFoundError, ValueError) as e:
        fail(e)
    with open(f"{result['dir']}/report.md") as f:
        logging.info("wrote %s\n%s", result["dir"], f.read())


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
