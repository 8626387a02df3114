"""Which ReLU filters of a trained SRCNN fire, and refilling the dead ones.

Adam moves every weight by about the learning rate whatever the size of its gradient, so a
filter that fires rarely random-walks until it never fires; it then gets no gradient again. The
shipped 9-5-5 models leave 16-22 of their 32 mapping filters so. `revive` gives each dead filter
a noisy copy of a live one of its layer and shares the live filter's outgoing weights among the
copies (Net2Net's widening, into slots the network already has), so the network computes almost
the same function and training can pull the copies apart.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import keras
import numpy as np

from srcnn_tf import records, runs
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers


def firing_rates(model: keras.Model, patches: np.ndarray,
                 batch_size: int = 256) -> list[np.ndarray]:
    """The fraction of output positions at which each hidden filter is positive.

    patches: (N, H, W, C) float32 in [0, 1], the model's input. Returns one float array per
    ReLU layer ((n1,), (n2,)), values in [0, 1]; 0: the filter never fires on them (dead).
    """
    hidden = conv_layers(model)[:-1]
    probe = keras.Model(model.input, [layer.output for layer in hidden])
    counts = [np.zeros(layer.filters) for layer in hidden]
    positions = [0] * len(hidden)
    for start in range(0, len(patches), batch_size):
        for i, out in enumerate(probe(patches[start:start + batch_size], training=False)):
            counts[i] += (np.asarray(out, np.float32) > 0).sum(axis=(0, 1, 2))
            positions[i] += int(np.prod(out.shape[:3]))
    return [count / n for count, n in zip(counts, positions)]


def revive(model: keras.Model, patches: np.ndarray, noise: float = 0.01,
           seed: int = 0, dead_below: float = 0.0) -> list[tuple[int, int]]:
    """Refills the dead filters of every hidden layer in place (split_into_dead, first layer
    first, each measured after the one before was refilled). patches: (N, H, W, C) float32 in
    [0, 1], the training inputs that decide what is dead; a filter firing at no more than
    `dead_below` of the positions counts as dead (0: only those that never fire). Returns per
    hidden layer (dead before, dead after) on those patches."""
    rng = np.random.default_rng(seed)
    layers = conv_layers(model)
    rates = firing_rates(model, patches)
    before = [int((r <= dead_below).sum()) for r in rates]
    for i in range(len(layers) - 1):
        if i:  # the layers below were refilled: measure again
            rates = firing_rates(model, patches)
        (k_in, b_in), (k_out, b_out) = layers[i].get_weights(), layers[i + 1].get_weights()
        k_in, b_in, k_out = split_into_dead(k_in, b_in, k_out, rates[i], noise, rng,
                                            dead_below)
        layers[i].set_weights([k_in, b_in])
        layers[i + 1].set_weights([k_out, b_out])
    after = [int((r <= dead_below).sum()) for r in firing_rates(model, patches)]
    return list(zip(before, after))


def split_into_dead(k_in: np.ndarray, b_in: np.ndarray, k_out: np.ndarray, rates: np.ndarray,
                    noise: float, rng: np.random.Generator, dead_below: float = 0.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refills the dead filters (rates <= dead_below) of a layer with copies of its live ones.

    k_in (f, f, C, n), b_in (n,): the layer's kernel and bias; k_out (f', f', n, m): the next
    layer's kernel; rates (n,): firing_rates of the layer. The live filters that carry the most
    output (rate x outgoing weight norm) are copied first, round robin; each copy's incoming
    weights get Gaussian noise of `noise` x the copied kernel's standard deviation, and the
    live filter's outgoing weights are shared equally among it and its copies. With noise 0 the
    network's output is unchanged when only filters that never fire are refilled (a rarely
    firing one's contribution is dropped). Returns new (k_in, b_in, k_out).
    """
    dead, live = np.flatnonzero(rates <= dead_below), np.flatnonzero(rates > dead_below)
    if not len(live):
        raise ValueError(f"no filter of the layer fires at more than {dead_below} of the "
                         f"positions: nothing to copy")
    out_norm = np.linalg.norm(np.moveaxis(k_out[:, :, live, :], 2, 0).reshape(len(live), -1),
                              axis=1)
    order = live[np.argsort(-(rates[live] * out_norm), kind="stable")]
    groups = {int(j): [int(j)] for j in live}
    for i, d in enumerate(dead):
        groups[int(order[i % len(order)])].append(int(d))
    k_in, b_in, k_out = k_in.copy(), b_in.copy(), k_out.copy()
    for j, members in groups.items():
        if len(members) == 1:
            continue
        share = k_out[:, :, j, :] / len(members)
        sd = k_in[..., j].std()
        for m in members:
            if m != j:
                k_in[..., m] = k_in[..., j] + noise * sd * rng.standard_normal(k_in[..., j].shape)
                b_in[m] = b_in[j]
            k_out[:, :, m, :] = share
    return k_in, b_in, k_out


class Revived(NamedTuple):
    """revive_weights' result: the model with its dead filters refilled, what its weights are
    (runs.describe_init's record, label `<label>+split`), per hidden layer (name, filters, dead
    before, dead after), the sample's size and how far the output moved on it (max, rms; pixel
    values in [0, 1])."""
    model: keras.Model
    info: dict[str, Any]
    layers: list[tuple[str, int, int, int]]
    patches: int
    moved: tuple[float, float]


def revive_weights(source: str, record_dir: str, sample_every: int = 211, noise: float = 0.01,
                   seed: int = 0, dead_below: float = 0.0) -> Revived:
    """Loads `source` (an export, a model folder, a run directory or a weights file) and
    revives it on every `sample_every`-th training patch of `record_dir` (revive). Raises
    ValueError / FileNotFoundError naming `source` or `record_dir`."""
    info = runs.describe_init(source)
    config = ModelConfig(**info["model"])
    if config.scale_input:
        raise ValueError(f"{source} is a multi-scale (scale_input) model; revive takes a "
                         f"single-scale one")
    sample = [p["input"] for p in itertools.islice(records.read_patches(record_dir), 0, None,
                                                   sample_every)]
    if not sample:
        raise ValueError(f"{record_dir}: the records hold no training patches")
    patches = np.stack(sample)
    if patches.shape[-1] != config.in_channels:
        raise ValueError(f"{record_dir} holds {patches.shape[-1]}-channel patches, {source} "
                         f"takes {config.in_channels}")
    model = build_srcnn(config, dtype="float32")
    runs.restore_weights(model, info.pop("checkpoint"))
    reference = model.predict(patches, batch_size=256, verbose=0)
    counts = revive(model, patches, noise=noise, seed=seed, dead_below=dead_below)
    moved = np.abs(model.predict(patches, batch_size=256, verbose=0) - reference)
    layers = [(layer.name, layer.filters, before, after)
              for layer, (before, after) in zip(conv_layers(model), counts)]
    info["label"] = f"{info['label']}+split"
    return Revived(model, info, layers, len(patches),
                   (float(moved.max()), float(np.sqrt((moved ** 2).mean()))))
