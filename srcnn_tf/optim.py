"""Optimisers of a run: per-layer learning rates, schedules, float16 loss scaling."""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from srcnn_tf.model import conv_layers


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """constant / cosine (to 1 %) / step decay over `total_steps`, times a layer multiplier,
    times a linear warm-up over the first `warmup_steps` (0: none).

    The warm-up is for warm starts: fresh Adam moments make the first updates about lr * sign(g)
    for every weight, which moves a converged model off its optimum. With `time_fraction` (a
    variable the trainer keeps at elapsed / budget minutes), cosine and the default step decay
    follow whichever budget, steps or minutes, is further spent: a run given 15 minutes ends
    its schedule at 15 minutes."""

    def __init__(self, base: float, kind: str, total_steps: int, step_every: int,
                 step_factor: float, time_fraction: tf.Variable | None = None,
                 warmup_steps: int = 0) -> None:
        self.base, self.kind, self.total = base, kind, max(1, total_steps)
        self.warmup_steps = warmup_steps
        self.step_every, self.step_factor = step_every, step_factor
        self.time_fraction = time_fraction

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        lr = self._decayed(step)
        if self.warmup_steps:
            ramp = (tf.cast(step, tf.float32) + 1.0) / self.warmup_steps
            lr = lr * tf.minimum(1.0, ramp)
        return lr

    def _decayed(self, step: tf.Tensor) -> tf.Tensor:
        t = tf.cast(step, tf.float32)
        frac = tf.minimum(t / self.total, 1.0)
        if self.time_fraction is not None:
            frac = tf.maximum(frac, tf.minimum(tf.cast(self.time_fraction, tf.float32), 1.0))
        if self.kind == "cosine":
            return self.base * (0.01 + 0.99 * 0.5 * (1.0 + tf.cos(math.pi * frac)))
        if self.kind == "step":
            if self.step_every:
                n = tf.floor(t / self.step_every)
            else:
                n = tf.cast(frac >= 0.5, tf.float32) + tf.cast(frac >= 0.75, tf.float32)
            return self.base * tf.pow(self.step_factor, n)
        return tf.constant(self.base, tf.float32)

    def get_config(self) -> dict[str, Any]:
        return {"base": self.base, "kind": self.kind, "total_steps": self.total,
                "step_every": self.step_every, "step_factor": self.step_factor,
                "warmup_steps": self.warmup_steps}


class LossScale:
    """Dynamic loss scaling for float16 (halve on overflow, double after 2000 good steps)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.scale = tf.Variable(2.0**15 if enabled else 1.0, trainable=False, dtype=tf.float32)
        self.good = tf.Variable(0, trainable=False, dtype=tf.int64)

    def update(self, grads: list[tf.Tensor]) -> tuple[list[tf.Tensor], tf.Tensor]:
        if not self.enabled:
            return grads, tf.constant(True)
        grads = [g / self.scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        self.good.assign(tf.where(finite, self.good + 1, 0))
        new_scale = tf.where(finite, tf.where(self.good >= 2000, self.scale * 2, self.scale),
                             self.scale / 2)
        self.good.assign(tf.where(self.good >= 2000, tf.zeros_like(self.good), self.good))
        self.scale.assign(new_scale)
        return grads, finite


def make_optimizers(config: Any, model: keras.Model, total_steps: int,
                    time_fraction: tf.Variable | None = None):
    """One optimiser per distinct layer multiplier: Adam's update ignores gradient scale, so a
    per-layer learning rate needs its own optimiser. Returns [(optimiser, [variables])]."""
    groups: dict[float, list[tf.Variable]] = {}
    for layer, mult in zip(conv_layers(model), config.lr_multipliers):
        groups.setdefault(mult, []).extend(layer.trainable_variables)
    out = []
    for mult, variables in groups.items():
        lr = Schedule(config.learning_rate * mult, config.schedule, total_steps,
                      config.step_every, config.step_factor, time_fraction,
                      config.warmup_steps)
        if config.optimizer == "adam":
            opt = keras.optimizers.Adam(lr, epsilon=config.adam_epsilon)
        else:
            opt = keras.optimizers.SGD(lr, momentum=0.9)
        opt.build(variables)
        out.append((opt, variables))
    return out


class WeightAverage:
    """An exponential moving average of a model's weights, kept in a twin model (BasicSR's
    `net_g_ema`): validation, the best checkpoint and exports read the twin, whose weights are
    the recent SGD iterates averaged, not the last one.

    After each step: avg <- d * avg + (1 - d) * w, with d = min(decay, (1 + t) / (10 + t)) and t
    the steps this average has seen, so a fresh average follows the weights closely at first.
    """

    def __init__(self, model: keras.Model, twin: keras.Model, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.model, self.twin, self.decay = model, twin, decay
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="average_updates")

    def reset(self) -> None:
        """Starts the average at the model's current weights."""
        for a, w in zip(self.twin.weights, self.model.weights):
            a.assign(w)
        self.updates.assign(0)

    def update(self) -> None:
        t = tf.cast(self.updates, tf.float32)
        d = tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
        for a, w in zip(self.twin.weights, self.model.weights):
            a.assign(d * a + (1.0 - d) * tf.cast(w, a.dtype))
        self.updates.assign_add(1)
