"""Sources -> patches -> shards + manifest, and the reader."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from srcnn_tf import imaging, records, sources
from srcnn_tf import patches as patches_lib

from conftest import ROOT, natural_like


def _config(src, out, **kw) -> records.RecordsConfig:
    kw.setdefault("num_shards", 3)
    kw.setdefault("val_fraction", 0.2)
    kw.setdefault("progress", False)
    kw.setdefault("workers", 1)
    return records.RecordsConfig(input_dirs=(str(src),), out_dir=str(out), **kw)


def _recompute(image_dir, sample, scale, patch, label, aug=0, channels=1, edge_pad=0):
    """The patch straight from the source file, without the records module."""
    img = imaging.load_image(image_dir / sample["source"])
    hr = imaging.to_y(img) if channels == 1 else (
        np.repeat(img, 3, 2) if img.shape[2] == 1 else img)
    if aug:
        si, flip, k = aug // 8, (aug // 4) % 2, aug % 4
        if patches_lib.AUG_SCALES[si] != 1.0:
            hr = imaging.imresize(hr, scale=patches_lib.AUG_SCALES[si])
        hr = np.rot90(hr[:, ::-1] if flip else hr, k)
    hr = imaging.modcrop(hr, scale).astype(np.float64) / 255.0
    inp = imaging.imresize(imaging.imresize(hr, scale=1 / scale), output_shape=hr.shape[:2])
    if edge_pad:
        hr, inp = (np.pad(a, ((edge_pad,) * 2, (edge_pad,) * 2, (0, 0)), mode="edge")
                   for a in (hr, inp))
    r, c, pad = sample["row"], sample["col"], (patch - label) // 2
    return (inp[r : r + patch, c : c + patch].astype(np.float32),
            hr[r + pad : r + pad + label, c + pad : c + pad + label].astype(np.float32))


def test_patches_match_independent_recomputation(image_dir, tmp_path):
    cfg = _config(image_dir, tmp_path / "rec", scale=3)
    manifest = records.build_records(cfg)
    samples = list(records.read_patches(cfg.record_dir))
    assert len(samples) == manifest["train"]["patches"] > 0
    for s in samples[:: max(1, len(samples) // 7)]:
        assert s["input"].shape == (33, 33, 1) and s["label"].shape == (21, 21, 1)
        inp, lab = _recompute(image_dir, s, 3, 33, 21)
        np.testing.assert_array_equal(s["input"], inp)
        np.testing.assert_array_equal(s["label"], lab)


def test_multiscale_records_store_each_patch_with_its_own_scale(image_dir, tmp_path):
    scales = (1.5, 2, 2.5, 3)
    cfg = _config(image_dir, tmp_path / "rec", scale=scales, stride=10, val_fraction=0.2)
    manifest = records.build_records(cfg)
    assert cfg.record_dir.endswith("x1.5,2,2.5,3") and manifest["scale"] == [1.5, 2, 2.5, 3]
    assert "scale" in manifest["features"]
    samples = list(records.read_patches(cfg.record_dir))
    counts = {s: sum(p["scale"] == s for p in samples) for s in scales}
    assert sum(counts.values()) == len(samples) == manifest["train"]["patches"]
    assert min(counts.values()) > 0.8 * max(counts.values()), counts  # positions take turns
    for p in samples[:: max(1, len(samples) // 9)]:  # each patch is what its own scale gives
        inp, lab = _recompute(image_dir, p, p["scale"], 33, 21)
        np.testing.assert_array_equal(p["input"], inp)
        np.testing.assert_array_equal(p["label"], lab)
    val = list(records.read_patches(cfg.record_dir, split="val"))  # every image at every scale
    assert sorted(v["scale"] for v in val) == sorted(scales * manifest["val"]["images"])
    for v in val:
        y = imaging.modcrop(imaging.to_y(imaging.load_image(image_dir / v["source"])), v["scale"])
        np.testing.assert_array_equal(imaging.to_uint8(v["label"]), y)
    single = records.build_records(_config(image_dir, tmp_path / "one", scale=3.0))
    assert single["scale"] == 3 and "scale" not in single["features"]
    assert {p["scale"] for p in records.read_patches(str(tmp_path / "one" / "x3"))} == {3}


def test_patch_grid_and_counts(image_dir, tmp_path):
    cfg = _config(image_dir, tmp_path / "rec", scale=2, patch_size=20, label_size=20, stride=10,
                  val_fraction=0)
    manifest = records.build_records(cfg)
    expected = 0
    for e in manifest["sources"]:
        h, w = e["height"] // 2 * 2, e["width"] // 2 * 2
        expected += len(range(0, h - 19, 10)) * len(range(0, w - 19, 10))
        assert e["patches"] == len(range(0, h - 19, 10)) * len(range(0, w - 19, 10))
    assert manifest["train"]["patches"] == expected
    assert sum(s["patches"] for s in manifest["train"]["shards"]) == expected


def test_downscaled_copies_alone(image_dir, tmp_path):
    """--downscale_copies: FSRCNN's five scales, no flips (training flips on the fly); records
    built before the option keep their fingerprint; with --augment it is an error."""
    plain = _config(image_dir, tmp_path / "plain", scale=3, val_fraction=0)
    assert "downscale_copies" not in plain.content_fields()
    cfg = dataclasses.replace(plain, out_dir=str(tmp_path / "ds"), downscale_copies=True)
    n_plain = records.build_records(plain)["train"]["patches"]
    manifest = records.build_records(cfg)
    n = manifest["train"]["patches"]
    assert records.describe(manifest)["downscale_copies"] is True  # named in training chains
    assert "downscale_copies" not in records.describe(records.load_manifest(plain.record_dir))
    samples = list(records.read_patches(cfg.record_dir))
    assert {s["aug"] for s in samples} == {0, 8, 16, 24, 32} and n_plain < n < 4 * n_plain
    for s in samples[:: max(1, len(samples) // 9)]:
        inp, lab = _recompute(image_dir, s, 3, 33, 21, aug=s["aug"])
        np.testing.assert_array_equal(s["input"], inp)
        np.testing.assert_array_equal(s["label"], lab)
    with pytest.raises(ValueError, match="downscale_copies: augment already"):
        records.build_records(dataclasses.replace(cfg, augment=True))


def test_edge_padded_patches_reach_past_the_image_edges(image_dir, tmp_path):
    """--edge_pad=8: each pair is edge-replicated by 8 pixels before the grid, so the first
    patch of an image starts 8 pixels outside it, as the 9-5-5's input does at inference, and
    its output label (the centre 17) starts at the image's first pixel. Named in training
    chains; records without it keep their fingerprint."""
    plain = _config(image_dir, tmp_path / "plain", scale=3, val_fraction=0)
    assert "edge_pad" not in plain.content_fields()
    cfg = dataclasses.replace(plain, out_dir=str(tmp_path / "edge"), edge_pad=8)
    n_plain = records.build_records(plain)["train"]["patches"]
    manifest = records.build_records(cfg)
    assert manifest["train"]["patches"] > n_plain
    assert records.describe(manifest)["edge_pad"] == 8
    assert "edge_pad" not in records.describe(records.load_manifest(plain.record_dir))
    samples = list(records.read_patches(cfg.record_dir))
    first = samples[0]
    assert (first["row"], first["col"]) == (0, 0)
    np.testing.assert_array_equal(first["input"][:8], np.repeat(first["input"][8:9], 8, 0))
    for s in samples[:: max(1, len(samples) // 9)]:
        inp, lab = _recompute(image_dir, s, 3, 33, 21, edge_pad=8)
        np.testing.assert_array_equal(s["input"], inp)
        np.testing.assert_array_equal(s["label"], lab)
    with pytest.raises(ValueError, match="edge_pad must be >= 0, got -1"):
        records.build_records(dataclasses.replace(cfg, edge_pad=-1))


def test_augmented_rgb_patches_match(image_dir, tmp_path):
    cfg = _config(image_dir, tmp_path / "rec", scale=2, augment=True, channels=3, stride=20,
                  val_fraction=0)
    records.build_records(cfg)
    samples = list(records.read_patches(cfg.record_dir))
    augs = {s["aug"] for s in samples}
    assert 0 in augs and max(augs) >= 8 * 3  # downscaled copies present
    for s in samples[:: max(1, len(samples) // 9)]:
        assert s["input"].shape == (33, 33, 3)
        inp, lab = _recompute(image_dir, s, 2, 33, 21, aug=s["aug"], channels=3)
        np.testing.assert_array_equal(s["input"], inp)
        np.testing.assert_array_equal(s["label"], lab)


def test_worker_count_does_not_change_bytes(image_dir, tmp_path):
    outs = []
    for workers in (1, 2):
        cfg = _config(image_dir, tmp_path / f"w{workers}", workers=workers)
        records.build_records(cfg)
        outs.append(pathlib.Path(cfg.record_dir))
    names = sorted(p.name for p in outs[0].glob("*.tfrecord"))
    assert names == sorted(p.name for p in outs[1].glob("*.tfrecord")) and len(names) == 4
    for n in names:
        assert (outs[0] / n).read_bytes() == (outs[1] / n).read_bytes()


def test_rerun_is_up_to_date_and_config_change_rebuilds(image_dir, tmp_path):
    cfg = _config(image_dir, tmp_path / "rec")
    records.build_records(cfg)
    shard = next(pathlib.Path(cfg.record_dir).glob("train-*"))
    mtime = shard.stat().st_mtime_ns
    again = records.build_records(cfg)
    assert again.get("up_to_date") and shard.stat().st_mtime_ns == mtime
    changed = records.build_records(_config(image_dir, tmp_path / "rec", stride=7))
    assert not changed.get("up_to_date") and changed["config"]["stride"] == 7
    forced = records.build_records(_config(image_dir, tmp_path / "rec", stride=7, overwrite=True))
    assert not forced.get("up_to_date")
    # A damaged shard is noticed and rebuilt.
    shard = next(pathlib.Path(cfg.record_dir).glob("train-*"))
    shard.write_bytes(b"junk")
    changed = records.build_records(_config(image_dir, tmp_path / "rec", stride=7))
    assert not changed.get("up_to_date")


def test_bad_inputs_are_skipped_named_and_counted(image_dir, tmp_path, caplog):
    (image_dir / "notes.png").write_text("not an image")
    good = (image_dir / "a.png").read_bytes()
    (image_dir / "cut.png").write_bytes(good[: len(good) // 3])
    imaging.save_image(image_dir / "tiny.png", natural_like(20, 20, seed=9))
    (image_dir / "copy.png").write_bytes(good)
    cfg = _config(image_dir, tmp_path / "rec", val_fraction=0)
    with caplog.at_level(logging.WARNING):
        manifest = records.build_records(cfg)
    text = caplog.text
    for name in ("notes.png", "cut.png", "tiny.png", "copy.png"):
        assert name in text
    status = {e["id"]: e["status"] for e in manifest["sources"]}
    assert status["notes.png"] == status["cut.png"] == status["tiny.png"] == "skipped"
    assert "duplicate" in (status["copy.png"], status["a.png"])
    assert manifest["skipped"] == 3 and manifest["duplicates"] == 1
    with pytest.raises(ValueError, match="notes.png"):
        records.build_records(_config(image_dir, tmp_path / "strict", strict=True))


def test_val_split_holds_whole_images(image_dir, tmp_path):
    cfg = _config(image_dir, tmp_path / "rec", val_fraction=0.4)
    manifest = records.build_records(cfg)
    val_ids = [e["id"] for e in manifest["sources"] if e["split"] == "val"]
    train_ids = {e["id"] for e in manifest["sources"] if e["split"] == "train"}
    assert len(val_ids) == 2 and not train_ids & set(val_ids)
    val = list(records.read_patches(cfg.record_dir, split="val"))
    assert [v["source"] for v in val] == val_ids
    for v in val:
        y = imaging.modcrop(imaging.to_y(imaging.load_image(image_dir / v["source"])), 3)
        assert v["label"].shape == v["input"].shape == y.shape
        np.testing.assert_array_equal(imaging.to_uint8(v["label"]), y)
    assert {s["source"] for s in records.read_patches(cfg.record_dir)} <= train_ids


def test_val_dir(image_dir, tmp_path):
    val_dir = tmp_path / "val"
    val_dir.mkdir()
    imaging.save_image(val_dir / "v.png", natural_like(40, 40, seed=7))
    manifest = records.build_records(_config(image_dir, tmp_path / "rec", val_dir=str(val_dir)))
    assert manifest["val"]["images"] == 1
    assert manifest["train"]["images"] == 5


@pytest.mark.parametrize("kw, message", [
    ({"scale": 1}, "scale"), ({"scale": (2, 2.25, 2)}, "twice"), ({"scale": 1.2345}, "ratio"),
    ({"label_size": 35}, "label_size"), ({"label_size": 20}, "even"),
    ({"stride": 0}, "stride"), ({"input_dirs": ("/no/such/dir",)}, "input_dirs"),
])
def test_bad_config_is_rejected_before_writing(tmp_path, image_dir, kw, message):
    kw = {"input_dirs": (str(image_dir),), **kw}
    cfg = records.RecordsConfig(out_dir=str(tmp_path / "rec"), progress=False, **kw)
    with pytest.raises(ValueError, match=message):
        records.build_records(cfg)
    assert not (tmp_path / "rec").exists()


def test_empty_input_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        records.build_records(_config(tmp_path / "empty", tmp_path / "rec"))


def test_default_source_is_scikit_image_photographs(tmp_path):
    cfg = records.RecordsConfig(out_dir=str(tmp_path), scale=4, stride=40, progress=False,
                                workers=1)
    manifest = records.build_records(cfg)
    ids = [e["id"] for e in manifest["sources"]]
    assert "astronaut.png" in ids and manifest["train"]["patches"] > 100


def _run_pipeline(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pipelines.make_records", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.parametrize("flag, message", [
    ("--scale=1", "must be a number > 1"), ("--scale=1.2345", "not a ratio"),
    ("--scale=2,2", "twice"), ("--label_size=40", "label_size"), ("--label_size=20", "even"),
    ("--stride=0", "stride"), ("--input_dir=/no/such", "not a directory"),
])
def test_pipeline_bad_flags(tmp_path, flag, message):
    r = _run_pipeline(flag, f"--out_dir={tmp_path}")
    assert r.returncode != 0 and message in r.stderr
    assert not any(tmp_path.iterdir())


def test_kill_9_mid_run_then_rerun_finishes(image_dir, tmp_path):
    for i in range(12):  # enough work to be caught mid-run
        imaging.save_image(image_dir / f"big{i}.png", natural_like(300, 300, seed=20 + i))
    out = tmp_path / "rec"
    args = [f"--input_dir={image_dir}", f"--out_dir={out}", "--workers=1", "--num_shards=4",
            "--noprogress"]
    p = subprocess.Popen([sys.executable, "-m", "pipelines.make_records", *args], cwd=ROOT,
                         start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list((out / "x3").glob("train-00001*")) and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (out / "x3" / "manifest.json").exists()
    r = _run_pipeline(*args)
    assert r.returncode == 0, r.stderr
    assert "written" in r.stderr
    ref = tmp_path / "ref"
    assert _run_pipeline(*[a.replace(str(out), str(ref)) for a in args]).returncode == 0
    for f in sorted((ref / "x3").glob("*.tfrecord")):
        assert (out / "x3" / f.name).read_bytes() == f.read_bytes()
    assert not list((out / "x3").glob("*.tmp"))
    manifest = json.loads((out / "x3" / "manifest.json").read_text())
    assert manifest["train"]["patches"] > 0


def test_t91_patch_count_matches_paper_order(shared_data, tmp_path):
    cfg = records.RecordsConfig(input_dirs=(str(shared_data / "T91"),), out_dir=str(tmp_path),
                                progress=False, workers=2)
    manifest = records.build_records(cfg)
    # 33x33 patches, stride 14, 86 training images (4 held out, t65.bmp a duplicate): the
    # count is deterministic.
    assert manifest["train"]["patches"] == 20_961 and manifest["train"]["images"] == 86
    assert manifest["duplicates"] == 1 and manifest["val"]["images"] == 4  # t36.bmp == t65.bmp


def test_tfds_dataset_that_cannot_be_had_is_named(monkeypatch, tmp_path):
    """Unknown names and failed downloads are one message naming the dataset (offline here:
    the download is made to fail the way a machine without network fails)."""
    import tensorflow_datasets as tfds

    with pytest.raises(ValueError, match=r"tfds_name 'no_such_set': Dataset no_such_set not "
                                         r"found\.$"):
        sources.tfds_sources("no_such_set", "train", "image")

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'data.vision.ee.ethz.ch'")

    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path))  # not the user's home
    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", offline)
    monkeypatch.setattr(tfds.download.DownloadManager, "download", offline)
    with pytest.raises(ValueError, match=r"tfds_name 'div2k/bicubic_x2': could not be downloaded "
                                         r"and prepared \(ConnectionError: Failed to resolve"):
        sources.tfds_sources("div2k/bicubic_x2", "train", "hr")


def test_tfds_source(tmp_path):
    """Any TFDS image dataset (here DIV2K's builder with mocked data: no download)."""
    import tensorflow_datasets as tfds

    cfg = records.RecordsConfig(tfds_name="div2k/bicubic_x2", tfds_image_key="hr", scale=2,
                                out_dir=str(tmp_path), patch_size=9, label_size=5, stride=4,
                                val_fraction=0.25, num_shards=2, progress=False, workers=1)
    with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
        manifest = records.build_records(cfg)
        again = records.build_records(cfg)
    ids = [e["id"] for e in manifest["sources"]]
    assert ids[0].startswith("div2k/bicubic_x2/train/") and len(ids) == 8
    assert manifest["val"]["images"] + manifest["train"]["images"] + manifest["skipped"] == 8
    assert manifest["train"]["patches"] > 0 and again.get("up_to_date")
    sample = next(records.read_patches(cfg.record_dir))
    assert sample["input"].shape == (9, 9, 1) and sample["source"] in ids


def test_several_folders_in_one_set(image_dir, tmp_path, caplog):
    """DATA=a,b: every folder's images, ids prefixed by folder name, per-folder counts in the
    manifest; the fingerprint covers the folder list, so adding one rebuilds (and says so)."""
    other = tmp_path / "more"
    other.mkdir()
    for i in range(2):
        imaging.save_image(other / f"m{i}.png", natural_like(50, 58, seed=20 + i))
    imaging.save_image(other / "a.png", natural_like(44, 46, seed=30))  # same name, other folder
    one = records.build_records(_config(image_dir, tmp_path / "one", val_fraction=0.0))
    cfg = dataclasses.replace(_config(image_dir, tmp_path / "one", val_fraction=0.0),
                              input_dirs=(str(image_dir), str(other)))
    with caplog.at_level("WARNING"):
        both = records.build_records(cfg)
    assert "replacing records built from images with records from images, more" in caplog.text
    ids = [s["id"] for s in both["sources"]]
    assert "images/a.png" in ids and "more/a.png" in ids and "images/sub/c.png" in ids
    assert [(f["prefix"], f["train_images"]) for f in both["folders"]] == \
        [("images/", 5), ("more/", 3)]
    assert both["train"]["patches"] == one["train"]["patches"] + both["folders"][1]["patches"]
    assert records.describe(both)["sources"] == ["images", "more"]
    assert records.build_records(cfg)["up_to_date"]
    assert "x3: " in records.summary(both) and "(images: " in records.summary(both)
    with pytest.raises(ValueError, match="given twice"):
        records.build_records(dataclasses.replace(cfg, input_dirs=(str(other), str(other))))


def test_pipeline_takes_comma_separated_folders(image_dir, tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipelines.make_records",
                        f"--input_dir={image_dir},{tmp_path / 'missing'}", f"--out_dir={tmp_path}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "not a directory" in r.stderr and "missing" in r.stderr
