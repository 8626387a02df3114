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
    contributions. Returns float64 (rows, cols, C) in [0, 1] (up to overshoot), YCbCr for colour
    input (resizing is linear, so converting first is the same as converting after); an alpha
    channel (C = 2 or 4) stays last.
    """
    (rw, ri), (cw, ci) = rows, cols
    lr = image[ri.min():ri.max() + 1, ci.min():ci.max() + 1].astype(np.float64) / 255.0
    if lr.shape[2] >= 3:
        lr[..., :3] = imaging.rgb2ycbcr(lr[..., :3])
    up = np.einsum("op,opwc->owc", rw, lr[ri - ri.min()])
    return np.einsum("op,ropc->roc", cw, up[:, ci - ci.min()])


def upscale_array(image: np.ndarray, scale: float, predict_y: predictors.Predictor,
                  border: int, tile: int = 512) -> np.ndarray:
    """Super-resolves uint8 (H, W, C) to uint8 (ceil(S*H), ceil(S*W), C), tile by tile (S any
    factor >= 1: MATLAB imresize's output size and weights); C = 1 gray, 3 RGB, and 2 / 4 the
    same with alpha, which is upscaled by the bicubic alone.

    Tiles are cut on the HR grid with `border` (receptive-field radius) pixels of context; the
    bicubic input of each is computed from the LR pixels it needs with the whole image's
    weights, and edge-replicated only beyond the image's own borders. So the result equals
    whole-image inference while memory is bounded by the tile size. Colour: SRCNN on Y,
    bicubic Cb/Cr; a gray image is its own Y.
    """
    h, w, c = image.shape
    colour = 3 if c >= 3 else 1
    hr_h, hr_w = imaging.output_size(h, w, scale)
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
            up = up[r0 - rlo:r1 - rlo, c0 - clo:c1 - clo]
            out[r0:r1, c0:c1, :colour] = predictors.merge_y(sr, up[..., :colour])
            out[r0:r1, c0:c1, colour:] = imaging.to_uint8(up[..., colour:])
    return out


def scale_for_size(height: int, width: int, size: tuple[int, int]) -> float:
    """The factor that takes an image of (height, width) to `size` = (width, height) with its
    aspect kept: from the larger side of `size` against the same side of the image."""
    target_w, target_h = size
    return target_w / width if target_w >= target_h else target_h / height


def model_scale(meta: dict, scale: float | None, model_dir: str) -> float:
    """The factor to run a model at: `scale`, checked against what the model serves (its one
    factor, or (1, max_scale] for a multi-scale model); the model's factor when None."""
    served = imaging.scale_list(meta["scale"])
    if len(served) > 1:
        top = meta.get("max_scale", imaging.MAX_SCALE)
        if scale is None:
            raise ValueError(f"{model_dir} is a multi-scale model: give the scale (1 < scale "
                             f"<= {top:g}) or a size")
        if not 1 < scale <= top:
            raise ValueError(f"scale {scale:g} is outside (1, {top:g}], the factors "
                             f"{model_dir} serves")
        return scale
    if scale is not None and scale != served[0]:
        raise ValueError(f"{model_dir} is an x{imaging.scale_label(served[0])} model, asked "
                         f"for x{scale:g}")
    return served[0]


def _check_output(path: str, out_path: str, channels: int) -> None:
    """Before the work: `out_path` has a format for `channels`, a folder to go in, and is not
    the input (which it would replace)."""
    imaging.output_format(out_path, channels)
    folder = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(folder):
        raise ValueError(f"{out_path}: no folder {folder} to write it in")
    if os.path.exists(out_path) and os.path.samefile(path, out_path):
        raise ValueError(f"{out_path} is the input image: writing it would replace the original")


def upscale_file(path: str, out_path: str, model_dir: str, tile: int = 512,
                 max_pixels: int = imaging.MAX_PIXELS, scale: float | None = None,
                 size: tuple[int, int] | None = None) -> tuple[int, int]:
    """Reads any image (gray, RGB, RGBA, 16-bit; EXIF orientation applied; at most
    `max_pixels` declared pixels), writes the SR image; returns its (H, W). Alpha is kept
    (bicubic), so `out_path` must then be a format that holds it (imaging.output_format).

    The factor is `scale`, or the one that reaches `size` = (width, height) with the aspect
    kept (scale_for_size), or the model's own; a multi-scale model needs one of the first two.
    The output must fit `max_pixels` too (checked before any work).
    """
    with open(os.path.join(model_dir, "metadata.json")) as f:
        meta = json.load(f)
    image = imaging.load_image(path, max_pixels=max_pixels, keep_alpha=True)
    h, w = image.shape[:2]
    _check_output(path, out_path, image.shape[2])
    if size is not None:
        scale = scale_for_size(h, w, size)
        top = meta.get("max_scale", imaging.MAX_SCALE)
        if not 1 < scale <= top:
            raise ValueError(f"size {size[0]}x{size[1]} needs x{scale:.4g} from {path} "
                             f"({w}x{h}): outside (1, {top:g}]")
    scale = model_scale(meta, scale, model_dir)
    out_h, out_w = imaging.output_size(h, w, scale)
    if out_h * out_w > max_pixels:
        raise ValueError(f"{path}: the x{scale:g} output {out_w}x{out_h} = {out_h * out_w} "
                         f"pixels exceeds the limit of {max_pixels} pixels (max_pixels)")
    told = scale if isinstance(meta["scale"], list) else None  # multi-scale: told the factor
    sr = upscale_array(image, scale, predictors.saved_model_y_predictor(model_dir, told),
                       meta["border"], tile)
    imaging.save_image(out_path, sr)
    return sr.shape[0], sr.shape[1]
