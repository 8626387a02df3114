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
