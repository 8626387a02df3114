"""SRCNN training on JAX, for a machine with an accelerator and JAX but no TensorFlow.

The network and step of train.py: MSE on the label centre, Adam (Keras's update, epsilon 1e-7)
with per-layer learning-rate multipliers, cosine decay to 1 % over a wall-clock budget, a random
dihedral transform per patch, bfloat16 convolutions with a float32 reconstruction (train.py's
mixed_bfloat16). The patches are the records' own, cut from an image pack (packs.py), and stay on
the device; `steps_per_call` steps run in one compiled scan. Validation is the records' held-out
images with the paper's PSNR; the best weights (their average, with ema_decay) are kept.

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
from srcnn_tf.jax_model import forward, start_params, with_planes

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
    ema_decay: float = 0.0  # > 0: validate and keep an average of the weights (train.py's)
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
                  "ema_decay": 0 <= self.ema_decay < 1,
                  "val_every_minutes": self.val_every_minutes > 0}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: {getattr(self, name)!r} is out of range")
        if len(self.scale) > 1 and not self.model.scale_input:
            raise ValueError(f"scale {imaging.scale_name(self.scale)}: several factors need a "
                             f"scale_input model")


# ----------------------------------------------------------------------------- the step


def _dihedral(key: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One of the 8 flips/transposes per example, the same for input and label."""
    flips = jax.random.bernoulli(key, 0.5, (3, x.shape[0], 1, 1, 1))

    def apply(a: jax.Array) -> jax.Array:
        a = jnp.where(flips[0], a[:, ::-1], a)
        a = jnp.where(flips[1], a[:, :, ::-1], a)
        return jnp.where(flips[2], jnp.swapaxes(a, 1, 2), a)

    return apply(x), apply(y)


def _adam(params: list, grads: list, opt: tuple, lrs: jax.Array) -> tuple[list, tuple]:
    b1, b2, eps = ADAM
    m, v, t = opt
    t = t + 1
    m = jax.tree.map(lambda a, g: b1 * a + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda a, g: b2 * a + (1 - b2) * g * g, v, grads)
    alphas = lrs * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    new_p = [jax.tree.map(lambda p, a, b: p - alphas[i] * a / (jnp.sqrt(b) + eps),
                          params[i], m[i], v[i]) for i in range(len(params))]
    return new_p, (m, v, t)


def _average(avg: list, params: list, updates: jax.Array, decay: float) -> list:
    """optim.WeightAverage's update: d = min(decay, (1 + t) / (10 + t)), t the updates before."""
    t = updates.astype(jnp.float32)
    d = jnp.minimum(decay, (1 + t) / (10 + t))
    return jax.tree.map(lambda a, p: d * a + (1 - d) * p, avg, params)


def make_train_call(config: JaxTrainConfig):
    """-> jitted f(state, bank, key, lr) -> (state, mean loss) running config.steps_per_call
    steps; state = (params, (m, v, t), average of the params or None); bank = (inputs, labels,
    scales) on the device."""
    dtype = jnp.bfloat16 if config.precision == "bfloat16" else jnp.float32
    mults = jnp.asarray(config.lr_multipliers, jnp.float32)

    def loss_fn(params, x, y):
        return jnp.mean(jnp.square(forward(params, x, dtype) - y))

    def step(carry, key):
        (params, opt, avg), bank, lr = carry
        k_idx, k_aug, k_blind = jax.random.split(key, 3)
        idx = jax.random.randint(k_idx, (config.batch_size,), 0, bank[0].shape[0])
        x, y = bank[0][idx], bank[1][idx]
        if config.augment:
            x, y = _dihedral(k_aug, x, y)
        if config.model.scale_input:
            known = jax.random.uniform(k_blind, (config.batch_size,)) >= config.blind_fraction
            x = with_planes(x, bank[2][idx], known)
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates = opt[2]
        params, opt = _adam(params, grads, opt, lr * mults)
        if config.ema_decay:
            avg = _average(avg, params, updates, config.ema_decay)
        return ((params, opt, avg), bank, lr), loss

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
        old = weights_lib.latest_weights(folder)  # the one this method wrote before
        if old:
            os.remove(old)
        weights_lib.write_weights(os.path.join(folder, weights_lib.run_file(event["step"])),
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
        avg = jax.tree.map(jnp.copy, params) if config.ema_decay else None
        self.state = (params, (m, v, jnp.zeros((), jnp.int32)), avg)
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
                  **_validate(self.validator, self.served)}
        if self.config.ema_decay:  # the last iterate beside the average it is compared to
            record["val_psnr_raw"] = _validate(self.validator, self.state[0])["val_psnr"]
        self.run.append_metrics(record)
        if record["val_psnr"] > self.best["val_psnr"]:
            self.best = record
            self.run.save_weights("best", record, self.served)
        return record

    @property
    def served(self) -> list:
        """The weights validated and kept as best: their average when there is one."""
        return self.state[2] if self.config.ema_decay else self.state[0]

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
