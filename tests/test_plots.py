"""Figures from a tiny run, and the ablation pipeline on a tiny budget."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from srcnn_tf import imaging, plots, records
from srcnn_tf import train as train_lib
from srcnn_tf.model import ModelConfig

from conftest import ROOT, natural_like


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    src = tmp_path_factory.mktemp("img")
    for i in range(3):
        imaging.save_image(src / f"{i}.png", natural_like(70, 72, seed=80 + i))
    rcfg = records.RecordsConfig(input_dir=str(src), out_dir=str(tmp_path_factory.mktemp("r")),
                                 num_shards=1, val_fraction=0.34, progress=False, workers=1)
    records.build_records(rcfg)
    run = tmp_path_factory.mktemp("run")
    train_lib.train(train_lib.TrainConfig(record_dir=rcfg.record_dir, run_dir=str(run),
                                          model=ModelConfig(preset="9-1-5", n1=16, n2=8),
                                          batch_size=8, max_steps=12, val_every=4, log_every=2,
                                          progress=False))
    return {"run": str(run), "records": rcfg.record_dir, "src": src}


def test_scalars_come_from_tensorboard_logs(tiny):
    scalars = plots.read_scalars(tiny["run"])
    assert [s for s, _, _ in scalars["val_psnr"]] == [4, 8, 12]
    assert len(scalars["loss"]) == 6 and "val_bicubic_psnr" in scalars and "minutes" in scalars


def test_figures_pipeline(tiny, tmp_path):
    images = ",".join(str(tiny["src"] / f"{i}.png") for i in range(2))
    r = subprocess.run([sys.executable, "-m", "pipelines.figures", f"--run_dir={tiny['run']}",
                        f"--out_dir={tmp_path}", f"--images={images}", "--crop=32"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == 3 and all(n.endswith(("_training.png", "_filters.png", "_comparison.png"))
                                  for n in pngs)
    for p in tmp_path.glob("*.png"):
        assert imaging.load_image(p).shape[0] > 200


def test_ablation_pipeline_tiny_budget(tiny, tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipelines.ablation", f"--records={tiny['records']}",
                        f"--out_dir={tmp_path}", "--max_steps=3", "--batch_size=8",
                        "--only=9-1-5 n64/32,9-5-5 n32/16", f"--test_dir={tiny['src']}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [row["name"] for row in rows] == ["9-1-5 n64/32", "9-5-5 n32/16"]
    assert all(row["steps"] == 3 and row["test_psnr"] > 0 for row in rows)
    assert (tmp_path / "ablation.png").exists() and "9-5-5 n32/16" in (tmp_path / "table.md").read_text()
