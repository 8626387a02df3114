"""TensorFlow twins of the imaging protocol, for graphs that must carry it (the exported model).

Upscaling by an integer factor s with MATLAB's bicubic is periodic: output pixel s*i + p is a
fixed 4-tap combination of input pixels i-2..i+1 (or i-1..i+2) for each phase p. So the resize
is s small convolutions per axis over a symmetric-padded input, interleaved: no dense resize
matrix, and any input size.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from srcnn_tf import imaging


def _phase_taps(scale: int) -> tuple[np.ndarray, int]:
    """(taps (scale, K) float64, pad): output s*i + p = sum_k taps[p, k] * padded[i + k],
    with `padded` the input padded symmetrically by `pad` on both sides."""
    n = 64  # any length far from the borders gives the interior weights
    weights, indices = imaging.resize_contributions(n, n * scale, float(scale), antialiasing=False)
    pad = 3
    k = 2 * pad + 1
    taps = np.zeros((scale, k))
    i0 = 32  # an interior input pixel
    for p in range(scale):
        o = i0 * scale + p
        for w, idx in zip(weights[o], indices[o]):
            taps[p, idx - i0 + pad] += w
    return taps, pad


def upscale_bicubic(images: tf.Tensor, scale: int) -> tf.Tensor:
    """MATLAB `imresize(x, scale, 'bicubic')` for an integer `scale`, to float32 precision.

    images: float32 (B, H, W, C), any H, W >= 1. Returns (B, scale*H, scale*W, C).
    """
    x = tf.convert_to_tensor(images, tf.float32)
    if scale == 1:
        return x
    taps, pad = _phase_taps(scale)
    kernel = tf.constant(taps.T[:, None, None, :].astype(np.float32))  # (K, 1, 1, scale)
    x = _upscale_rows(x, kernel, pad, scale)
    x = tf.transpose(_upscale_rows(tf.transpose(x, [0, 2, 1, 3]), kernel, pad, scale),
                     [0, 2, 1, 3])
    return x


def _symmetric_index(n: tf.Tensor, pad: int) -> tf.Tensor:
    """Indices -pad..n+pad-1 mirrored MATLAB-style (edge sample repeated), for any n >= 1."""
    idx = tf.range(-pad, n + pad)
    period = 2 * n
    m = tf.math.floormod(idx, period)
    return tf.where(m < n, m, period - 1 - m)


def _upscale_rows(x: tf.Tensor, kernel: tf.Tensor, pad: int, scale: int) -> tf.Tensor:
    """Upscales axis 1 of (B, H, W, C): one valid 1-D convolution per phase, interleaved."""
    shape = tf.shape(x)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    padded = tf.gather(x, _symmetric_index(h, pad), axis=1)
    cols = tf.reshape(padded, [b, h + 2 * pad, w * c, 1])
    phases = tf.nn.conv2d(cols, kernel, strides=1, padding="VALID")  # (B, H, W*C, scale)
    out = tf.transpose(phases, [0, 1, 3, 2])  # (B, H, scale, W*C)
    return tf.reshape(out, [b, h * scale, w, c])


def _cubic(x: tf.Tensor) -> tf.Tensor:
    """Keys' cubic (a = -0.5), as imaging._cubic."""
    ax = tf.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = 1.5 * ax3 - 2.5 * ax2 + 1.0
    far = -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    return tf.where(ax <= 1, near, tf.where(ax <= 2, far, tf.zeros_like(ax)))


def output_length(n: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """ceil(scale * n) as int32, as imaging.output_size (float64, with a 1e-9 guard against
    3 * 77 = 231.00000000000003: the graph optimiser turns `/ 1e9` into `* 1e-9`, so
    numpy's round-to-9-decimals is written as a subtraction here)."""
    x = tf.cast(n, tf.float64) * scale
    return tf.cast(tf.math.ceil(x - 1e-9), tf.int32)


def exact_scale(scale: tf.Tensor) -> tf.Tensor:
    """A float32 scale as the float64 the user meant: the nearest p/q with q <= 20 when one is
    within float32 precision (2.5, 4/3, 1.1), else the value rounded to 6 decimals. So sizes
    and weights match numpy's for the same number (float32(1.1) = 1.10000002 would make
    ceil(10 * s) = 12)."""
    s = tf.cast(scale, tf.float64)
    q = tf.range(1, 21, dtype=tf.float64)
    ratios = tf.round(s * q) / q
    close = tf.abs(ratios - s) <= 1e-7 * tf.maximum(s, 1.0)
    first = tf.argmax(tf.cast(close, tf.int32))  # the smallest such denominator
    return tf.where(tf.reduce_any(close), tf.gather(ratios, first), tf.round(s * 1e6) / 1e6)


def _contributions(n: tf.Tensor, out: tf.Tensor, scale: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """imaging.resize_contributions for upscaling (scale >= 1) in the graph:
    weights (out, 6) float32 and mirrored indices (out, 6) int32."""
    x = tf.range(1, out + 1, dtype=tf.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = tf.floor(u - 2.0)
    indices = left[:, None] + tf.range(6, dtype=tf.float64)[None, :]
    weights = _cubic(u[:, None] - indices)
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    idx = tf.cast(indices, tf.int32) - 1
    period = 2 * n
    m = tf.math.floormod(idx, period)
    return tf.cast(weights, tf.float32), tf.where(m < n, m, period - 1 - m)


def resize_bicubic(images: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """MATLAB `imresize(x, scale, 'bicubic')` for any scale >= 1 given as a tensor (integer or
    fractional; the output is ceil(scale * H) x ceil(scale * W)), to float32 precision.

    images: float32 (B, H, W, C); scale: float scalar (float64 for exact sizes; see
    `exact_scale`). Slower than `upscale_bicubic` (a gather of 6 taps per output pixel and
    axis); the graph of models that take the scale as an input.
    """
    x = tf.convert_to_tensor(images, tf.float32)
    scale = tf.cast(scale, tf.float64)
    shape = tf.shape(x)
    h, w = shape[1], shape[2]
    out_h, out_w = output_length(h, scale), output_length(w, scale)
    wr, ir = _contributions(h, out_h, scale)
    x = tf.einsum("op,bopwc->bowc", wr, tf.gather(x, ir, axis=1))
    wc, ic = _contributions(w, out_w, scale)
    return tf.einsum("op,bhopc->bhoc", wc, tf.gather(x, ic, axis=2))


_RGB2YCBCR = tf.constant(np.array(imaging._RGB2YCBCR, np.float32))
_OFFSET = tf.constant(np.array(imaging._YCBCR_OFFSET, np.float32))
_YCBCR2RGB = tf.constant(np.linalg.inv(imaging._RGB2YCBCR).astype(np.float32))


def rgb_to_ycbcr(rgb: tf.Tensor) -> tf.Tensor:
    """Float RGB in [0, 1] (..., 3) -> MATLAB YCbCr in [0, 1] scale (Y in [16/255, 235/255])."""
    return tf.tensordot(rgb, tf.transpose(_RGB2YCBCR), axes=1) + _OFFSET


def ycbcr_to_rgb(ycc: tf.Tensor) -> tf.Tensor:
    return tf.tensordot(ycc - _OFFSET, tf.transpose(_YCBCR2RGB), axes=1)


def to_uint8(x: tf.Tensor) -> tf.Tensor:
    """[0, 1] float -> uint8 with MATLAB rounding (half away from zero) and clipping."""
    return tf.cast(tf.clip_by_value(tf.floor(x * 255.0 + 0.5), 0.0, 255.0), tf.uint8)
