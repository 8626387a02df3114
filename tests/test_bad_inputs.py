"""Broken and awkward files through records, upscale and evaluate: each is used as displayed or
left out with a message naming it; nothing crashes, nothing is lost without a word."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from srcnn_tf import evaluate, export, imaging, predictors, records, signatures
from srcnn_tf import upscale as upscale_lib
from srcnn_tf.model import ModelConfig, build_srcnn

from conftest import ROOT, natural_like

SCALE = 3


def bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A valid-looking PNG of a few dozen bytes whose header declares width x height."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def save_exif_rotated(path, stored: np.ndarray, orientation: int = 6) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, format="JPEG", quality=95, exif=exif.tobytes())


GOOD = {  # name -> displayed (height, width)
    "plain.png": (60, 72), "nested/deeper/plain.bmp": (51, 66), "фото ü.png": (48, 50),
    "gray16.png": (45, 54), "cmyk.jpg": (40, 44), "palette.png": (42, 39),
    "alpha.png": (36, 57), "exif6.jpg": (197, 176),
}
BAD = {  # name -> what the message says
    "corrupt.png": "not a readable image", "empty.png": "not a readable image",
    "notes.png": "not a readable image", "bomb.png": "max_pixels",
    "pages.tif": "2 frames",
}
TOO_SMALL = "one_pixel.png"


@pytest.fixture(scope="module")
def awkward_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("awkward")
    (d / "nested" / "deeper").mkdir(parents=True)
    imaging.save_image(d / "plain.png", natural_like(60, 72, seed=1))
    imaging.save_image(d / "nested" / "deeper" / "plain.bmp", natural_like(51, 66, seed=2))
    imaging.save_image(d / "фото ü.png", natural_like(48, 50, seed=3))
    Image.fromarray(natural_like(45, 54, c=1, seed=4)[..., 0].astype(np.uint16) * 257).save(
        d / "gray16.png")
    Image.fromarray(natural_like(40, 44, seed=5)).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(natural_like(42, 39, seed=6)).convert("P").save(d / "palette.png")
    rgba = np.concatenate([natural_like(36, 57, seed=7), np.full((36, 57, 1), 128, np.uint8)], 2)
    Image.fromarray(rgba).save(d / "alpha.png")
    save_exif_rotated(d / "exif6.jpg", natural_like(176, 197, seed=8))  # stored 197 wide
    good = io.BytesIO()
    Image.fromarray(natural_like(50, 50, seed=9)).save(good, format="PNG")
    (d / "corrupt.png").write_bytes(good.getvalue()[:200])
    (d / "empty.png").write_bytes(b"")
    (d / "notes.png").write_text("not an image at all")
    (d / "bomb.png").write_bytes(bomb_png())
    frames = [Image.fromarray(natural_like(30, 32, seed=10 + i)) for i in range(2)]
    frames[0].save(d / "pages.tif", save_all=True, append_images=frames[1:])
    imaging.save_image(d / TOO_SMALL, np.zeros((1, 1, 3), np.uint8))
    return d


def test_load_image_applies_exif_orientation_and_refuses_huge_headers(awkward_dir):
    img = imaging.load_image(str(awkward_dir / "exif6.jpg"))
    assert img.shape == (197, 176, 3)  # as displayed, not as stored (176, 197)
    with pytest.raises(imaging.ImageError, match=r"bomb\.png.*64000000 pixels"):
        imaging.load_image(str(awkward_dir / "bomb.png"))
    with pytest.raises(imaging.ImageError, match="plain.png: 72x60 = 4320 pixels exceeds the "
                                                 "limit of 4000 pixels"):
        imaging.load_image(str(awkward_dir / "plain.png"), max_pixels=4000)


def test_records_use_every_readable_image_and_name_each_skipped_one(awkward_dir, tmp_path):
    cfg = records.RecordsConfig(input_dirs=(str(awkward_dir),), out_dir=str(tmp_path),
                                val_fraction=0.0, workers=2, num_shards=3, progress=False,
                                stride=21)
    manifest = records.build_records(cfg)
    by_id = {e["id"]: e for e in manifest["sources"]}
    assert sorted(by_id) == sorted([*GOOD, *BAD, TOO_SMALL])
    for name, (h, w) in GOOD.items():
        assert by_id[name]["status"] == "ok" and (by_id[name]["height"], by_id[name]["width"]) \
            == (h, w), name
    for name, why in BAD.items():
        assert by_id[name]["status"] == "skipped" and name in by_id[name]["reason"] and \
            why in by_id[name]["reason"], by_id[name]
    assert by_id[TOO_SMALL]["status"] == "skipped" and "too small" in by_id[TOO_SMALL]["reason"]
    assert manifest["skipped"] == len(BAD) + 1 and manifest["train"]["images"] == len(GOOD)
    with pytest.raises(ValueError, match="bomb.png"):
        records.build_records(cfg.__class__(**{**cfg.__dict__, "strict": True,
                                               "overwrite": True}))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    config = ModelConfig(n1=8, n2=4)
    return export.export_saved_model(build_srcnn(config, seed=0), config, SCALE,
                                     str(tmp_path_factory.mktemp("models")))


def test_upscale_takes_each_readable_file_as_displayed(awkward_dir, tiny_model, tmp_path):
    for name, (h, w) in GOOD.items():
        out = tmp_path / (name.replace("/", "_") + ".png")
        assert upscale_lib.upscale_file(str(awkward_dir / name), str(out), tiny_model) == \
            (SCALE * h, SCALE * w), name
        assert Image.open(out).size == (SCALE * w, SCALE * h)
    for name, why in BAD.items():
        with pytest.raises(imaging.ImageError, match=why) as e:
            upscale_lib.upscale_file(str(awkward_dir / name), str(tmp_path / "x.png"), tiny_model)
        assert name in str(e.value)


def test_upscale_command_answers_a_bad_file_with_one_line(awkward_dir, tiny_model, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.upscale", f"--image={awkward_dir / 'bomb.png'}",
         f"--model={tiny_model}", f"--out={tmp_path / 'o.png'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "bomb.png" in last and "64000000 pixels" in last
    assert not (tmp_path / "o.png").exists()


def test_evaluate_measures_the_readable_images_and_lists_the_rest(awkward_dir):
    result = evaluate.evaluate_folder(predictors.bicubic_predictor, str(awkward_dir), SCALE,
                                      "bicubic")
    assert result.images == len(GOOD)
    assert len(result.skipped) == len(BAD) + 1
    for name in [*BAD, TOO_SMALL]:
        assert any(name in s for s in result.skipped), name
    assert json.dumps(result.row())  # the skipped reasons go into results.json


def test_upscale_encoded_checks_the_declared_size_before_decoding(tiny_model):
    import tensorflow as tf

    fn = tf.saved_model.load(tiny_model).signatures["upscale_encoded"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="declared height \\* width"):
        fn(image_bytes=tf.constant([bomb_png()]))
    for fmt in ("PNG", "JPEG", "GIF", "BMP"):
        data = io.BytesIO()
        Image.fromarray(natural_like(23, 31, seed=3)).save(data, format=fmt)
        assert signatures.declared_size(tf.constant(data.getvalue())).numpy().tolist() == [23, 31]
        out = fn(image_bytes=tf.constant([data.getvalue()]))["image_bytes"].numpy()[0]
        assert Image.open(io.BytesIO(out)).size == (31 * SCALE, 23 * SCALE)
