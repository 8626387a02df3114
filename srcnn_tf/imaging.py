"""The paper's imaging protocol in numpy: loading, BT.601 YCbCr, modcrop, MATLAB bicubic.

Everything here matches MATLAB (`imread`, `rgb2ycbcr`, `imresize(..., 'bicubic')`) because the
published SRCNN numbers were computed with it; OpenCV/PIL/tf.image bicubic differ by 0.1-2 dB.
Imports nothing of this package and no TensorFlow, so record workers start in milliseconds.
"""

from __future__ import annotations

import fractions
import io
import math
import os
from typing import Sequence, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

PathOrBytes = Union[str, os.PathLike, bytes]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# The largest image, in pixels (width x height as declared in the file's header), that any
# reader of this project decodes: records, upscale, evaluate. Checked before decoding, so a
# small file that declares a huge size allocates nothing. Each command has a --max_pixels flag.
MAX_PIXELS = 64_000_000

# MATLAB rgb2ycbcr (BT.601, "studio swing": Y in 16..235, Cb/Cr in 16..240) for [0, 1] input.
_RGB2YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]
) / 255.0
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0


class ImageError(ValueError):
    """A file that cannot be used as an image; the message names it."""


def load_image(source: PathOrBytes, name: str | None = None,
               max_pixels: int = MAX_PIXELS, keep_alpha: bool = False) -> np.ndarray:
    """Decodes an image file (or its bytes) to uint8 HxWxC with C = 1 (gray) or 3 (RGB), as it
    is displayed: an EXIF orientation (phone photos) is applied.

    Accepts 8-bit gray, RGB, RGBA/LA, palette (with or without transparency), 16-bit (scaled to
    8 bit by round(v / 257)) and CMYK. Alpha is dropped unless `keep_alpha`: then an image that
    has it comes back with it last (C = 2 gray + alpha, 4 RGBA). `name` is used in error
    messages when `source` is bytes.
    Raises ImageError naming the file for anything that does not decode, for animations and
    multi-page files, and for images whose declared width x height exceeds `max_pixels`
    (before any pixel is decoded).
    """
    label = name or (source if not isinstance(source, bytes) else "<bytes>")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise ImageError(f"{label}: {width}x{height} = {width * height} pixels exceeds "
                                 f"the limit of {max_pixels} pixels (max_pixels)")
            frames = getattr(im, "n_frames", 1)
            if frames > 1:  # an animation or a multi-page file: one frame would be a loss
                raise ImageError(f"{label}: {frames} frames (animated or multi-page); single "
                                 f"images only")
            im.load()
            return _to_array(ImageOps.exif_transpose(im), label, keep_alpha)
    except Image.DecompressionBombError as e:
        raise ImageError(f"{label}: declared size exceeds the limit of {max_pixels} pixels "
                         f"(max_pixels; {e})") from None
    except UnidentifiedImageError:  # its message names an in-memory buffer, not the file
        raise ImageError(f"{label}: not a readable image (no image format recognized)") from None
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"{label}: not a readable image ({e})") from e


def _to_array(im: Image.Image, label: str, keep_alpha: bool) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float64)
        if mode == "I" and arr.max(initial=0) <= 255:
            out = arr
        else:
            out = arr / 257.0
        return np.clip(matlab_round(out), 0, 255).astype(np.uint8)[..., None]
    if mode == "F":
        raise ImageError(f"{label}: floating-point images are not supported (mode F)")
    if mode in ("P", "PA"):
        im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
    alpha = keep_alpha and ("A" in im.getbands() or "a" in im.getbands())
    if im.mode in ("1", "L", "LA", "La"):
        return np.atleast_3d(np.asarray(im.convert("LA" if alpha else "L"), dtype=np.uint8))
    # RGB, RGBA, CMYK, YCbCr, LAB, HSV, RGBX ...: Pillow converts to RGB(A).
    return np.asarray(im.convert("RGBA" if alpha else "RGB"), dtype=np.uint8)


# What `save_image` writes for each format Pillow saves: the formats that keep an alpha channel,
# and the options that keep an SR result as computed (Pillow's defaults are JPEG quality 75 with
# 4:2:0 chroma and lossy WebP).
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")
_SAVE_OPTIONS = {"JPEG": {"quality": 95, "subsampling": 0}, "WEBP": {"lossless": True}}


def output_format(path: str | os.PathLike, channels: int) -> str:
    """The Pillow format `save_image` writes `path` in, for an image of `channels` (1-4; 2 and 4
    carry alpha). Raises ValueError naming the path when its extension is unknown or its
    format cannot hold the alpha channel; call it before the work that produces the image."""
    ext = os.path.splitext(str(path))[1].lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"{path}: unknown image extension {ext or '(none)'!r}: use .png, .jpg, "
                         f".webp, .tif or .bmp")
    if channels in (2, 4) and fmt not in ALPHA_FORMATS:
        raise ValueError(f"{path}: {fmt} has no alpha channel and the image has one: write "
                         f".png, .webp or .tif to keep its transparency")
    return fmt


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes uint8 HxW or HxWxC (C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) in the format of
    the extension (`output_format`): JPEG at quality 95 without chroma subsampling, WebP
    lossless."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"save_image wants uint8, got {arr.dtype}")
    fmt = output_format(path, arr.shape[2] if arr.ndim == 3 else 1)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    Image.fromarray(arr).save(path, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))


def matlab_round(x: np.ndarray) -> np.ndarray:
    """Rounds half away from zero, as MATLAB's `round` and uint8 conversion do (numpy rounds half
    to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def rgb2ycbcr(rgb: np.ndarray) -> np.ndarray:
    """MATLAB `rgb2ycbcr`: uint8 in -> uint8 out (rounded); float in [0, 1] -> float64 out.

    Shape HxWx3 -> HxWx3, Y in [16, 235] (uint8) or [16/255, 235/255] (float).
    """
    is_uint8 = rgb.dtype == np.uint8
    x = rgb.astype(np.float64) / 255.0 if is_uint8 else rgb.astype(np.float64)
    out = x @ _RGB2YCBCR.T + _YCBCR_OFFSET
    if is_uint8:
        return np.clip(matlab_round(out * 255.0), 0, 255).astype(np.uint8)
    return out


def ycbcr2rgb(ycbcr: np.ndarray) -> np.ndarray:
    """MATLAB `ycbcr2rgb`, the inverse of rgb2ycbcr; same dtype rules (uint8 in -> uint8 out)."""
    is_uint8 = ycbcr.dtype == np.uint8
    x = ycbcr.astype(np.float64) / 255.0 if is_uint8 else ycbcr.astype(np.float64)
    out = (x - _YCBCR_OFFSET) @ np.linalg.inv(_RGB2YCBCR).T
    if is_uint8:
        return np.clip(matlab_round(out * 255.0), 0, 255).astype(np.uint8)
    return out


def to_y(image: np.ndarray) -> np.ndarray:
    """uint8 HxWx{1,3} -> uint8 HxWx1 luminance; a grayscale image is its own Y (not rescaled)."""
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected HxWx1 or HxWx3, got shape {image.shape}")
    if image.shape[2] == 1:
        return image
    y = image.astype(np.float64) @ (_RGB2YCBCR[0] / 255.0) + _YCBCR_OFFSET[0]  # rgb2ycbcr's Y row
    return np.clip(matlab_round(y * 255.0), 0, 255).astype(np.uint8)[..., None]


# The largest upscaling factor any model of this project serves (the papers' range is 2..4;
# fractional factors are served from 1 up).
MAX_SCALE = 4.0
_MAX_DENOMINATOR = 20


def scale_ratio(scale: float) -> tuple[int, int]:
    """(p, q): `scale` = p / q in lowest terms with q <= 20, e.g. 3 -> (3, 1), 2.5 -> (5, 2).

    The evaluation/training protocol needs the ratio: an HR side that is a multiple of p
    shrinks by 1/scale to an integer LR side that grows back to exactly the HR side.
    Raises ValueError naming the value when `scale` <= 1 or is no such ratio (e.g. 1.2345).
    """
    if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 1:
        raise ValueError(f"scale must be a number > 1, got {scale!r}")
    frac = fractions.Fraction(float(scale)).limit_denominator(_MAX_DENOMINATOR)
    if abs(float(frac) - float(scale)) > 1e-9:
        raise ValueError(f"scale {scale!r} is not a ratio p/q with q <= {_MAX_DENOMINATOR} "
                         f"(e.g. 1.5, 2.5, 4/3): the HR -> LR -> HR protocol needs one")
    return frac.numerator, frac.denominator


def scale_label(scale: float) -> str:
    """'3' for 3 or 3.0, '2.5' for 2.5: how scales appear in names, folders and tables."""
    return f"{float(scale):g}"


def scale_list(scale: "float | Sequence[float]") -> tuple[float, ...]:
    """One factor or several (a multi-scale set or model) as a tuple; integral values as int."""
    values = tuple(scale) if isinstance(scale, (tuple, list)) else (scale,)
    return tuple(int(v) if float(v).is_integer() else float(v) for v in values)


def scale_json(scale: "float | Sequence[float]") -> "int | float | list[float]":
    """How manifests, run configs and metadata store a scale: 3, 2.5, or [1.5, 2, 3] for a
    multi-scale set or model."""
    values = scale_list(scale)
    return values[0] if len(values) == 1 else list(values)


def scale_name(scale: "float | Sequence[float]") -> str:
    """'3', '2.5' or '1.5,2,3': the suffix of records folders (x<name>)."""
    return ",".join(scale_label(v) for v in scale_list(scale))


def shave(scale: float) -> int:
    """Pixels shaved from each border before measuring: `scale` (the papers' rule), rounded up
    for fractional scales."""
    return int(math.ceil(float(scale) - 1e-9))


def modcrop(image: np.ndarray, scale: float) -> np.ndarray:
    """Crops the bottom/right so that height and width are multiples of `scale` (MATLAB modcrop)
    or, for a fractional scale p/q, of p: then HR -> LR (x q/p) -> HR round-trips in size."""
    multiple = crop_multiple(scale)
    h, w = image.shape[:2]
    return image[: h - h % multiple, : w - w % multiple]


def crop_multiple(scale: float) -> int:
    """What HR sides must be multiples of at `scale`: the scale itself, or p of p/q."""
    if isinstance(scale, int) and scale >= 1:
        return scale
    return scale_ratio(scale)[0]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as in MATLAB's imresize."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (
        -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    ) * ((ax > 1) & (ax <= 2))


def resize_contributions(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB imresize `contributions`: weights (out, P) float64 and 0-based indices (out, P).

    When shrinking with antialiasing the kernel is widened by 1/scale; indices outside the input
    are mirrored symmetrically (edge sample repeated), and all-zero columns are dropped.
    """
    kernel_width = 4.0
    if scale < 1 and antialiasing:
        kernel = lambda x: scale * _cubic(scale * x)  # noqa: E731
        kernel_width = kernel_width / scale
    else:
        kernel = _cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(p)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = aux[np.mod(indices.astype(np.int64) - 1, aux.size)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _output_length(in_length: int, scale: float) -> int:
    # round() guards against 255 * (1/3) = 85.00000000000001 giving 86.
    return int(math.ceil(round(in_length * scale, 9)))


def imresize(
    image: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> np.ndarray:
    """MATLAB `imresize(image, scale, 'bicubic')` on HxW or HxWxC.

    Give `scale` (output size ceil(in * scale)) or `output_shape` (h, w). Float input is
    resized in float64 and returned as float64 (no clipping, like MATLAB); uint8 input is
    returned rounded and clipped to uint8. Rows are resized first unless they shrink less
    than the columns (MATLAB's dimension order).
    """
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale and output_shape")
    h, w = image.shape[:2]
    if output_shape is not None:
        out_h, out_w = output_shape
        scales = (out_h / h, out_w / w)
    else:
        scales = (float(scale), float(scale))
        out_h, out_w = _output_length(h, scale), _output_length(w, scale)
    is_uint8 = image.dtype == np.uint8
    out = image.astype(np.float64)
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for axis in order:
        in_len, out_len = out.shape[axis], (out_h, out_w)[axis]
        weights, indices = resize_contributions(in_len, out_len, scales[axis], antialiasing)
        out = np.moveaxis(out, axis, 0)
        gathered = out[indices]  # (out_len, P, ...)
        out = np.einsum("op,op...->o...", weights, gathered)
        out = np.moveaxis(out, 0, axis)
    if is_uint8:
        return np.clip(matlab_round(out), 0, 255).astype(np.uint8)
    return out


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Isotropic Gaussian blur (window 2*ceil(3 sigma)+1, symmetric border) on float HxW[xC]."""
    if sigma <= 0:
        return image
    radius = int(math.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-(t**2) / (2 * sigma**2))
    k /= k.sum()
    out = image.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="symmetric")
        out = sum(
            k[i] * np.take(padded, np.arange(i, i + out.shape[axis]), axis=axis)
            for i in range(k.size)
        )
    return out


def degrade(hr: np.ndarray, scale: float, blur_sigma: float = 0.0) -> np.ndarray:
    """The paper's network input: bicubic down by 1/scale then back up, both MATLAB-style.

    hr: float HxW[xC] in [0, 1], already `modcrop`ped (H, W multiples of `scale`, or of p for a
    fractional scale p/q). Returns float64 of the same shape, unclipped (values may leave
    [0, 1] slightly).
    """
    h, w = hr.shape[:2]
    multiple = crop_multiple(scale)
    if h % multiple or w % multiple:
        raise ValueError(f"HR size {h}x{w} does not fit scale {scale_label(scale)}: modcrop first")
    lr = imresize(gaussian_blur(hr, blur_sigma), scale=1.0 / scale)
    return imresize(lr, output_shape=(h, w))


def output_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(ceil(scale * height), ceil(scale * width)): MATLAB imresize's output size."""
    return _output_length(height, scale), _output_length(width, scale)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8 as MATLAB's `uint8(x * 255)` does (round half away, clip)."""
    return np.clip(matlab_round(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def centre_crops(*images: np.ndarray, size: int = 128) -> np.ndarray:
    """The same centre crop (at most size x size) of each HxWxC image, float [0, 1] or uint8,
    side by side as one uint8 batch of one (1, s, n * s, C), e.g. bicubic | SR | HR."""
    h, w = images[-1].shape[:2]
    s = min(h, w, size)
    r, c = (h - s) // 2, (w - s) // 2
    crops = [x if x.dtype == np.uint8 else to_uint8(x) for x in images]
    return np.concatenate([x[r:r + s, c:c + s] for x in crops], axis=1)[None]


def list_images(folder: str | os.PathLike) -> list[str]:
    """Image files under `folder` (recursive), sorted by relative path, by extension."""
    found = []
    for root, _, files in os.walk(folder, followlinks=True):
        for f in files:
            if f.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(root, f))
    return sorted(found, key=lambda p: os.path.relpath(p, folder))
