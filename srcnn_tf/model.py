"""SRCNN as a Keras functional model: patch extraction, non-linear mapping, reconstruction.

A pure builder over public `keras` imports: no data, storage or training code.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

PRESETS = {"9-1-5": (9, 1, 5), "9-3-5": (9, 3, 5), "9-5-5": (9, 5, 5)}
SCALE_PLANES = 2


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture. `preset` names the filter sizes (f1-f2-f3); n1/n2 are the filter counts."""

    preset: str = "9-5-5"
    n1: int = 64
    n2: int = 32
    channels: int = 1
    padding: str = "valid"  # "valid" (paper) or "same"
    init: str = "he"  # "he" or "gaussian" (paper: N(0, 1e-3), zero bias)
    # Multi-scale models: the input also carries SCALE_PLANES constant planes (known, scale)
    # = (1, s) when the factor s is known and (0, 0) when it is not (see with_scale).
    scale_input: bool = False

    @property
    def in_channels(self) -> int:
        return self.channels + (SCALE_PLANES if self.scale_input else 0)

    @property
    def filters(self) -> tuple[int, int, int]:
        return parse_preset(self.preset)

    @property
    def border(self) -> int:
        """Receptive-field radius: pixels lost per side by 'valid' convolutions (6 for 9-1-5)."""
        return sum(f - 1 for f in self.filters) // 2

    def output_size(self, input_size: int) -> int:
        return input_size - 2 * self.border if self.padding == "valid" else input_size

    def validate(self) -> None:
        parse_preset(self.preset)
        if self.padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {self.padding!r}")
        if self.init not in ("he", "gaussian"):
            raise ValueError(f"init must be 'he' or 'gaussian', got {self.init!r}")
        if min(self.n1, self.n2, self.channels) < 1:
            raise ValueError(f"n1, n2, channels must be >= 1, got {self.n1}, {self.n2}, "
                             f"{self.channels}")


def parse_preset(preset: str) -> tuple[int, int, int]:
    """'9-5-5' -> (9, 5, 5); any odd sizes 'f1-f2-f3' are accepted."""
    if preset in PRESETS:
        return PRESETS[preset]
    try:
        sizes = tuple(int(s) for s in preset.split("-"))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or any(s < 1 or s % 2 == 0 for s in sizes):
        raise ValueError(f"model preset must be 'f1-f2-f3' with odd sizes (e.g. 9-5-5), "
                         f"got {preset!r}")
    return sizes  # type: ignore[return-value]


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
    """Edge-replicates `border` pixels on each side (the paper's test code), so a 'valid' model
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
