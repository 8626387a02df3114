"""The graph twins of the protocol against the numpy protocol, eagerly and inside tf.data
(the two can differ: shapes are unknown in a dataset map)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from srcnn_tf import imaging, tf_imaging

from conftest import natural_like


def _both_ways(fn, x: np.ndarray) -> list[np.ndarray]:
    """fn applied eagerly and inside a tf.data map with unknown height and width."""
    eager = fn(tf.constant(x)).numpy()
    ds = tf.data.Dataset.from_generator(lambda: iter([x]), output_signature=tf.TensorSpec(
        [None, None, None, x.shape[-1]], tf.as_dtype(x.dtype)))
    mapped = next(iter(ds.map(fn))).numpy()
    return [eager, mapped]


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(1, 1), (2, 5), (17, 23), (40, 31)])
def test_bicubic_upscale_equals_matlab_imresize(scale, size):
    x = np.random.default_rng(scale).uniform(size=(1, *size, 2)).astype(np.float32)
    want = imaging.imresize(x[0].astype(np.float64), scale=float(scale), antialiasing=False)
    for got in _both_ways(lambda t: tf_imaging.upscale_bicubic(t, scale), x):
        assert got.shape == (1, size[0] * scale, size[1] * scale, 2)
        np.testing.assert_allclose(got[0], want, atol=2e-6)


@pytest.mark.parametrize("scale", [1.5, 2.5, 3.7, 4 / 3, 1.1, 2, 3.0])
@pytest.mark.parametrize("size", [(1, 1), (7, 5), (77, 101)])
def test_any_factor_bicubic_equals_matlab_imresize(scale, size):
    x = np.random.default_rng(7).uniform(size=(1, *size, 2)).astype(np.float32)
    want = imaging.imresize(x[0].astype(np.float64), scale=scale)
    fed = tf.constant(scale, tf.float32)  # as a signature receives it
    fn = lambda t: tf_imaging.resize_bicubic(t, tf_imaging.exact_scale(fed))  # noqa: E731
    # tf.function too: its optimiser rewrites float64 arithmetic (x / 1e9 -> x * 1e-9), which
    # once made 77 * 3 rows come out as 232.
    for got in _both_ways(fn, x) + [tf.function(fn)(tf.constant(x)).numpy()]:
        assert got.shape == (1, *imaging.output_size(*size, scale), 2)
        np.testing.assert_allclose(got[0], want, atol=2e-6)


def test_any_factor_bicubic_agrees_with_the_integer_one():
    x = np.random.default_rng(8).uniform(size=(2, 9, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(tf_imaging.resize_bicubic(x, tf.constant(3.0, tf.float64)),
                               tf_imaging.upscale_bicubic(x, 3), atol=2e-6)


def test_ycbcr_both_ways_equals_matlab():
    rgb = natural_like(13, 9, seed=2)[None].astype(np.float32) / 255.0
    want = imaging.rgb2ycbcr(rgb[0].astype(np.float64))
    for got in _both_ways(tf_imaging.rgb_to_ycbcr, rgb):
        np.testing.assert_allclose(got[0], want, atol=1e-6)
    back = _both_ways(tf_imaging.ycbcr_to_rgb, want[None].astype(np.float32))
    for got in back:
        np.testing.assert_allclose(got[0], rgb[0], atol=1e-5)


def test_to_uint8_rounds_half_away_from_zero_and_clips():
    # values whose x * 255 is exact in float32 and float64 alike (127.5: a tie)
    x = np.array([-0.2, 0.0, 0.5, 0.25, 0.75, 0.998046875, 1.0, 1.3],
                 np.float32).reshape(1, 1, 8, 1)
    want = imaging.to_uint8(x.astype(np.float64))
    for got in _both_ways(tf_imaging.to_uint8, x):
        np.testing.assert_array_equal(got, want)
    assert want.ravel().tolist() == [0, 0, 128, 64, 191, 255, 255, 255]
