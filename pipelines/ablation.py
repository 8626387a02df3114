"""The paper's ablation on one fixed budget per run: `make ablation` (hours: run it in the
background, e.g. `nohup make ablation MINUTES=20 > ablation.log 2>&1 &`; rerunning resumes).

Grid: filter counts n1/n2, second-layer size f2 in {1, 3, 5}, T91 vs T91 + General100.
Writes <out_dir>/results.json, table.md and ablation.png.
"""

from __future__ import annotations

import json
import os

from absl import app, flags, logging

from srcnn_tf import evaluate, plots, predictors
from srcnn_tf import train as train_lib
from srcnn_tf.model import ModelConfig

GRID = {  # name: (preset, n1, n2, uses the extra data)
    "9-1-5 n64/32": ("9-1-5", 64, 32, False),
    "9-3-5 n64/32": ("9-3-5", 64, 32, False),
    "9-5-5 n64/32": ("9-5-5", 64, 32, False),
    "9-5-5 n32/16": ("9-5-5", 32, 16, False),
    "9-5-5 n128/64": ("9-5-5", 128, 64, False),
    "9-5-5 n64/32 +General100": ("9-5-5", 64, 32, True),
}

_RECORDS = flags.DEFINE_string("records", None, "Records of the base training set (T91).",
                               required=True)
_EXTRA_RECORDS = flags.DEFINE_string("extra_records", None,
                                     "Records of the larger set (T91 + General100).")
_OUT_DIR = flags.DEFINE_string("out_dir", "runs/ablation", "Runs and results.")
_MINUTES = flags.DEFINE_float("minutes", 20.0, "Wall-clock budget of each run.", lower_bound=0.1)
_MAX_STEPS = flags.DEFINE_integer("max_steps", 0, "Step budget instead (0: minutes only).",
                                  lower_bound=0)
_TEST_DIR = flags.DEFINE_string("test_dir", None, "HR images for a test column (e.g. Set5); "
                                "reported, never used for selection.")
_ONLY = flags.DEFINE_list("only", [], "Subset of run names (default: the whole grid).")
_BATCH = flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    names = _ONLY.value or list(GRID)
    unknown = [n for n in names if n not in GRID]
    if unknown:
        raise app.UsageError(f"--only: unknown runs {unknown}; known: {list(GRID)}")
    rows = []
    for name in names:
        preset, n1, n2, extra = GRID[name]
        if extra and not _EXTRA_RECORDS.value:
            logging.warning("skipping %r: no --extra_records", name)
            continue
        run_dir = os.path.join(_OUT_DIR.value, name.replace(" ", "_").replace("/", "-"))
        summary = train_lib.train(train_lib.TrainConfig(
            record_dir=_EXTRA_RECORDS.value if extra else _RECORDS.value, run_dir=run_dir,
            model=ModelConfig(preset=preset, n1=n1, n2=n2), batch_size=_BATCH.value,
            max_minutes=_MINUTES.value, max_steps=_MAX_STEPS.value, progress=False))
        row = {"name": name, "run_dir": run_dir, "steps": summary["steps"],
               "minutes": summary["minutes"], "val_psnr": summary["best_val_psnr"]}
        if _TEST_DIR.value:
            predictor, _, info = predictors.load_predictor(run_dir)
            result = evaluate.evaluate_folder(predictor, _TEST_DIR.value, info["scale"], name)
            row.update(test_psnr=result.psnr, test_set=result.set)
        rows.append(row)
        logging.info("%s", json.dumps(row))
    os.makedirs(_OUT_DIR.value, exist_ok=True)
    results = os.path.join(_OUT_DIR.value, "results.json")
    with open(results, "w") as f:
        json.dump({"budget_minutes": _MINUTES.value, "runs": rows}, f, indent=1)
    lines = ["| run | steps | minutes | val PSNR | test PSNR |", "|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['steps']} | {r['minutes']:.1f} | {r['val_psnr']:.2f} | "
              f"{r.get('test_psnr', float('nan')):.2f} |" for r in rows]
    with open(os.path.join(_OUT_DIR.value, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plots.plot_ablation(results, os.path.join(_OUT_DIR.value, "ablation.png"))
    logging.info("\n%s", "\n".join(lines))


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
