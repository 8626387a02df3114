"""Plain weights files (.npz) that travel without TensorFlow: the three convolutions' kernels
(kernel_0..2, HWIO float32, Keras's layout) and biases (bias_0..2), plus `info`, a JSON object
saying where they came from (runs.describe_init's record: model, scale, label, chain).

Written by the JAX trainer and by `make jax-bundle` (a warm start's weights), read by runs.py.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Sequence

import numpy as np

from srcnn_tf.architecture import SCALE_PLANES

Params = list[tuple[np.ndarray, np.ndarray]]  # [(kernel HWIO, bias)] of the three convolutions
_RUN_FILE = re.compile(r"weights-(\d+)\.npz")  # a JAX run's weights at a step


def run_file(step: int) -> str:
    """The name a JAX run gives its weights at `step`."""
    return f"weights-{step}.npz"


def write_weights(path: str, params: Sequence[tuple[Any, Any]],
                  info: dict[str, Any] | None = None) -> None:
    arrays = {}
    for i, (kernel, bias) in enumerate(params):
        arrays[f"kernel_{i}"] = np.asarray(kernel, np.float32)
        arrays[f"bias_{i}"] = np.asarray(bias, np.float32)
    with open(path, "wb") as f:  # np.savez would append .npz to a name without it
        np.savez(f, info=np.array(json.dumps(info or {})), **arrays)


def write_warm_start(out_dir: str, params: Sequence[tuple[Any, Any]],
                     info: dict[str, Any]) -> str:
    """Writes `params` as <out_dir>/<info's label, / as ->.npz (`make jax-bundle`, `make
    revive`: a warm start named for what it is, e.g. srcnn_x3-10.npz); returns the path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, info["label"].replace("/", "-") + ".npz")
    write_weights(path, params, info)
    return path


def latest_weights(folder: str) -> str | None:
    """The highest-step weights-<step>.npz in `folder` (a JAX run's best/ or checkpoints/),
    None when there is none."""
    steps = [int(m.group(1)) for m in map(_RUN_FILE.fullmatch, os.listdir(folder)) if m] \
        if os.path.isdir(folder) else []
    return os.path.join(folder, run_file(max(steps))) if steps else None


def read_weights(path: str) -> tuple[Params, dict[str, Any]]:
    """-> (params, info); ValueError naming `path` when it is not a weights file."""
    try:
        with np.load(path) as z:
            params = [(z[f"kernel_{i}"], z[f"bias_{i}"]) for i in range(3)]
            info = json.loads(str(z["info"]))
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a weights file (kernel_0..2, bias_0..2, info): {e}") \
            from None
    return params, info


def with_plane_weights(kernel: np.ndarray) -> np.ndarray:
    """A single-scale first kernel (f, f, C, n1) -> (f, f, C + SCALE_PLANES, n1) with zero
    weights on the scale planes: a scale_input model that starts as the single-scale one at
    every factor."""
    planes = np.zeros(kernel.shape[:2] + (SCALE_PLANES,) + kernel.shape[3:], kernel.dtype)
    return np.concatenate([kernel, planes], axis=2)


def check_shapes(params: Params, shapes: Sequence[tuple[tuple[int, ...], tuple[int, ...]]],
                 path: str) -> None:
    """ValueError naming `path` when the kernels/biases do not have the model's shapes."""
    got = [(tuple(k.shape), tuple(b.shape)) for k, b in params]
    want = [(tuple(k), tuple(b)) for k, b in shapes]
    if got != want:
        raise ValueError(f"{path}: weights of shapes {got}, the model has {want}")
