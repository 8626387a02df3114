"""Figures from a tiny run, and the ablation pipeline on a tiny budget."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from srcnn_tf import imaging, plots
from srcnn_tf import train as train_lib
from srcnn_tf.model import ModelConfig

from conftest import ROOT, tiny_records


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    record_dir = tiny_records(root, 3, (70, 72), seed=80, num_shards=1, val_fraction=0.34)
    run = tmp_path_factory.mktemp("run")
    train_lib.train(train_lib.TrainConfig(record_dir=record_dir, run_dir=str(run),
                                          model=ModelConfig(preset="9-1-5", n1=16, n2=8),
                                          batch_size=8, max_steps=12, val_every=4, log_every=2,
                                          checkpoint_every=4,
                                          progress=False))
    return {"run": str(run), "records": record_dir, "src": root / "img"}


def test_figures_pipeline(tiny, tmp_path):
    images = ",".join(str(tiny["src"] / f"{i}.png") for i in range(2))
    r = subprocess.run([sys.executable, "-m", "pipelines.figures", f"--run_dir={tiny['run']}",
                        f"--out_dir={tmp_path}", f"--images={images}", "--crop=32",
                        f"--test_dir={tiny['src']}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == 4 and all(n.endswith(("_training.png", "_filters.png", "_comparison.png",
                                              "_time_to_quality.png")) for n in pngs)
    curve = (tmp_path / f"{tiny['run'].rstrip('/').split('/')[-1]}_time_to_quality.csv")
    rows = curve.read_text().splitlines()
    assert rows[0] == "step,minutes,psnr,ssim" and len(rows) == 1 + 3  # 3 checkpoints kept
    for p in tmp_path.glob("*.png"):
        assert imaging.load_image(p).shape[0] > 200


def test_a_checkpoint_curve_on_held_out_records_is_what_training_validated(tiny, tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipelines.figures", f"--run_dir={tiny['run']}",
                        f"--out_dir={tmp_path}", f"--test_dir={tiny['records']}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    name = tiny["run"].rstrip("/").split("/")[-1]
    rows = (tmp_path / f"{name}_time_to_quality.csv").read_text().splitlines()[1:]
    curve = {int(row.split(",")[0]): float(row.split(",")[2]) for row in rows}
    with open(f"{tiny['run']}/metrics.jsonl") as f:
        validated = {e["step"]: e["val_psnr"] for e in map(json.loads, f) if "val_psnr" in e}
    assert sorted(curve) == [4, 8, 12]
    for step, psnr in curve.items():
        assert psnr == pytest.approx(validated[step], abs=1e-4)


CHAIN = [{"model": "a/1", "steps": 100, "minutes": 1.0},  # other held-out images: steps only
         {"model": "s2", "steps": 300, "minutes": 2.0, "val_psnr": 30.0},
         {"model": "s3", "steps": 400, "minutes": 2.0, "val_psnr": 30.1},
         {"model": "g", "steps": 800, "minutes": 0.1, "val_psnr": 30.2, "device": "gpu: X"},
         {"model": "h", "steps": 100, "minutes": 0.1, "val_psnr": 30.3, "device": "gpu: X",
          "batch_size": 1024}]


def test_chain_gains_count_the_patches_of_every_stage_and_mark_accelerators():
    patches, gain, device = plots.chain_gains(CHAIN)
    assert (patches / 128).tolist() == [400, 800, 1600, 2400]  # 100 steps of 1024 = 800 of 128
    assert gain == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert device.tolist() == [False, False, True, True]
    with pytest.raises(ValueError, match="srcnn_x3/1: a training chain needs 2 or more"):
        plots.plot_chains({"srcnn_x3/1": CHAIN[:2]}, "unused.png")


def test_validation_curves_show_the_last_iterate_beside_a_weight_average():
    plain = [{"step": 0, "loss": 1.0}, {"step": 10, "minutes": 0.5, "val_psnr": 30.0}]
    assert plots.validation_curves(plain, "step") == {"SRCNN": [(10, 30.0)]}
    averaged = plain[:1] + [{"step": 10, "minutes": 0.5, "val_psnr": 30.5, "val_psnr_raw": 30.0},
                            {"step": 20, "minutes": None, "val_psnr": 31.0,
                             "val_psnr_raw": None}]
    assert plots.validation_curves(averaged, "minutes") == {
        "SRCNN (weight average)": [(0.5, 30.5)], "SRCNN (last iterate)": [(0.5, 30.0)]}
    assert plots.validation_curves(averaged, "step")["SRCNN (weight average)"] == [
        (10, 30.5), (20, 31.0)]


def test_figures_pipeline_plots_exported_chains(tmp_path):
    for version in (1, 2):
        (tmp_path / "srcnn_x3" / str(version)).mkdir(parents=True)
        (tmp_path / "srcnn_x3" / str(version) / "saved_model.pb").write_bytes(b"")
        (tmp_path / "srcnn_x3" / str(version) / "metadata.json").write_text(
            json.dumps({"training_chain": CHAIN[:version + 2]}))
    out = tmp_path / "figs"
    r = subprocess.run([sys.executable, "-m", "pipelines.figures",
                        f"--chains={tmp_path / 'srcnn_x3'}", f"--out_dir={out}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [p.name for p in out.glob("*.png")] == ["training_chains.png"]
    r = subprocess.run([sys.executable, "-m", "pipelines.figures", f"--chains={tmp_path}",
                        f"--run_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "--chains" in r.stderr and "Traceback" not in r.stderr


def test_ablation_pipeline_tiny_budget(tiny, tmp_path):
    """Arms on both sets; the held-out images are the larger set's validation images from
    outside the base set."""
    from conftest import natural_like
    from srcnn_tf import records

    other = tmp_path / "other"
    other.mkdir()
    for i in range(3):
        imaging.save_image(other / f"o{i}.png", natural_like(70, 72, seed=90 + i))
    extra = records.RecordsConfig(input_dirs=(str(tiny["src"]), str(other)),
                                  out_dir=str(tmp_path / "extra"), progress=False, workers=1,
                                  num_shards=1, val_fraction=0.5)
    records.build_records(extra)
    out = tmp_path / "ablation"
    cmd = [sys.executable, "-m", "pipelines.ablation", f"--records={tiny['records']}",
           f"--extra_records={extra.record_dir}", f"--out_dir={out}", "--max_steps=3",
           "--batch_size=8", "--only=9-1-5 n64/32,9-5-5 n32/16 @ T91",
           f"--test_dirs={tiny['src']}"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    rows = results["runs"]
    assert [row["name"] for row in rows] == ["9-1-5 n64/32 @ T91",
                                             "9-1-5 n64/32 @ T91+BSD200+General100",
                                             "9-5-5 n32/16 @ T91"]
    assert all(row["steps"] == 3 and row["img_psnr"] > 0 and row["heldout_psnr"] > 0
               for row in rows)
    val = {v[0] for v in __import__("srcnn_tf.data", fromlist=["x"]).val_images(extra.record_dir)}
    assert results["heldout_images"] == sum(v.startswith("other/") for v in val) > 0
    table = (out / "table.md").read_text()
    assert "### filter size f2" in table and "| 9-5-5 n32/16 @ T91 | 3 |" in table
    assert (out / "ablation.png").exists()
    r = subprocess.run(cmd[:-2] + ["--only=9-9-9"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "unknown arms" in r.stderr and "Traceback" not in r.stderr
