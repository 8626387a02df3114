"""The SRCNN network in JAX: model.build_srcnn's three convolutions as a list of (kernel HWIO,
bias) arrays, their initialisation and warm-start weights, for the JAX trainer (jax_train.py).
Imports JAX and numpy only (no TensorFlow)."""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from srcnn_tf import weights as weights_lib
from srcnn_tf.architecture import ModelConfig


def param_shapes(model: ModelConfig) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """[(kernel HWIO, bias)] shapes of the three convolutions, as Keras's Conv2D holds them."""
    f1, f2, f3 = model.filters
    return [((f1, f1, model.in_channels, model.n1), (model.n1,)),
            ((f2, f2, model.n1, model.n2), (model.n2,)),
            ((f3, f3, model.n2, model.channels), (model.channels,))]


def forward(params: list, x: jax.Array, dtype: Any = jnp.float32) -> jax.Array:
    """(B, H, W, C_in) -> (B, H - 2 border, W - 2 border, C): 'valid' convolutions, ReLU after
    the first two (computed in `dtype`), the reconstruction in float32."""
    for i, (kernel, bias) in enumerate(params):
        dt = dtype if i < 2 else jnp.float32
        x = jax.lax.conv_general_dilated(x.astype(dt), kernel.astype(dt), (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        x = x + bias.astype(dt)
        if i < 2:
            x = jax.nn.relu(x)
    return x.astype(jnp.float32)


def init_params(model: ModelConfig, seed: int) -> list:
    """He-normal kernels (Keras's truncated form) and zero biases, as model.build_srcnn."""
    out = []
    for i, (kshape, bshape) in enumerate(param_shapes(model)):
        fan_in = kshape[0] * kshape[1] * kshape[2]
        std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
        k = jax.random.truncated_normal(jax.random.PRNGKey(seed + i), -2.0, 2.0, kshape) * std
        out.append((np.asarray(k, np.float32), np.zeros(bshape, np.float32)))
    return out


def start_params(model: ModelConfig, init_path: str | None,
                 seed: int) -> tuple[list, dict[str, Any] | None]:
    """The starting weights and what they are (weights.py info), or He init when no file.
    `init_path`: a weights file, or a JAX run directory (its best weights).

    Single-scale weights start a scale_input model with zero weights on the scale planes
    (as runs.warm_start)."""
    if init_path is None:
        return init_params(model, seed), None
    if os.path.isdir(init_path):
        best = weights_lib.latest_weights(os.path.join(init_path, "best"))
        if best is None:
            raise FileNotFoundError(f"init: {init_path} holds no best/weights-<step>.npz (not "
                                    f"a run of this trainer)")
        init_path = best
    params, info = weights_lib.read_weights(init_path)
    k0, b0 = params[0]
    if model.scale_input and k0.shape[2] == model.channels:
        params[0] = (weights_lib.with_plane_weights(k0), b0)
    weights_lib.check_shapes(params, param_shapes(model), init_path)
    return params, info


def with_planes(x: jax.Array, scales: jax.Array, known: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H, W, C + 2) with model.with_scale's planes: (1, s) where `known`,
    else (0, 0)."""
    shape = x.shape[:3] + (1,)
    k = jnp.broadcast_to(known.astype(x.dtype)[:, None, None, None], shape)
    s = jnp.broadcast_to(scales.astype(x.dtype)[:, None, None, None], shape)
    return jnp.concatenate([x, k, k * s], axis=-1)
