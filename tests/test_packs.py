"""Image packs: the records' own patches and held-out images, cut again from uint8 Y images."""

from __future__ import annotations

import json

import numpy as np
import pytest

from srcnn_tf import imaging, packs, records

from conftest import natural_like


def _records(image_dir, out, **kw) -> str:
    cfg = records.RecordsConfig(input_dirs=(str(image_dir),), out_dir=str(out), num_shards=1,
                                val_fraction=0.2, progress=False, workers=1, **kw)
    records.build_records(cfg)
    return cfg.record_dir


@pytest.mark.parametrize("kw", [{"scale": 3}, {"scale": (1.5, 2, 3)},
                                {"scale": 3, "downscale_copies": True},
                                {"scale": 3, "edge_pad": 8}])
def test_pack_gives_the_records_patches_and_val_images(image_dir, tmp_path, kw):
    record_dir = _records(image_dir, tmp_path / "rec", stride=10, **kw)
    info = packs.write_pack(record_dir, str(tmp_path / "images.npz"))
    assert (info["train"], info["val"]) == (4, 1)
    pack = packs.read_pack(str(tmp_path / "images.npz"))
    inputs, labels, scales = packs.patch_bank(pack)
    want = list(records.read_patches(record_dir))  # one shard: records order = image order
    assert len(inputs) == len(want) > 0
    np.testing.assert_array_equal(inputs, np.stack([p["input"] for p in want]))
    np.testing.assert_array_equal(labels, np.stack([p["label"] for p in want]))
    np.testing.assert_array_equal(scales, [p["scale"] for p in want])
    val = list(records.read_patches(record_dir, "val"))
    got = packs.val_images(pack)
    assert [s for s, _, _ in got] == [v["scale"] for v in val]
    for (_, inp, hr), v in zip(got, val):
        np.testing.assert_array_equal(inp, v["input"])
        np.testing.assert_array_equal(hr, imaging.to_uint8(v["label"]))


def test_pack_at_another_scale_equals_those_records(image_dir, tmp_path):
    pack_path = str(tmp_path / "images.npz")
    packs.write_pack(_records(image_dir, tmp_path / "x3", scale=3), pack_path)
    x2 = _records(image_dir, tmp_path / "x2", scale=2)
    inputs, _, scales = packs.patch_bank(packs.read_pack(pack_path), (2.0,))
    want = list(records.read_patches(x2))
    np.testing.assert_array_equal(inputs, np.stack([p["input"] for p in want]))
    assert set(scales.tolist()) == {2.0}


def test_changed_or_missing_images_are_named(image_dir, tmp_path):
    record_dir = _records(image_dir, tmp_path / "rec", scale=3)
    imaging.save_image(image_dir / "e.png", natural_like(64, 64, seed=99))
    with pytest.raises(ValueError, match="e.png: not the image the records"):
        packs.write_pack(record_dir, str(tmp_path / "p.npz"))
    with pytest.raises(FileNotFoundError, match="make records"):
        packs.write_pack(str(tmp_path / "none"), str(tmp_path / "p.npz"))


def test_a_file_that_is_not_a_pack_is_named(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a pack")
    with pytest.raises(ValueError, match="bad.npz: not an image pack"):
        packs.read_pack(str(bad))


@pytest.mark.parametrize("shape", [(37, 41, 1), (23, 19, 3), (5, 16400, 1)])
def test_images_are_stored_losslessly(shape):
    image = natural_like(*shape)  # (5, 16400): over WebP's 16,383-pixel side, so PNG
    data = packs.encode_image(image)
    assert data.dtype == np.uint8 and data.ndim == 1
    assert data[:4].tobytes() == (b"RIFF" if shape[1] < 16384 else b"\x89PNG")
    back = packs.decode_image(data, shape[2])
    assert back.dtype == np.uint8 and np.array_equal(back, image)


def test_format_1_packs_still_read_and_bad_entries_are_named(image_dir, tmp_path):
    new = str(tmp_path / "new.npz")
    packs.write_pack(_records(image_dir, tmp_path / "x3", scale=3), new)
    pack = packs.read_pack(new)
    with np.load(new) as z:
        manifest = json.loads(str(z["manifest"]))
        entries = {k: z[k] for k in z.files if k != "manifest"}
    old = str(tmp_path / "old.npz")
    np.savez_compressed(old, manifest=np.array(json.dumps({**manifest, "format": 1})),
                        **{f"train_{i:05d}": hr for i, hr in pack.train},
                        **{f"val_{i:05d}": hr for i, hr in enumerate(pack.val)})
    again = packs.read_pack(old)
    assert [i for i, _ in again.train] == [i for i, _ in pack.train]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(again.train, pack.train))
    key = sorted(entries)[0]
    broken = str(tmp_path / "broken.npz")
    np.savez(broken, manifest=np.array(json.dumps(manifest)),
             **{**entries, key: entries[key][:40]})
    with pytest.raises(ValueError, match=f"broken.npz: {key}: not an encoded image"):
        packs.read_pack(broken)
