"""SRCNN training on JAX, for a machine with an accelerator and JAX but no TensorFlow.

The network and step of train.py: MSE on the label centre, Adam (Keras's update, epsilon 1e-7)
with per-layer learning-rate multipliers, cosine decay to 1 % over a wall-clock budget, a random
dihedral transform per patch, bfloat16 convolutions with a float32 reconstruction (train.py's
mixed_bfloat16). The patches are the records' own, cut from an image pack (packs.py), and stay on
the device; `steps_per_call` steps run in one compiled scan. Validation is the records' held-out
images with the paper's PSNR; the best weights are kept.

It writes a run directory that runs.py reads (config.json, metrics.jsonl, summary.json and
best/ + checkpoints/ weights-<step>.npz, see weights.py), so `make export RUN=...` exports it
where TensorFlow is. Imports JAX, numpy, PIL and OpenCV only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from srcnn_tf import chains, imaging, packs, predictors
from srcnn_tf import weights as weights_lib
from srcnn_tf.architecture import ModelConfig

log = logging.getLogger("srcnn_tf.jax_train")

ADAM = (0.9, 0.999, 1e-7)  # beta_1, beta_2, epsilon: Keras's defaults, as train.py uses


@dataclasses.dataclass(frozen=True)
class JaxTrainConfig:
    """A run: the model, the factors trained (several: a multi-scale model) and the recipe."""

    run_dir: str
    scale: tuple[float, ...]
    model: ModelConfig = ModelConfig()
    minutes: float = 10.0  # wall-clock budget of the training loop (compilation excluded)
    batch_size: int = 128
    learning_rate: float = 1e-4
    lr_multipliers: tuple[float, float, float] = (1.0, 1.0, 0.1)
    # Linear warm-up over this share of the budget: a warm start's fresh Adam moments otherwise
    # move every weight by a full learning rate in its first steps.
    warmup_fraction: float = 0.02
    augment: bool = True
    blind_fraction: float = 0.0  # scale_input models: share of patches trained blind
    precision: str = "bfloat16"  # or "float32"
    steps_per_call: int = 250
    val_every_minutes: float = 0.5
    seed: int = 0

    def validate(self) -> None:
        self.model.validate()
        checks = {"minutes": self.minutes > 0, "batch_size": self.batch_size >= 1,
                  "learning_rate": self.learning_rate > 0,
                  "lr_multipliers": len(self.lr_multipliers) == 3
                  and min(self.lr_multipliers) > 0,
                  "blind_fraction": 0 <= self.blind_fraction < 1,
                  "warmup_fraction": 0 <= self.warmup_fraction < 1,
                  "precision": self.precision in ("bfloat16", "float32"),
                  "steps_per_call": self.steps_per_call >= 1,
                  "val_every_minutes": self.val_every_minutes > 0}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: {getattr(self, name)!r} is out of range")
        if len(self.scale) > 1 and not self.model.scale_input:
            raise ValueError(f"scale {imaging.scale_name(self.scale)}: several factors need a "
                             f"scale_input model")


# ----------------------------------------------------------------------------- the network


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


# ----------------------------------------------------------------------------- the step


def _dihedral(key: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One of the 8 flips/transposes per example, the same for input and label."""
    flips = jax.random.bernoulli(key, 0.5, (3, x.shape[0], 1, 1, 1))

    def apply(a: jax.Array) -> jax.Array:
        a = jnp.where(flips[0], a[:, ::-1], a)
        a = jnp.where(flips[1], a[:, :, ::-1], a)
        return jnp.where(flips[2], jnp.swapaxes(a, 1, 2), a)

    return apply(x), apply(y)


def with_planes(x: jax.Array, scales: jax.Array, known: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H, W, C + 2) with model.with_scale's planes: (1, s) where `known`,
    else (0, 0)."""
    shape = x.shape[:3] + (1,)
    k = jnp.broadcast_to(known.astype(x.dtype)[:, None, None, None], shape)
    s = jnp.broadcast_to(scales.astype(x.dtype)[:, None, None, None], shape)
    return jnp.concatenate([x, k, k * s], axis=-1)


def _adam(params: list, grads: list, opt: tuple, lrs: jax.Array) -> tuple[list, tuple]:
    b1, b2, eps = ADAM
    m, v, t = opt
    t = t + 1
    correction = jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    new_p, new_m, new_v = [], [], []
    for i in range(len(params)):
        mi = jax.tree.map(lambda a, g: b1 * a + (1 - b1) * g, m[i], grads[i])
        vi = jax.tree.map(lambda a, g: b2 * a + (1 - b2) * g * g, v[i], grads[i])
        alpha = lrs[i] * correction
        new_p.append(jax.tree.map(lambda p, a, b: p - alpha * a / (jnp.sqrt(b) + eps),
                                  params[i], mi, vi))
        new_m.append(mi)
        new_v.append(vi)
    return new_p, (new_m, new_v, t)


def make_train_call(config: JaxTrainConfig):
    """-> jitted f(state, bank, key, lr) -> (state, mean loss) running config.steps_per_call
    steps; state = (params, (m, v, t)); bank = (inputs, labels, scales) on the device."""
    dtype = jnp.bfloat16 if config.precision == "bfloat16" else jnp.float32
    mults = jnp.asarray(config.lr_multipliers, jnp.float32)

    def loss_fn(params, x, y):
        return jnp.mean(jnp.square(forward(params, x, dtype) - y))

    def step(carry, key):
        (params, opt), bank, lr = carry
        k_idx, k_aug, k_blind = jax.random.split(key, 3)
        idx = jax.random.randint(k_idx, (config.batch_size,), 0, bank[0].shape[0])
        x, y = bank[0][idx], bank[1][idx]
        if config.augment:
            x, y = _dihedral(k_aug, x, y)
        if config.model.scale_input:
            known = jax.random.uniform(k_blind, (config.batch_size,)) >= config.blind_fraction
            x = with_planes(x, bank[2][idx], known)
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        params, opt = _adam(params, grads, opt, lr * mults)
        return ((params, opt), bank, lr), loss

    def call(state, bank, key, lr):
        keys = jax.random.split(key, config.steps_per_call)
        (state, _, _), losses = jax.lax.scan(step, (state, bank, lr), keys)
        return state, jnp.mean(losses)

    return jax.jit(call, donate_argnums=0)


def cosine_lr(base: float, fraction: float, warmup: float = 0.0) -> float:
    """train.py's cosine (base at 0, 1 % of base at fraction 1), times a linear warm-up from 0
    over the first `warmup` of the budget."""
    f = min(max(fraction, 0.0), 1.0)
    ramp = min(1.0, f / warmup) if warmup > 0 else 1.0
    return ramp * base * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * f)))


# ----------------------------------------------------------------------------- validation


class Validator:
    """Mean PSNR (uint8 Y, shave = imaging.shave(scale)) of the held-out images per factor,
    the network run on each factor's images as one zero-filled batch (edge-replicated borders
    as model.super_resolve, so every image's answer equals its own)."""

    def __init__(self, images: list[tuple[float, np.ndarray, np.ndarray]],
                 model: ModelConfig) -> None:
        self.model, self.groups = model, {}
        b = model.border
        for s in sorted({s for s, _, _ in images}):
            mine = [(inp, hr) for t, inp, hr in images if t == s]
            h = max(i.shape[0] for i, _ in mine) + 2 * b
            w = max(i.shape[1] for i, _ in mine) + 2 * b
            batch = np.zeros((len(mine), h, w, model.channels), np.float32)
            for j, (inp, _) in enumerate(mine):
                padded = np.pad(inp, ((b, b), (b, b), (0, 0)), mode="edge")
                batch[j, :padded.shape[0], :padded.shape[1]] = padded
            if model.scale_input:
                batch = np.asarray(with_planes(jnp.asarray(batch), jnp.full(len(mine), s),
                                               jnp.ones(len(mine), bool)))
            self.groups[s] = (jnp.asarray(batch), mine)
        self._run = jax.jit(forward)

    def __call__(self, params: list) -> dict[float, float]:
        out = {}
        for s, (batch, mine) in self.groups.items():
            sr = np.asarray(self._run(params, batch))
            out[s] = predictors.mean_output_psnr(
                [sr[j, :inp.shape[0], :inp.shape[1]] for j, (inp, _) in enumerate(mine)],
                [hr for _, hr in mine], s)
        return out

    def bicubic(self) -> dict[float, float]:
        return {s: predictors.mean_psnr(predictors.bicubic_predictor, mine, s)
                for s, (_, mine) in self.groups.items()}


# ----------------------------------------------------------------------------- the run


class _Run:
    """The run directory's files (the contract of runs.py); `config`: its config.json."""

    def __init__(self, path: str, config: dict[str, Any]) -> None:
        self.path, self.config = path, config
        self.name = os.path.basename(os.path.normpath(os.path.abspath(path)))

    @classmethod
    def create(cls, path: str, config: dict[str, Any]) -> "_Run":
        for sub in ("best", "checkpoints"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        run = cls(path, config)
        run.write_json("config.json", config)
        return run

    def write_json(self, name: str, obj: dict[str, Any]) -> None:
        with open(os.path.join(self.path, name), "w") as f:
            json.dump(obj, f, indent=1, allow_nan=False)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(os.path.join(self.path, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")

    def save_weights(self, which: str, event: dict[str, Any], params: list) -> None:
        """Replaces the weights file in `which` (best/checkpoints) by weights-<step>.npz of the
        metrics `event`, with their chain (chains.run_record): a next run warm-started from the
        file, on this machine too, continues the history."""
        folder = os.path.join(self.path, which)
        for old in os.listdir(folder):
            if old.startswith("weights-"):
                os.remove(os.path.join(folder, old))
        weights_lib.write_weights(os.path.join(folder, f"weights-{event['step']}.npz"),
                                  [(np.asarray(k), np.asarray(b)) for k, b in params],
                                  chains.run_record(self.name, self.config, event["step"], event))


def _run_config(config: JaxTrainConfig, pack: packs.Pack, patches: int,
                init: dict[str, Any] | None, val_bicubic: float) -> dict[str, Any]:
    train = dataclasses.asdict(config)
    train.update(scale=imaging.scale_json(config.scale), record_dir=None,
                 optimizer="adam", schedule="cosine", max_minutes=config.minutes)
    data = {**pack.manifest["records"], "patches": patches}
    if list(config.scale) != list(imaging.scale_list(pack.manifest["scale"])):
        data["fingerprint"] = None  # the pack's images at other factors: not those records
        data["images_of"] = pack.manifest["fingerprint"]
    device = jax.devices()[0]
    return {"train": train, "scale": imaging.scale_json(config.scale),
            "val_bicubic_psnr": val_bicubic, "records_fingerprint": data["fingerprint"],
            "records_patches": patches, "records": data, "init": init,
            "backend": f"jax {jax.__version__}",
            "device": f"{device.platform}: {getattr(device, 'device_kind', device)}",
            "precision": config.precision}


def _validate(validator: Validator, params: list) -> dict[str, float]:
    per_scale = validator(params)
    record = {"val_psnr": float(np.mean(list(per_scale.values())))}
    if len(per_scale) > 1:
        record.update({f"val_psnr_x{imaging.scale_label(s)}": v for s, v in per_scale.items()})
    return record


def _device_data(config: JaxTrainConfig, pack: packs.Pack) -> tuple[tuple, int]:
    """The pack's training patches on the device, labels cropped to the model's output ->
    ((inputs, labels, scales), number of patches)."""
    inputs, labels, scales = packs.patch_bank(pack, config.scale)
    crop = (labels.shape[1] - config.model.output_size(inputs.shape[1])) // 2
    if crop < 0:
        raise ValueError(f"patches of {inputs.shape[1]} pixels give {config.model.preset} "
                         f"outputs larger than the {labels.shape[1]}-pixel labels")
    labels = labels[:, crop:labels.shape[1] - crop, crop:labels.shape[2] - crop]
    return (jax.device_put(inputs), jax.device_put(labels), jax.device_put(scales)), len(inputs)


class _Loop:
    """The timed loop: compiled calls, cosine by wall clock, validation, best weights."""

    def __init__(self, config: JaxTrainConfig, bank: tuple, validator: Validator, run: _Run,
                 params: list) -> None:
        self.config, self.bank, self.validator, self.run = config, bank, validator, run
        m, v = (jax.tree.map(jnp.zeros_like, params) for _ in range(2))  # distinct buffers
        self.state = (params, (m, v, jnp.zeros((), jnp.int32)))
        self.key = jax.random.PRNGKey(config.seed)
        self.call = make_train_call(config).lower(self.state, bank, self.key,
                                                  jnp.float32(0)).compile()
        self.best = {"step": 0, "minutes": 0.0, **_validate(validator, params)}
        run.append_metrics(self.best)
        run.save_weights("best", self.best, params)

    def event(self, step: int, minutes: float, lr: float, losses: list) -> dict[str, Any]:
        record = {"step": step, "minutes": minutes,
                  "loss": float(np.mean(jax.device_get(losses))), "lr": lr,
                  "patches_per_s": step * self.config.batch_size / (minutes * 60),
                  **_validate(self.validator, self.state[0])}
        self.run.append_metrics(record)
        if record["val_psnr"] > self.best["val_psnr"]:
            self.best = record
            self.run.save_weights("best", record, self.state[0])
        return record

    def run_for(self) -> tuple[int, float]:
        """Trains until config.minutes have passed -> (steps, minutes).

        Calls are dispatched asynchronously; waiting for the one before keeps a single call
        queued, so the clock (cosine, budget, patches/s) measures finished work rather than
        the calls waiting in the accelerator's queue."""
        c = self.config
        step, start, last_val, losses = 0, time.perf_counter(), 0.0, []
        while True:
            minutes = (time.perf_counter() - start) / 60
            lr = cosine_lr(c.learning_rate, minutes / c.minutes, c.warmup_fraction)
            self.key, sub = jax.random.split(self.key)
            self.state, loss = self.call(self.state, self.bank, sub, jnp.float32(lr))
            if losses:
                losses[-1].block_until_ready()
            step += c.steps_per_call
            losses.append(loss)
            minutes = (time.perf_counter() - start) / 60
            done = minutes >= c.minutes
            if done or minutes - last_val >= c.val_every_minutes:
                record = self.event(step, minutes, lr, losses)
                last_val, losses = minutes, []
                log.info("step %d %.2f min loss %.6f lr %.2e val %.4f (%.0f patches/s)", step,
                         minutes, record["loss"], lr, record["val_psnr"],
                         record["patches_per_s"])
            if done:
                self.run.save_weights("checkpoints", record, self.state[0])
                return step, minutes


def train(config: JaxTrainConfig, pack_path: str, init_path: str | None = None
          ) -> dict[str, Any]:
    """Trains for config.minutes (wall clock after compilation) from `init_path` weights (None:
    He init) and returns the summary, also written to run_dir/summary.json."""
    config.validate()
    pack = packs.read_pack(pack_path)
    params, init = start_params(config.model, init_path, config.seed)
    bank, patches = _device_data(config, pack)
    validator = Validator(packs.val_images(pack, config.scale), config.model)
    bicubic = float(np.mean(list(validator.bicubic().values())))
    run = _Run.create(config.run_dir, _run_config(config, pack, patches, init, bicubic))
    loop = _Loop(config, bank, validator, run, [(jnp.asarray(k), jnp.asarray(b))
                                                for k, b in params])
    log.info("%d patches, val %.4f dB at the start (bicubic %.4f)", patches,
             loop.best["val_psnr"], bicubic)
    steps, minutes = loop.run_for()
    summary = {"steps": steps, "minutes": minutes, "best_step": loop.best["step"],
               "best_val_psnr": loop.best["val_psnr"], "val_bicubic_psnr": bicubic,
               "patches_per_s": steps * config.batch_size / (minutes * 60)}
    run.write_json("summary.json", summary)
    return summary
