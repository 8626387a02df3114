"""The papers' three studies on one fixed budget per arm: training data (T91 against a larger
set), filter numbers n1/n2 and second-layer filter size f2, each arm on both training sets.

Every arm trains with the same recipe and the same wall-clock (or step) budget. Arms are scored,
with their last weights, on held-out images none of them trained on (the larger set's validation
images that are not from the base set), and on test folders (Set5, Set14: reported only).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

import numpy as np

from srcnn_tf import data, predictors, records, runs
from srcnn_tf import train as train_lib
from srcnn_tf.model import ModelConfig, count_params

ARCHITECTURES = {  # name: (preset, n1, n2)
    "9-1-5 n64/32": ("9-1-5", 64, 32),
    "9-3-5 n64/32": ("9-3-5", 64, 32),
    "9-5-5 n64/32": ("9-5-5", 64, 32),
    "9-5-5 n32/16": ("9-5-5", 32, 16),
    "9-5-5 n128/64": ("9-5-5", 128, 64),
}
STUDIES = {  # study: the architectures it compares (each on every training set)
    "training data": ("9-5-5 n64/32",),
    "filter numbers n1/n2": ("9-5-5 n32/16", "9-5-5 n64/32", "9-5-5 n128/64"),
    "filter size f2": ("9-1-5 n64/32", "9-3-5 n64/32", "9-5-5 n64/32"),
}


@dataclasses.dataclass(frozen=True)
class AblationConfig:
    """`datasets`: name -> records folder (the first is the base set, e.g. T91); the held-out
    images are the validation images of the last one whose source folder is not the base's."""

    datasets: dict[str, str]
    out_dir: str
    minutes: float = 20.0
    max_steps: int = 0
    batch_size: int = 128
    test_dirs: tuple[str, ...] = ()
    only: tuple[str, ...] = ()

    def test_names(self) -> list[str]:
        """Column names of the test folders (their base names: Set5, Set14)."""
        return [os.path.basename(os.path.normpath(d)) for d in self.test_dirs]

    def arms(self) -> list[tuple[str, str]]:
        """(architecture, dataset) pairs to run, `only` (names '<arch> @ <dataset>' or an
        architecture) applied."""
        pairs = [(a, d) for a in ARCHITECTURES for d in self.datasets]
        if self.only:
            unknown = [o for o in self.only if o not in ARCHITECTURES and
                       o not in {arm_name(a, d) for a, d in pairs}]
            if unknown:
                raise ValueError(f"only: unknown arms {unknown}; known: "
                                 f"{[arm_name(a, d) for a, d in pairs]}")
            pairs = [(a, d) for a, d in pairs if a in self.only or arm_name(a, d) in self.only]
        return pairs


def arm_name(architecture: str, dataset: str) -> str:
    return f"{architecture} @ {dataset}"


def heldout_pairs(config: AblationConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(bicubic input, HR) of the larger set's validation images from outside the base set."""
    names = list(config.datasets)
    base = set(records.describe(records.load_manifest(config.datasets[names[0]]))["sources"])
    last = config.datasets[names[-1]]
    return [(v.input, v.hr) for v in data.val_images(last)
            if len(names) == 1 or v.source.split("/")[0] not in base]


def run_arm(config: AblationConfig, architecture: str, dataset: str,
            heldout: list, scale_tests: dict[str, list]) -> dict:
    """Trains (or resumes) one arm and scores its last weights."""
    preset, n1, n2 = ARCHITECTURES[architecture]
    run_dir = os.path.join(config.out_dir, arm_name(architecture, dataset).replace(" ", "_")
                           .replace("/", "-").replace("@", "at"))
    summary = train_lib.train(train_lib.TrainConfig(
        record_dir=config.datasets[dataset], run_dir=run_dir,
        model=ModelConfig(preset=preset, n1=n1, n2=n2), batch_size=config.batch_size,
        max_minutes=config.minutes, max_steps=config.max_steps, progress=False))
    model, model_cfg, scale = runs.load_model(run_dir, "latest")
    predictor = predictors.keras_predictor(model, model_cfg)
    row = {"name": arm_name(architecture, dataset), "architecture": architecture,
           "data": dataset, "run_dir": run_dir, "steps": summary["steps"],
           "minutes": summary["minutes"], "params": count_params(model),
           "heldout_psnr": predictors.mean_psnr(predictor, heldout, scale) if heldout else None,
           "curve": [(e["minutes"], e["val_psnr"]) for e in runs.RunDir(run_dir).metrics()
                     if "val_psnr" in e]}
    for name, pairs in scale_tests.items():
        row[f"{name}_psnr"] = predictors.mean_psnr(predictor, pairs, scale)
    return row


def run_ablation(config: AblationConfig, scale: int, log=print) -> list[dict]:
    """Every arm in turn (reruns resume finished and unfinished arms); writes
    `<out_dir>/results.json` after each arm."""
    arms = config.arms()
    heldout = heldout_pairs(config)
    tests = {name: predictors.folder_pairs(d, scale)
             for name, d in zip(config.test_names(), config.test_dirs)}
    rows = []
    for architecture, dataset in arms:
        rows.append(run_arm(config, architecture, dataset, heldout, tests))
        log(json.dumps({k: v for k, v in rows[-1].items() if k != "curve"}))
        write_results(config, rows, len(heldout))
    return rows


def write_results(config: AblationConfig, rows: list[dict], heldout_images: int) -> str:
    os.makedirs(config.out_dir, exist_ok=True)
    path = os.path.join(config.out_dir, "results.json")
    with open(path, "w") as f:
        json.dump({"budget_minutes": config.minutes, "budget_steps": config.max_steps,
                   "datasets": list(config.datasets), "heldout_images": heldout_images,
                   "runs": rows}, f, indent=1)
    return path


def tables(rows: Sequence[dict], test_names: Sequence[str]) -> str:
    """One Markdown table per study: its arms on every training set."""
    by_name = {r["name"]: r for r in rows}
    datasets = list(dict.fromkeys(r["data"] for r in rows))
    out = []
    for study, archs in STUDIES.items():
        head = "| arm | steps | minutes | held-out PSNR |" + "".join(
            f" {t} PSNR |" for t in test_names)
        lines = [f"### {study}", "", head, "|---|---|---|---|" + "---|" * len(test_names)]
        for dataset in datasets:
            for arch in archs:
                r = by_name.get(arm_name(arch, dataset))
                if r is None:
                    continue
                held = f"{r['heldout_psnr']:.3f}" if r["heldout_psnr"] is not None else ""
                lines.append(f"| {r['name']} | {r['steps']} | {r['minutes']:.1f} | {held} |" +
                             "".join(f" {r.get(f'{t}_psnr', float('nan')):.3f} |"
                                     for t in test_names))
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"
