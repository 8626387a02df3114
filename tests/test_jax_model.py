"""The JAX network: the same function and weight layout as the Keras model."""

from __future__ import annotations

import jax.numpy as jnp
import keras
import numpy as np
import pytest

from srcnn_tf import jax_model
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers, with_scale

SMALL = ModelConfig(n1=8, n2=4)


def _params(model: keras.Model) -> list:
    return [tuple(layer.get_weights()) for layer in conv_layers(model)]


@pytest.mark.parametrize("config", [SMALL, ModelConfig(preset="9-1-5", n1=6, n2=3),
                                    ModelConfig(n1=8, n2=4, scale_input=True)])
def test_forward_equals_the_keras_model(config):
    model = build_srcnn(config, seed=1, dtype="float32")
    x = np.random.default_rng(0).uniform(0, 1, (2, 30, 27, 1)).astype(np.float32)
    scales = np.array([2.0, 3.5], np.float32)
    if config.scale_input:
        keras_in = with_scale(x, scales).numpy()
        jax_in = jax_model.with_planes(jnp.asarray(x), jnp.asarray(scales), jnp.ones(2, bool))
        np.testing.assert_array_equal(np.asarray(jax_in), keras_in)
        x = keras_in
    got = np.asarray(jax_model.forward(_params(model), jnp.asarray(x)))
    np.testing.assert_allclose(got, model(x).numpy(), atol=2e-5)
    assert [(k.shape, b.shape) for k, b in _params(model)] == jax_model.param_shapes(config)
