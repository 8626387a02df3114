"""Optimiser helpers: the weight average and the learning-rate schedule."""

from __future__ import annotations

import numpy as np
import pytest

from srcnn_tf.model import ModelConfig, build_srcnn
from srcnn_tf.optim import WeightAverage

SMALL = ModelConfig(preset="9-1-5", n1=4, n2=2)


def test_the_average_follows_its_formula_and_resets_to_the_weights():
    model, twin = build_srcnn(SMALL, seed=1), build_srcnn(SMALL, seed=2)
    average = WeightAverage(model, twin, decay=0.5)
    average.reset()
    expected = [w.numpy() for w in model.weights]
    for a, e in zip(twin.weights, expected):
        np.testing.assert_array_equal(a.numpy(), e)
    rng = np.random.default_rng(0)
    for t in range(4):
        new = [rng.normal(size=w.shape).astype(np.float32) for w in model.weights]
        model.set_weights(new)
        average.update()
        d = min(0.5, (1 + t) / (10 + t))  # 0.1, 0.18, 0.25, 0.31
        expected = [d * e + (1 - d) * n for e, n in zip(expected, new)]
        for a, e in zip(twin.weights, expected):
            np.testing.assert_allclose(a.numpy(), e, rtol=1e-6, atol=1e-6)
    assert int(average.updates.numpy()) == 4
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="decay"):
            WeightAverage(model, twin, bad)


def test_the_warm_up_ramps_the_schedule_linearly_then_leaves_it():
    import math

    from srcnn_tf.optim import Schedule

    cosine = Schedule(1e-3, "cosine", total_steps=100, step_every=0, step_factor=0.1)
    warm = Schedule(1e-3, "cosine", total_steps=100, step_every=0, step_factor=0.1,
                    warmup_steps=10)
    for step in (0, 4, 9, 10, 50, 99):
        ramp = min(1.0, (step + 1) / 10)
        expected = 1e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * step / 100)))
        np.testing.assert_allclose(float(cosine(step)), expected, rtol=1e-5)
        np.testing.assert_allclose(float(warm(step)), ramp * expected, rtol=1e-5)
    assert float(warm(0)) == pytest.approx(float(cosine(0)) / 10, rel=1e-5)
    assert warm.get_config()["warmup_steps"] == 10


def test_adam_epsilon_reaches_the_optimisers_and_damps_tiny_gradients():
    import math

    import tensorflow as tf

    from srcnn_tf.optim import make_optimizers
    from srcnn_tf.train import TrainConfig

    model = build_srcnn(SMALL, seed=0)

    def first_step(epsilon: float, grad_size: float) -> float:
        config = TrainConfig("r", "d", schedule="constant", adam_epsilon=epsilon)
        (opt, variables), *_ = make_optimizers(config, model, total_steps=10)
        assert opt.epsilon == epsilon
        for v in variables:  # from zero, so float32 rounding of the weights does not blur it
            v.assign(tf.zeros_like(v))
        opt.apply([tf.fill(v.shape, grad_size) for v in variables], variables)
        return float(np.abs(variables[0].numpy()).max())

    def expected(epsilon: float, g: float) -> float:  # Keras Adam's first step, lr 1e-3
        c = math.sqrt(1 - 0.999)  # sqrt(v) / |g| after one step; m * alpha = c * g * lr
        return 1e-3 * c * g / (c * g + epsilon)

    for epsilon, g in ((1e-7, 1e-4), (1e-7, 1e-9), (1e-5, 1e-4), (1e-5, 1e-9)):
        assert first_step(epsilon, g) == pytest.approx(expected(epsilon, g), rel=0.02)
    # a weight whose gradient is far below epsilon barely moves; one far above moves ~lr
    assert first_step(1e-5, 1e-9) < 1e-3 * 1e-5
    assert first_step(1e-7, 1e-4) > 0.7e-3
    with pytest.raises(ValueError, match="adam_epsilon"):
        TrainConfig("r", "d", adam_epsilon=0.0).validate()
