"""TFLite fp32/fp16/dynamic-int8/int8 beside the newest SavedModel: `make tflite SCALE=3`.

python -m pipelines.tflite --scale=3 --records=tfrecords/x3 --eval_dir=path/to/Set5
"""

from __future__ import annotations

from absl import app, flags, logging

from srcnn_tf import export

_SCALE = flags.DEFINE_integer("scale", 3, "Scale of the model to convert.", lower_bound=2)
_MODELS = flags.DEFINE_string("models_dir", "saved_models", "Export root.")
_MODEL_DIR = flags.DEFINE_string("model_dir", None,
                                 "A SavedModel version folder (default: newest of --scale).")
_RECORDS = flags.DEFINE_string("records", None,
                               "Training records for int8 calibration (tfrecords/x3).")
_EVAL_DIR = flags.DEFINE_string("eval_dir", None, "HR images for the PSNR column (e.g. Set5).")
_VARIANTS = flags.DEFINE_multi_enum("variant", list(export.TFLITE_VARIANTS),
                                    list(export.TFLITE_VARIANTS), "Variants to write.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    variants = tuple(_VARIANTS.value)
    if "int8" in variants and not _RECORDS.value:
        raise app.UsageError("--records is needed to calibrate the int8 variant "
                             "(or pass --variant=fp32 --variant=fp16 --variant=dynamic_int8)")
    try:
        model_dir = _MODEL_DIR.value or export.latest_export(_MODELS.value, _SCALE.value)
        result = export.export_tflite(model_dir, _RECORDS.value, _EVAL_DIR.value, _SCALE.value,
                                      variants)
    except (FileNotFoundError, ValueError) as e:
        raise app.UsageError(str(e)) from None
    with open(f"{result['dir']}/report.md") as f:
        logging.info("wrote %s\n%s", result["dir"], f.read())


if __name__ == "__main__":
    app.run(main)
