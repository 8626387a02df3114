"""SRCNN as a Keras functional model: patch extraction, non-linear mapping, reconstruction.

A pure builder over public `keras` imports: no data, storage or training code. The
architecture itself (ModelConfig) lives in architecture.py.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from srcnn_tf.architecture import PRESETS, SCALE_PLANES, ModelConfig, parse_preset

__all__ = ["PRESETS", "SCALE_PLANES", "ModelConfig", "build_srcnn", "conv_layers", "count_params",
           "pad_for_valid", "parse_preset", "super_resolve", "with_scale"]


def _kernel_init(init: str, seed: int | None) -> keras.initializers.Initializer:
    if init == "gaussian":
        return keras.initializers.RandomNormal(stddev=1e-3, seed=seed)
    return keras.initializers.HeNormal(seed=seed)


def build_srcnn(config: ModelConfig, seed: int | None = None, name: str | None = None,
                dtype: str | None = None) -> keras.Model:
    """Input (batch, H, W, C) float in [0, 1] (the bicubic-upscaled image; C + 2 channels for
    a `scale_input` model, see with_scale) -> (batch, H', W', C).

    'valid' padding shrinks H and W by 2 * border; 'same' keeps them. With `seed`, each layer's
    initialiser gets its own reproducible stream (seed, seed + 1, seed + 2). `dtype` is the
    layers' dtype policy (default: the global one, e.g. mixed_bfloat16 while training).
    """
    config.validate()
    f1, f2, f3 = config.filters
    layers = [
        (config.n1, f1, "relu", "patch_extraction", dtype),
        (config.n2, f2, "relu", "nonlinear_mapping", dtype),
        # The reconstruction stays float32 under mixed precision: its outputs are pixel values.
        (config.channels, f3, None, "reconstruction", "float32"),
    ]
    inputs = keras.Input((None, None, config.in_channels), name="image")
    x = inputs
    for i, (filters, size, activation, layer_name, dtype) in enumerate(layers):
        x = keras.layers.Conv2D(
            filters, size, padding=config.padding, activation=activation,
            kernel_initializer=_kernel_init(config.init, None if seed is None else seed + i),
            bias_initializer="zeros", name=layer_name, dtype=dtype,
        )(x)
    return keras.Model(inputs, x, name=name or f"srcnn_{config.preset}")


def conv_layers(model: keras.Model) -> list[keras.layers.Conv2D]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def pad_for_valid(images: tf.Tensor, border: int) -> tf.Tensor:
    """Edge-replicates `border` pixels on each side, so a 'valid' model
    returns an image of the input's size. images: (B, H, W, C).

    Built from slices, tiles and concats only (no index arithmetic), which every TFLite
    quantizer and delegate handles.
    """
    if border == 0:
        return images
    top, bottom = images[:, :1], images[:, -1:]
    images = tf.concat([tf.tile(top, [1, border, 1, 1]), images,
                        tf.tile(bottom, [1, border, 1, 1])], axis=1)
    left, right = images[:, :, :1], images[:, :, -1:]
    return tf.concat([tf.tile(left, [1, 1, border, 1]), images,
                      tf.tile(right, [1, 1, border, 1])], axis=2)


def with_scale(images: tf.Tensor, scale: tf.Tensor | float | None) -> tf.Tensor:
    """(B, H, W, C) -> (B, H, W, C + 2): the planes a `scale_input` model reads, constant
    (1, scale) for a known factor, (0, 0) for None (blind). `scale` may be a float or a (B,)
    tensor (one factor per example, as in multi-scale training batches)."""
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    ones = tf.ones(tf.concat([shape[:3], [1]], 0), images.dtype)
    if scale is None:
        known = value = tf.zeros_like(ones)
    else:
        s = tf.reshape(tf.cast(scale, images.dtype), [-1, 1, 1, 1])
        known, value = ones, ones * s
    return tf.concat([images, known, value], axis=-1)


def super_resolve(model: keras.Model, config: ModelConfig, images: tf.Tensor,
                  scale: tf.Tensor | float | None = None) -> tf.Tensor:
    """Bicubic-upscaled (B, H, W, C) float32 in [0, 1] -> SR (B, H, W, C), clipped to [0, 1].

    The border is edge-replicated for both paddings ('same' models then drop it), so results
    do not depend on zero padding and tiles with `border` pixels of context are exact. A
    `scale_input` model is told `scale` (None: blind); other models ignore it.
    """
    b = config.border
    if config.scale_input:
        images = with_scale(images, scale)
    y = tf.cast(model(pad_for_valid(images, b), training=False), tf.float32)
    if config.padding == "same" and b:
        y = y[:, b:-b, b:-b, :]
    return tf.clip_by_value(y, 0.0, 1.0)


def count_params(model: keras.Model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))
