"""make evaluate: the paper's bicubic rows, one code path for checkpoint/SavedModel/TFLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from srcnn_tf import evaluate, export, imaging, predictors
from srcnn_tf import tflite as tflite_lib
from srcnn_tf import train as train_lib
from srcnn_tf.model import ModelConfig

from conftest import ROOT, natural_like, tiny_records


def test_pipeline_bicubic_rows_equal_the_papers(shared_data, tmp_path):
    out = tmp_path / "eval"
    r = subprocess.run([sys.executable, "-m", "pipelines.evaluate", "--model=bicubic",
                        f"--sets={shared_data / 'Set5'},{shared_data / 'Set14'}",
                        "--scales=2,3,4", f"--out_dir={out}", f"--json={tmp_path / 'r.json'}",
                        "--paper"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    got = {(x["set"], x["scale"]): x for x in results}
    assert set(results[0]) == {"set", "scale", "method", "psnr", "ssim", "images", "skipped"}
    assert results[0]["skipped"] == []
    for (set_name, scale, method), (psnr, ssim) in evaluate.PAPER.items():
        if method == "bicubic":
            assert abs(got[(set_name, scale)]["psnr"] - psnr) <= 0.01
            assert abs(got[(set_name, scale)]["ssim"] - ssim) <= 0.0015
    assert got[("Set14", 3)]["images"] == 14
    table = (out / "table.md").read_text()
    assert "paper: SRCNN 9-5-5" in table and "| Set5 | bicubic | 33.66 / 0.9299" in table
    rows = [line.split(" | ")[0] for line in table.splitlines()[2:]]
    assert rows == sorted(rows, key=lambda r: r != "| Set5")  # the sets in the order given
    lines = (out / "per_image.csv").read_text().splitlines()
    assert lines[0] == "set,scale,method,image,psnr,ssim" and len(lines) == 1 + 3 * (5 + 14)


def test_same_model_same_psnr_as_checkpoint_savedmodel_tflite(tmp_path):
    record_dir = tiny_records(tmp_path, 3, (72, 80), seed=50, num_shards=1, val_fraction=0.34)
    run = tmp_path / "run"
    train_lib.train(train_lib.TrainConfig(record_dir=record_dir, run_dir=str(run),
                                          model=ModelConfig(preset="9-1-5", n1=16, n2=8),
                                          batch_size=16, max_steps=40, val_every=20,
                                          progress=False, learning_rate=3e-3,
                                          mixed_precision=""))  # validated in float32
    path = export.export_run(str(run), str(tmp_path / "sm"))
    result = tflite_lib.export_tflite(path, None, None, 3, variants=("fp32",), rounds=1,
                                  latency_size=16)
    tflite = os.path.join(result["dir"], "srcnn_x3_fp32.tflite")
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    for i in range(2):
        imaging.save_image(test_dir / f"t{i}.png", natural_like(60, 66, seed=70 + i))
    psnr = {}
    for spec in (str(run), path, tflite, "bicubic"):
        predictor, name, _ = predictors.load_predictor(spec)
        psnr[spec] = evaluate.evaluate_folder(predictor, str(test_dir), 3, name).psnr
    assert abs(psnr[str(run)] - psnr[path]) <= 0.01
    assert abs(psnr[str(run)] - psnr[tflite]) <= 0.01
    assert psnr["bicubic"] != psnr[str(run)]
    # The records' held-out images, measured as the run validated and selected on them.
    logged = json.loads(open(os.path.join(path, "metadata.json")).read())["val_psnr"]
    runners = {spec: predictors.load_predictor(spec)[0] for spec in (path, tflite)}
    held = {r.method: [r] for r in evaluate.evaluate_records(
        {spec: (lambda s, p=p: p) for spec, p in runners.items()}, record_dir)}
    assert [(r.scale, r.images) for r in held[path]] == [(3, 1)]
    assert abs(held[path][0].psnr - logged) < 1e-6 and abs(held[tflite][0].psnr - logged) < 0.01
    r = subprocess.run([sys.executable, "-m", "pipelines.evaluate", f"--model={path}",
                        f"--sets={record_dir},{test_dir}", f"--out_dir={tmp_path / 'ho'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "ho" / "results.json").read_text())["results"]
    assert [(x["set"], x["method"] == "bicubic") for x in rows] == [
        ("rec/x3 held-out", True), ("rec/x3 held-out", False), ("test", True), ("test", False)]
    assert abs(rows[1]["psnr"] - logged) < 1e-6
    # A single-scale model is evaluated at its own factor unless --scales says otherwise; a
    # TFLite file inside an export knows it from the export's metadata.
    assert predictors.load_predictor(tflite)[2]["scale"] == 3
    for scales, want in (([], {3}), (["--scales=2,3"], {2, 3})):
        r = subprocess.run([sys.executable, "-m", "pipelines.evaluate", f"--model={tflite}",
                            f"--sets={test_dir}", *scales, f"--out_dir={tmp_path / 'ev'}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        results = json.loads((tmp_path / "ev" / "results.json").read_text())["results"]
        assert {x["scale"] for x in results} == want
        assert ("was trained for x3; also evaluating it at 2,3" in r.stderr) == bool(scales)
        assert ("was trained for" in r.stderr) == bool(scales)


def test_records_without_held_out_images_are_named(tmp_path):
    record_dir = tiny_records(tmp_path, 2, (40, 40), seed=3, num_shards=1, val_fraction=0)
    with pytest.raises(ValueError, match="hold no held-out images"):
        evaluate.evaluate_records({"bicubic": lambda s: predictors.bicubic_predictor}, record_dir)
    r = subprocess.run([sys.executable, "-m", "pipelines.evaluate", "--model=bicubic",
                        f"--sets={record_dir}", f"--out_dir={tmp_path / 'ev'}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"--sets: {record_dir}: the records hold no held-out images" in r.stderr


def test_colour_outputs_and_unknown_model(tmp_path):
    src = tmp_path / "set"
    src.mkdir()
    imaging.save_image(src / "a.png", natural_like(30, 33, seed=1))
    imaging.save_image(src / "g.png", natural_like(30, 33, c=1, seed=2))
    r = evaluate.evaluate_folder(predictors.bicubic_predictor, str(src), 3, "bicubic",
                                 save_dir=str(tmp_path / "out"))
    assert r.images == 2
    colour = imaging.load_image(tmp_path / "out" / "set_x3_a.png")
    assert colour.shape == (30, 33, 3)
    # Its Y is the bicubic Y that was scored (but where RGB clipping of saturated colours moves it).
    hr, inp = predictors.test_pair(str(src / "a.png"), 3)
    diff = np.abs(imaging.to_y(colour).astype(int) - imaging.to_uint8(inp))
    assert np.mean(diff <= 1) > 0.95
    assert imaging.load_image(tmp_path / "out" / "set_x3_g.png").shape == (30, 33, 1)
    with pytest.raises(FileNotFoundError, match="not 'bicubic'"):
        predictors.load_predictor(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nope: no such file or folder; give 'bicubic'"):
        predictors.load_predictor(str(tmp_path / "nope"))


def test_markdown_table_layout():
    rows = [evaluate.Result("Set5", s, m, 30.0 + s, 0.9, 5) for s in (2, 3) for m in ("a", "b")]
    table = evaluate.markdown_table(rows, paper=True).splitlines()
    assert table[0] == "| set | method | x2 | x3 |"
    assert "| Set5 | a | 32.00 / 0.9000 | 33.00 / 0.9000 |" in table
    assert any(line.startswith("| Set5 | paper: bicubic | 33.66") for line in table)


SHIPPED = {  # (model folder, scale): Set5 PSNR measured at export; the README rounds them
    ("srcnn_x2", 2): 36.8066, ("srcnn_x3", 3): 32.9202, ("srcnn_x4", 4): 30.5041,
    ("srcnn_915_x3", 3): 32.4252,
    ("srcnn_multiscale", 1.5): 39.1002, ("srcnn_multiscale", 3): 31.9643,
}


@pytest.mark.parametrize("name, scale", sorted(SHIPPED))
def test_shipped_models_reproduce_the_readme_table(shared_data, name, scale):
    path = ROOT / "saved_models" / name
    if not path.is_dir():
        pytest.skip(f"{path} not shipped in this checkout")
    predictor, _, info = predictors.load_predictor(str(path))
    if "at" in info:  # a multi-scale model, told the factor
        predictor = info["at"](scale)
    else:
        assert info["scale"] == scale
    result = evaluate.evaluate_folder(predictor, str(shared_data / "Set5"), scale, name)
    assert abs(result.psnr - SHIPPED[(name, scale)]) <= 0.01


@pytest.mark.parametrize("name, scale", [k for k in sorted(SHIPPED) if "_x" in k[0]])
def test_readme_summary_rounds_the_shipped_set5_numbers(name, scale):
    """The first table a reader sees follows the measured numbers (bold: at or past the paper)."""
    rows = [line for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith(f"| `{name}` (")]
    assert len(rows) == 1, f"README: no single summary row for {name}"
    method = "SRCNN 9-1-5 (T91)" if "915" in name else "SRCNN 9-5-5"
    measured = SHIPPED[(name, scale)]
    text = f"{measured:.2f}"
    if measured >= evaluate.PAPER[("Set5", scale, method)][0]:
        text = f"**{text}**"
    assert rows[0].split("|")[2].strip() == text


def test_psnr_time_one_row_per_method(tmp_path):
    """`make psnr-time`: bicubic, SC and every runtime of every shipped model for the scale."""
    from srcnn_tf import sparse_coding as sc

    record_dir = tiny_records(tmp_path, 3, (72, 80), seed=51, num_shards=1, val_fraction=0.34)
    run = tmp_path / "run"
    train_lib.train(train_lib.TrainConfig(record_dir=record_dir, run_dir=str(run),
                                          model=ModelConfig(preset="9-1-5", n1=16, n2=8),
                                          batch_size=16, max_steps=20, progress=False))
    models = tmp_path / "models"
    path = export.export_run(str(run), str(models), name="srcnn_915_x3")
    tflite_lib.export_tflite(path, None, None, 3, variants=("fp32",), rounds=1, latency_size=16)
    export.export_run(str(run), str(models), name="srcnn_915_x2")  # another scale: left out
    images = [natural_like(64, 64, 1, seed=s)[..., 0] for s in range(3)]
    high, low = sc.sample_patches(images, 2, count=1500)
    sc.save_version(sc.train_dictionaries(high, low, 2, atoms=32), str(models), {})
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    for i in range(2):
        imaging.save_image(test_dir / f"t{i}.png", natural_like(42, 45, seed=80 + i))
    r = subprocess.run([sys.executable, "-m", "pipelines.psnr_time", f"--set={test_dir}",
                        "--scale=3", f"--models_dir={models}", f"--out_dir={tmp_path / 'out'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads((tmp_path / "out" / "psnr_time_x3.json").read_text())
    rows = {row["method"]: row for row in data["rows"]}
    assert list(rows) == ["bicubic", "SC (sparse coding)", "SRCNN 9-1-5 SavedModel",
                          "SRCNN 9-1-5 TFLite fp32"]
    assert all(row["images"] == 2 and row["seconds"] > 0 for row in rows.values())
    bicubic = evaluate.evaluate_folder(predictors.bicubic_predictor, str(test_dir), 3, "b")
    assert rows["bicubic"]["psnr"] == pytest.approx(bicubic.psnr, abs=1e-9)
    assert abs(rows["SRCNN 9-1-5 SavedModel"]["psnr"] - rows["SRCNN 9-1-5 TFLite fp32"]["psnr"]
               ) <= 0.01
    assert (tmp_path / "out" / "psnr_time_x3.png").stat().st_size > 0
    assert len((tmp_path / "out" / "psnr_time_x3.md").read_text().splitlines()) == 2 + 4
    r = subprocess.run([sys.executable, "-m", "pipelines.psnr_time", f"--set={test_dir}",
                        "--scale=4", f"--models_dir={models}", f"--out_dir={tmp_path / 'x4'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "no exported srcnn*_x4 model under" in r.stderr
    assert not (tmp_path / "x4").exists()  # no figure without SRCNN in it


def test_fractional_scales_through_make_evaluate_and_every_runtime(tmp_path):
    """SCALES=1.5,2.5: HR cropped to multiples of 3 / 5, ceil(scale) shaved; a multi-scale
    model is told each factor by its run, SavedModel and TFLite alike."""
    record_dir = tiny_records(tmp_path, 3, (72, 80), seed=80, num_shards=1, val_fraction=0.34,
                              scale=(1.5, 2.5, 3))
    run = tmp_path / "run"
    train_lib.train(train_lib.TrainConfig(
        record_dir=record_dir, run_dir=str(run), batch_size=16, max_steps=30, val_every=15,
        model=ModelConfig(preset="9-1-5", n1=16, n2=8, scale_input=True), progress=False,
        learning_rate=3e-3))
    path = export.export_run(str(run), str(tmp_path / "sm"))
    tflite = os.path.join(tflite_lib.export_tflite(path, None, None, [1.5, 2.5], ("fp32",),
                                                   rounds=1, latency_size=16)["dir"],
                          "srcnn_multiscale_fp32.tflite")
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    imaging.save_image(test_dir / "t.png", natural_like(61, 67, seed=81))
    rows = {}
    for spec in (str(run), path, tflite, "bicubic"):
        out = tmp_path / "eval.json"
        r = subprocess.run([sys.executable, "-m", "pipelines.evaluate", f"--model={spec}",
                            f"--sets={test_dir}", "--scales=1.5,2.5", f"--out_dir={tmp_path}",
                            f"--json={out}"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        rows[spec] = {(x["method"] == "bicubic", x["scale"]): x["psnr"]
                      for x in json.loads(out.read_text())["results"]}
    for scale, multiple, shave in ((1.5, 3, 2), (2.5, 5, 3)):
        hr, inp = predictors.test_pair(str(test_dir / "t.png"), scale)
        assert hr.shape[:2] == (61 // multiple * multiple, 67 // multiple * multiple)
        bicubic = imaging.to_uint8(inp.astype(np.float64))
        assert rows["bicubic"][(True, scale)] == pytest.approx(
            evaluate.metrics.psnr(bicubic, hr, crop_border=shave), abs=1e-9)
        told = [rows[spec][(False, scale)] for spec in (str(run), path, tflite)]
        assert max(told) - min(told) < 0.01, told
    r = subprocess.run([sys.executable, "-m", "pipelines.evaluate", "--model=bicubic",
                        f"--sets={test_dir}", "--scales=1.2345"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0 and "1.2345 is not a ratio" in r.stderr
