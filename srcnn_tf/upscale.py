"""Super-resolving whole images of any size with an exported model, tile by tile."""

from __future__ import annotations

import json
import os
from typing import Iterator

import numpy as np

from srcnn_tf import imaging, predictors


def tiles(n: int, tile: int) -> Iterator[tuple[int, int]]:
    """[start, stop) ranges covering 0..n in steps of `tile`."""
    for start in range(0, n, tile):
        yield start, min(n, start + tile)


def _bicubic_region(image: np.ndarray, rows: tuple[np.ndarray, np.ndarray],
                    cols: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Rows/columns of the whole image's MATLAB bicubic upscale, from the LR pixels they need.

    image: uint8 (h, w, C); rows/cols: (weights, indices) slices of the whole-image
    contributions. Returns float64 (rows, cols, C), YCbCr for colour input (resizing is linear,
    so converting first is the same as converting after).
    """
    (rw, ri), (cw, ci) = rows, cols
    lr = image[ri.min():ri.max() + 1, ci.min():ci.max() + 1].astype(np.float64) / 255.0
    if lr.shape[2] == 3:
        lr = imaging.rgb2ycbcr(lr)
    up = np.einsum("op,opwc->owc", rw, lr[ri - ri.min()])
    return np.einsum("op,ropc->roc", cw, up[:, ci - ci.min()])


def upscale_array(image: np.ndarray, scale: int, predict_y: predictors.Predictor,
                  border: int, tile: int = 512) -> np.ndarray:
    """Super-resolves uint8 (H, W, 1 or 3) to uint8 (S*H, S*W, same C), tile by tile.

    Tiles are cut on the HR grid with `border` (receptive-field radius) pixels of context; the
    bicubic input of each is computed from the LR pixels it needs with the whole image's
    weights, and edge-replicated only beyond the image's own borders. So the result equals
    whole-image inference while memory is bounded by the tile size. Colour: SRCNN on Y,
    bicubic Cb/Cr; a gray image is its own Y.
    """
    h, w, c = image.shape
    hr_h, hr_w = h * scale, w * scale
    out = np.empty((hr_h, hr_w, c), np.uint8)
    rows = imaging.resize_contributions(h, hr_h, float(scale), antialiasing=False)
    cols = imaging.resize_contributions(w, hr_w, float(scale), antialiasing=False)
    for r0, r1 in tiles(hr_h, tile):
        rlo, rhi = max(0, r0 - border), min(hr_h, r1 + border)
        for c0, c1 in tiles(hr_w, tile):
            clo, chi = max(0, c0 - border), min(hr_w, c1 + border)
            up = _bicubic_region(image, (rows[0][rlo:rhi], rows[1][rlo:rhi]),
                                 (cols[0][clo:chi], cols[1][clo:chi]))
            pads = ((rlo - (r0 - border), r1 + border - rhi),
                    (clo - (c0 - border), c1 + border - chi), (0, 0))
            y = np.pad(up[..., :1], pads, mode="edge").astype(np.float32)
            sr = np.asarray(predict_y(y))[border:border + r1 - r0, border:border + c1 - c0]
            out[r0:r1, c0:c1] = predictors.merge_y(sr, up[r0 - rlo:r1 - rlo, c0 - clo:c1 - clo])
    return out


def upscale_file(path: str, out_path: str, model_dir: str, tile: int = 512,
                 max_pixels: int = imaging.MAX_PIXELS) -> tuple[int, int]:
    """Reads any image (gray, RGB, RGBA, 16-bit; EXIF orientation applied; at most
    `max_pixels` declared pixels), writes the SR image; returns its (H, W)."""
    with open(os.path.join(model_dir, "metadata.json")) as f:
        meta = json.load(f)
    image = imaging.load_image(path, max_pixels=max_pixels)
    sr = upscale_array(image, meta["scale"], predictors.saved_model_y_predictor(model_dir),
                       meta["border"], tile)
    imaging.save_image(out_path, sr)
    return sr.shape[0], sr.shape[1]
