"""Model builder: shapes, borders, init, whole-image inference."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from srcnn_tf import model as model_lib


@pytest.mark.parametrize("preset, border", [("9-1-5", 6), ("9-3-5", 7), ("9-5-5", 8)])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_shapes_for_every_preset(preset, border, padding):
    cfg = model_lib.ModelConfig(preset=preset, padding=padding)
    model = model_lib.build_srcnn(cfg, seed=0)
    assert cfg.border == border
    out = model(np.zeros((2, 33, 40, 1), np.float32))
    expected = (2, 33 - 2 * border, 40 - 2 * border, 1) if padding == "valid" else (2, 33, 40, 1)
    assert tuple(out.shape) == expected
    assert cfg.output_size(33) == expected[1]
    assert [layer.kernel.shape[0] for layer in model_lib.conv_layers(model)] == list(cfg.filters)


def test_configurable_sizes_and_channels():
    cfg = model_lib.ModelConfig(preset="11-1-7", n1=16, n2=8, channels=3)
    model = model_lib.build_srcnn(cfg)
    assert tuple(model(np.zeros((1, 40, 40, 3), np.float32)).shape) == (1, 24, 24, 3)
    assert model_lib.count_params(model) == ((11 * 11 * 3 * 16 + 16) + (16 * 8 + 8)
                                             + (7 * 7 * 8 * 3 + 3))


def test_paper_gaussian_init():
    model = model_lib.build_srcnn(model_lib.ModelConfig(init="gaussian"), seed=3)
    for layer in model_lib.conv_layers(model):
        assert abs(float(np.std(layer.kernel.numpy())) - 1e-3) < 1e-4
        assert not np.any(layer.bias.numpy())


def test_seeded_build_is_reproducible():
    a = model_lib.build_srcnn(model_lib.ModelConfig(), seed=5)
    b = model_lib.build_srcnn(model_lib.ModelConfig(), seed=5)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


@pytest.mark.parametrize("preset", ["9-1-5", "bad", "9-4-5", "9-5"])
def test_parse_preset(preset):
    if preset == "9-1-5":
        assert model_lib.parse_preset(preset) == (9, 1, 5)
    else:
        with pytest.raises(ValueError, match="f1-f2-f3"):
            model_lib.parse_preset(preset)


def test_edge_padding_matches_numpy_and_keeps_size():
    x = np.random.default_rng(0).uniform(size=(2, 5, 7, 1)).astype(np.float32)
    padded = model_lib.pad_for_valid(tf.constant(x), 8).numpy()  # border larger than the image
    np.testing.assert_array_equal(padded, np.pad(x, [(0, 0), (8, 8), (8, 8), (0, 0)], mode="edge"))
    cfg = model_lib.ModelConfig(preset="9-5-5")
    sr = model_lib.super_resolve(model_lib.build_srcnn(cfg, seed=0), cfg, tf.constant(x))
    assert sr.shape == x.shape and float(tf.reduce_min(sr)) >= 0 and float(tf.reduce_max(sr)) <= 1
