"""Shared fixtures: the datasets beside the checkout and small synthetic images."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("SRCNN_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    if not (SHARED_DATA / "Set5").is_dir():
        pytest.skip(f"benchmark images not found at {SHARED_DATA} (set SRCNN_SHARED_DATA)")
    return SHARED_DATA


def natural_like(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth random uint8 image with edges (more like a photo than white noise)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(h // 4 + 2, w // 4 + 2, c))
    import cv2

    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, c)
    big[h // 3 : h // 2, :] += 60
    return np.clip(big + rng.normal(0, 4, size=big.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def image_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """Five small PNG/BMP/JPEG images (one gray) in nested folders."""
    from srcnn_tf import imaging

    d = tmp_path / "images"
    (d / "sub").mkdir(parents=True)
    imaging.save_image(d / "a.png", natural_like(60, 72, seed=1))
    imaging.save_image(d / "b.bmp", natural_like(51, 66, seed=2))
    imaging.save_image(d / "sub" / "c.png", natural_like(70, 48, c=1, seed=3))
    imaging.save_image(d / "sub" / "d.png", natural_like(45, 90, seed=4))
    imaging.save_image(d / "e.png", natural_like(64, 64, seed=5))
    return d


def tiny_records(root: pathlib.Path, n: int, size: tuple[int, int], seed: int, **kw) -> str:
    """Writes `n` synthetic images under root/img and their x3 records under root/rec; returns
    the records folder. `kw` goes to RecordsConfig (num_shards, val_fraction, stride ...)."""
    from srcnn_tf import imaging, records

    src = root / "img"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        imaging.save_image(src / f"{i}.png", natural_like(*size, seed=seed + i))
    cfg = records.RecordsConfig(input_dirs=(str(src),), out_dir=str(root / "rec"), progress=False,
                                workers=1, **kw)
    records.build_records(cfg)
    return cfg.record_dir
