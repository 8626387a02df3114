"""The papers' "PSNR against time" comparison, measured here in one run:
`make psnr-time [PSNR_TIME_SET=../shared/data/Set14 SCALE=3]`.

Methods: bicubic, the sparse-coding baseline (newest sc_x2, as published), and every shipped SRCNN
model for the scale (newest version) through its SavedModel and each of its TFLite variants
(timed on images of a size they have already run: their per-size kernel setup is left out).
Writes <out_dir>/psnr_time_x<scale>.{png,md,json}.
"""

from __future__ import annotations

import json
import os
import re

from absl import app, flags, logging

from .common import fail
from srcnn_tf import evaluate, export, plots, predictors, runs

_SET = flags.DEFINE_string("set", None, "Folder of HR test images (the papers use Set14).",
                           required=True)
_SCALE = flags.DEFINE_integer("scale", 3, "Upscaling factor.", lower_bound=2)
_MODELS_DIR = flags.DEFINE_string("models_dir", None,
                                  "Shipped models (default: saved_models or the installed ones).")
_OUT_DIR = flags.DEFINE_string("out_dir", "docs", "Where the figure, table and JSON go.")
_NO_SC = flags.DEFINE_bool("skip_sc", False, "Leave out sparse coding (minutes per image).")
_THREADS = flags.DEFINE_integer("num_threads", None, "LiteRT threads (default: all cores).")

flags.register_validator("set", lambda p: p is None or os.path.isdir(p),
                         message="--set must be an existing folder")


def _srcnn_methods(models_dir: str, scale: int) -> dict[str, predictors.Predictor]:
    """'<model name> <preset> <runtime>' -> predictor, for every srcnn*_x<scale> model."""
    out = {}
    pattern = re.compile(rf"srcnn(_\w+)?_x{scale}$")
    for name in sorted(n for n in os.listdir(models_dir) if pattern.match(n)):
        version = runs.newest_version(os.path.join(models_dir, name))
        if not runs.is_export(version):
            continue
        preset = runs.read_json(os.path.join(version, "metadata.json"))["preset"]
        out[f"SRCNN {preset} SavedModel"] = predictors.saved_model_y_predictor(version)
        tflite_dir = os.path.join(version, "tflite")
        for f in sorted(os.listdir(tflite_dir)) if os.path.isdir(tflite_dir) else []:
            if f.endswith(".tflite"):
                variant = f[len(f"srcnn_x{scale}_"):-len(".tflite")]
                out[f"SRCNN {preset} TFLite {variant}"] = predictors.TFLiteY(
                    os.path.join(tflite_dir, f), _THREADS.value)
    return out


def _table(rows: list[dict], set_name: str, scale: int) -> str:
    lines = [f"| method | {set_name} x{scale} PSNR (dB) | seconds per image |", "|---|---|---|"]
    lines += [f"| {r['method']} | {r['psnr']:.2f} | {r['seconds']:.3g} |"
              for r in sorted(rows, key=lambda r: r["seconds"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    models_dir = _MODELS_DIR.value or export.default_models_dir()
    scale = _SCALE.value
    methods = {"bicubic": predictors.bicubic_predictor}
    try:
        srcnn = _srcnn_methods(models_dir, scale)
        if not srcnn:  # the figure is SRCNN against the rest: without it there is no point
            raise FileNotFoundError(f"no exported srcnn*_x{scale} model under {models_dir} "
                                    f"(--models_dir): make export SCALE={scale} first")
        if not _NO_SC.value:  # per-scale dictionaries cost the same: one SC point
            methods["SC (sparse coding)"], _ = predictors.sc_predictor(models_dir, scale, 2)
        methods.update(srcnn)
        rows = evaluate.psnr_against_time(methods, _SET.value, scale,
                                          on_image=lambda p: logging.info("timing %s", p),
                                          setup_per_shape=list(srcnn))
    except (FileNotFoundError, ValueError) as e:
        fail(e)
    set_name = os.path.basename(os.path.normpath(_SET.value))
    os.makedirs(_OUT_DIR.value, exist_ok=True)
    base = os.path.join(_OUT_DIR.value, f"psnr_time_x{scale}")
    with open(base + ".json", "w") as f:
        json.dump({"set": set_name, "scale": scale, "threads": os.cpu_count(), "rows": rows}, f,
                  indent=1)
    with open(base + ".md", "w") as f:
        f.write(_table(rows, set_name, scale))
    plots.plot_psnr_time(rows, base + ".png", set_name, scale)
    logging.info("wrote %s.{png,md,json}\n%s", base, _table(rows, set_name, scale))


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
