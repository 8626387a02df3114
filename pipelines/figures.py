"""Figures of a run: `make figures RUN=runs/x3 [IMAGES=a.png,b.png]` -> figures/*.png.

Training curves (from metrics.jsonl, which either trainer writes), first-layer filters,
HR/bicubic/SRCNN crops; or, with `--chains=saved_models/srcnn_x2,...` (no run), the held-out gain
of each stage of the exported models' training chains (training_chains.png).
"""

from __future__ import annotations

import json
import os

from absl import app, flags, logging

from .common import fail
from srcnn_tf import evaluate, plots, predictors, runs

_RUN_DIR = flags.DEFINE_string("run_dir", None, "Training run directory.")
_CHAINS = flags.DEFINE_list("chains", [], "Exported model folders (their newest version) or "
                            "version folders: plot their training chains instead of a run.")
_OUT_DIR = flags.DEFINE_string("out_dir", "figures", "Where the PNGs go.")
_IMAGES = flags.DEFINE_list("images", [], "HR images for the comparison crops.")
_TEST_DIR = flags.DEFINE_string(
    "test_dir", None, "Score every kept checkpoint (float32) and plot PSNR against training "
    "minutes, on HR images (e.g. Set5: reporting only, never selection) or on a records "
    "folder's held-out images (the ones training selects on: a step to export with "
    "make export ... ARGS=--step=N).")
_CROP = flags.DEFINE_integer("crop", 96, "Crop size of the comparison panels.", lower_bound=16)

flags.register_validator("run_dir", lambda p: p is None or os.path.isfile(
    os.path.join(p, "config.json")), message="--run_dir is not a training run (no config.json)")
flags.register_validator("chains", lambda ps: all(
    runs.is_export(runs.newest_version(p)) for p in ps),
    message="--chains: every entry must be an exported model folder (with metadata.json)")
flags.register_multi_flags_validator(
    ["run_dir", "chains"], lambda f: bool(f["run_dir"]) != bool(f["chains"]),
    message="give either --run_dir (a run's figures) or --chains (exported models), not both")
flags.register_validator("images", lambda ps: all(os.path.isfile(p) for p in ps),
                         message="--images: every entry must be an existing file")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        written = _figures()
    except (FileNotFoundError, ValueError, OSError) as e:  # ImageError is a ValueError
        fail(e)
    logging.info("wrote %s", json.dumps(written))


def _figures() -> list[str]:
    os.makedirs(_OUT_DIR.value, exist_ok=True)
    if _CHAINS.value:
        chains = {runs.export_label(v): runs.read_json(os.path.join(v, "metadata.json"))
                  .get("training_chain", []) for v in map(runs.newest_version, _CHAINS.value)}
        return [plots.plot_chains(chains, os.path.join(_OUT_DIR.value, "training_chains.png"))]
    name = os.path.basename(os.path.normpath(_RUN_DIR.value))
    written = [
        plots.plot_training(_RUN_DIR.value, os.path.join(_OUT_DIR.value, f"{name}_training.png")),
        plots.plot_filters(_RUN_DIR.value, os.path.join(_OUT_DIR.value, f"{name}_filters.png")),
    ]
    if _IMAGES.value or _TEST_DIR.value:
        predictor, _, info = predictors.load_predictor(_RUN_DIR.value)
        scale = info["scale"]
    if _IMAGES.value:
        written.append(plots.plot_comparison(
            predictor, _IMAGES.value, scale,
            os.path.join(_OUT_DIR.value, f"{name}_comparison.png"), _CROP.value))
    if _TEST_DIR.value:
        bicubic = evaluate.scorer(_TEST_DIR.value, scale)(predictors.bicubic_predictor,
                                                          "bicubic")
        set_name = bicubic.set
        curve = evaluate.checkpoint_curve(_RUN_DIR.value, _TEST_DIR.value, scale)
        csv_path = os.path.join(_OUT_DIR.value, f"{name}_time_to_quality.csv")
        with open(csv_path, "w") as f:
            f.write("step,minutes,psnr,ssim\n")
            f.writelines(f"{c['step']},{c['minutes']:.2f},{c['psnr']:.4f},{c['ssim']:.4f}\n"
                         for c in curve)
        refs = {"bicubic": bicubic.psnr}
        refs.update({f"paper {m}": p for (s, sc, m), (p, _) in evaluate.PAPER.items()
                     if s == set_name and sc == scale and m != "bicubic"})
        written += [csv_path, plots.plot_time_to_quality(
            curve, os.path.join(_OUT_DIR.value, f"{name}_time_to_quality.png"), set_name, scale,
            refs)]
    return written


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
