"""Training: a tf.function step, per-layer learning rates, validation, checkpoints, summaries.

Run directory contract (`run_dir/`):
  config.json          the resolved TrainConfig, the records' fingerprint, versions
  metrics.jsonl        one JSON object per log/validation event (step, minutes, loss, val_psnr ...)
  checkpoints/         latest checkpoints: model, optimisers, step, epoch, wall time, best PSNR
  best/                the checkpoint with the best validation PSNR (what export uses)
  tb/                  TensorBoard events: loss, lr, val PSNR, patches/s, sample images
  summary.json         written when training ends

Resume order: (1) the latest checkpoint under run_dir/checkpoints restores the model, the
optimisers, the step, the epoch position, the accumulated wall time and the best PSNR;
(2) without one, `init_from` (a SavedModel version or another run's best checkpoint) gives the
weights, the optimisers starting fresh; (3) else the model is initialised from `seed`. The data order of the resumed epoch is
replayed from its seed and the batches already done are skipped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from srcnn_tf import data as data_lib
from srcnn_tf import imaging, metrics, records
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers, super_resolve

log = logging.getLogger("srcnn_tf.train")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. The defaults are the measured fast recipe (see README)."""

    record_dir: str
    run_dir: str
    model: ModelConfig = ModelConfig()
    scale: int | None = None  # checked against the records when given
    optimizer: str = "adam"  # "adam" or "sgd" (momentum 0.9, the paper's)
    learning_rate: float = 1e-3
    lr_multipliers: tuple[float, float, float] = (1.0, 1.0, 0.1)  # per conv layer
    schedule: str = "cosine"  # "constant", "cosine" (to 1 % at the end), "step"
    step_every: int = 0  # "step": decay every N steps (0: at 50 % and 75 % of training)
    step_factor: float = 0.1
    batch_size: int = 128  # global, split over replicas
    epochs: int = 120
    max_steps: int = 0  # 0: epochs * steps_per_epoch
    max_minutes: float = 0.0  # 0: no wall-clock budget
    augment: bool = False
    shuffle_buffer: int = 16384
    cache: bool = True
    seed: int = 0
    deterministic: bool = False
    val_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 50
    keep_checkpoints: int = 3
    mixed_precision: str = "auto"  # "auto", "" (float32), "mixed_float16", "mixed_bfloat16"
    devices: tuple[str, ...] = ()  # MirroredStrategy over these devices (e.g. two logical CPUs)
    progress: bool = True
    init_from: str = ""  # warm start: a SavedModel version folder or a run directory

    def validate(self) -> None:
        self.model.validate()
        checks = {
            "optimizer": self.optimizer in ("adam", "sgd"),
            "schedule": self.schedule in ("constant", "cosine", "step"),
            "mixed_precision": self.mixed_precision in ("auto", "", "mixed_float16",
                                                        "mixed_bfloat16"),
            "learning_rate": self.learning_rate > 0,
            "batch_size": self.batch_size >= 1,
            "lr_multipliers": len(self.lr_multipliers) == 3 and min(self.lr_multipliers) > 0,
            "epochs": self.epochs >= 1 or self.max_steps >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: invalid value {getattr(self, name)!r}")


def paper_recipe(**overrides: Any) -> dict[str, Any]:
    """The ECCV/TPAMI recipe: SGD + momentum 0.9, lr 1e-4 (1e-5 last layer), N(0, 1e-3) init."""
    return {"optimizer": "sgd", "learning_rate": 1e-4, "lr_multipliers": (1.0, 1.0, 0.1),
            "schedule": "constant", **overrides}


def cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX), where oneDNN runs
    SRCNN's convolutions ~1.7x faster in bfloat16 than in float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(policy: str) -> str:
    """'auto' -> mixed_float16 on GPUs, mixed_bfloat16 on bfloat16 CPUs, else float32 ('')."""
    if policy != "auto":
        return policy
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else ""


def make_strategy(devices: tuple[str, ...] = ()) -> tf.distribute.Strategy:
    """MultiWorkerMirrored when TF_CONFIG is set, Mirrored over GPUs (or given devices),
    else the default strategy."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if devices:
        return tf.distribute.MirroredStrategy(list(devices))
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker"
                                             and resolver.task_id == 0)


class _Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """constant / cosine (to 1 %) / step decay over `total_steps`, times a layer multiplier."""

    def __init__(self, base: float, kind: str, total_steps: int, step_every: int,
                 step_factor: float) -> None:
        self.base, self.kind, self.total = base, kind, max(1, total_steps)
        self.step_every, self.step_factor = step_every, step_factor

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        t = tf.cast(step, tf.float32)
        if self.kind == "cosine":
            frac = tf.minimum(t / self.total, 1.0)
            return self.base * (0.01 + 0.99 * 0.5 * (1.0 + tf.cos(math.pi * frac)))
        if self.kind == "step":
            if self.step_every:
                n = tf.floor(t / self.step_every)
            else:
                n = tf.cast(t >= 0.5 * self.total, tf.float32) + tf.cast(t >= 0.75 * self.total,
                                                                         tf.float32)
            return self.base * tf.pow(self.step_factor, n)
        return tf.constant(self.base, tf.float32)

    def get_config(self) -> dict[str, Any]:
        return {"base": self.base, "kind": self.kind, "total_steps": self.total,
                "step_every": self.step_every, "step_factor": self.step_factor}


class _LossScale:
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


def _make_optimizers(config: TrainConfig, model: keras.Model, total_steps: int):
    """One optimiser per distinct layer multiplier: Adam's update ignores gradient scale, so a
    per-layer learning rate needs its own optimiser. Returns [(optimiser, [variables])]."""
    groups: dict[float, list[tf.Variable]] = {}
    for layer, mult in zip(conv_layers(model), config.lr_multipliers):
        groups.setdefault(mult, []).extend(layer.trainable_variables)
    out = []
    for mult, variables in groups.items():
        lr = _Schedule(config.learning_rate * mult, config.schedule, total_steps,
                       config.step_every, config.step_factor)
        if config.optimizer == "adam":
            opt = keras.optimizers.Adam(lr)
        else:
            opt = keras.optimizers.SGD(lr, momentum=0.9)
        opt.build(variables)
        out.append((opt, variables))
    return out


def _finite(value: float) -> float | None:
    """JSON has no NaN/Infinity: a value that is not finite is written as null."""
    return value if math.isfinite(value) else None


def _append_jsonl(path: str, record: dict[str, Any]) -> None:
    record = {k: _finite(v) if isinstance(v, float) else v for k, v in record.items()}
    with open(path, "a") as f:
        f.write(json.dumps(record, allow_nan=False) + "\n")


def _truncate_jsonl(path: str, max_step: int) -> None:
    """Drops events logged after the checkpoint a resumed run starts from."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [ln for ln in f if ln.strip() and json.loads(ln)["step"] <= max_step]
    with open(path, "w") as f:
        f.writelines(lines)


def _read_json(path: str) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def describe_init(source: str) -> dict[str, Any]:
    """What a warm start reads from `source`: a SavedModel version folder (`saved_model.pb` and
    `metadata.json`) or a run directory (`config.json`, best checkpoint).

    Returns {"checkpoint": restore path, "model": ModelConfig fields, "scale", "label": a
    machine-independent name ("srcnn_x3/1" or the run's folder name), "chain": the training
    stages that produced the weights, oldest first}. Raises FileNotFoundError / ValueError
    naming `source`.
    """
    source = os.path.normpath(source)
    if os.path.exists(os.path.join(source, "saved_model.pb")):
        meta_path = os.path.join(source, "metadata.json")
        if not os.path.exists(meta_path):
            raise ValueError(f"init_from: {source} has no metadata.json (not exported by this "
                             f"project)")
        meta = _read_json(meta_path)
        label = f"{os.path.basename(os.path.dirname(source))}/{os.path.basename(source)}"
        chain = meta.get("training_chain") or [{
            "model": label, "data": {k: v for k, v in meta.get("training_data", {}).items()
                                     if k != "records"},
            "steps": meta.get("best_step"), "minutes": meta.get("training_minutes"),
            "init_from": None}]
        return {"checkpoint": os.path.join(source, "variables", "variables"),
                "model": {k: meta[k] for k in ("preset", "n1", "n2", "padding")},
                "scale": meta["scale"], "label": label, "chain": chain}
    config_path = os.path.join(source, "config.json")
    if os.path.exists(config_path):
        cfg = _read_json(config_path)
        path = (tf.train.latest_checkpoint(os.path.join(source, "best"))
                or tf.train.latest_checkpoint(os.path.join(source, "checkpoints")))
        if path is None:
            raise FileNotFoundError(f"init_from: {source} has no checkpoint yet")
        steps = int(path.rsplit("-", 1)[-1])
        event = _event_at(source, steps)
        stage = {"model": os.path.basename(source), "data": cfg.get("records", {}),
                 "steps": steps, "minutes": event.get("minutes"),
                 "val_psnr": event.get("val_psnr"),
                 "init_from": (cfg.get("init") or {}).get("label")}
        model = cfg["train"]["model"]
        return {"checkpoint": path,
                "model": {k: model[k] for k in ("preset", "n1", "n2", "padding")},
                "scale": cfg["scale"], "label": os.path.basename(source),
                "chain": list((cfg.get("init") or {}).get("chain", [])) + [stage]}
    raise FileNotFoundError(f"init_from: {source} is neither a SavedModel version folder "
                            f"(saved_model.pb) nor a run directory (config.json)")


def _event_at(run_dir: str, step: int) -> dict[str, Any]:
    """The run's last metrics.jsonl event at `step` ({} when none was logged)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        events = [json.loads(line) for line in f if line.strip()]
    at = [e for e in events if e["step"] == step]
    return at[-1] if at else {}


def warm_start(model: keras.Model, config: ModelConfig, source: str) -> dict[str, Any]:
    """Loads the weights of `source` (see describe_init) into `model`; the architectures must
    match. Returns describe_init's record (without the checkpoint path)."""
    info = describe_init(source)
    want = {k: getattr(config, k) for k in info["model"]}
    if info["model"] != want:
        raise ValueError(f"init_from: {source} holds a {info['model']} model, this run "
                         f"trains {want}")
    _restore_weights(model, info["checkpoint"])
    del info["checkpoint"]
    return info


def _restore_weights(model: keras.Model, checkpoint: str) -> None:
    """Model weights from a run checkpoint or a SavedModel's variables. Exports keep the
    convolutions as plain variables `kernels/i`, `biases/i` (see export.SRModule); runs and
    older exports keep the Keras model under `model`."""
    reader = tf.train.load_checkpoint(checkpoint)
    names = reader.get_variable_to_shape_map()
    key = "{}/{}/.ATTRIBUTES/VARIABLE_VALUE"
    if key.format("kernels", 0) not in names:
        tf.train.Checkpoint(model=model).read(checkpoint).expect_partial() \
            .assert_existing_objects_matched()
        return
    for i, layer in enumerate(conv_layers(model)):
        layer.set_weights([reader.get_tensor(key.format("kernels", i)),
                           reader.get_tensor(key.format("biases", i))])


def validate_psnr(model: keras.Model, config: ModelConfig, images, scale: int,
                  predict=None) -> float:
    """Mean PSNR (uint8 Y, shave = scale) over whole validation images."""
    predict = predict or (lambda x: super_resolve(model, config, x))
    values = []
    for _, inp, hr in images:
        sr = predict(tf.constant(inp[None]))[0].numpy()
        values.append(metrics.psnr(imaging.to_uint8(sr), hr, crop_border=scale))
    return float(np.mean(values))


def _sample_strip(images, predict) -> np.ndarray:
    """bicubic | SR | HR centre crops of the first validation image, uint8 (1, h, 3w, C)."""
    _, inp, hr = images[0]
    sr = imaging.to_uint8(predict(tf.constant(inp[None]))[0].numpy())
    h, w = hr.shape[:2]
    s = min(h, w, 128)
    r, c = (h - s) // 2, (w - s) // 2
    crops = [imaging.to_uint8(inp)[r:r + s, c:c + s], sr[r:r + s, c:c + s], hr[r:r + s, c:c + s]]
    return np.concatenate(crops, axis=1)[None]


def train(config: TrainConfig) -> dict[str, Any]:
    """Trains (or resumes) the run; returns the summary also written to run_dir/summary.json.

    Raises FloatingPointError when the loss stops being finite (the last good checkpoint stays).
    """
    config.validate()
    previous_policy = keras.mixed_precision.global_policy()
    precision = resolve_precision(config.mixed_precision)
    keras.mixed_precision.set_global_policy(precision or "float32")
    try:
        return _train(config, precision)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _train(config: TrainConfig, precision: str) -> dict[str, Any]:
    strategy = make_strategy(config.devices)
    chief = _is_chief(strategy)
    run_dir = config.run_dir
    if not chief:  # collective saves still happen on every worker, into a scratch folder
        run_dir = os.path.join(run_dir, f"worker_scratch_{strategy.cluster_resolver.task_id}")
    os.makedirs(run_dir, exist_ok=True)

    geometry = data_lib.Geometry.from_manifest(records.load_manifest(config.record_dir))
    crop = data_lib.check_fit(geometry, config.model, config.scale)
    scale = geometry.scale
    data = data_lib.TrainData(
        config.record_dir, config.batch_size, label_crop=crop, augment=config.augment,
        shuffle_buffer=config.shuffle_buffer, seed=config.seed,
        deterministic=config.deterministic, cache=config.cache)
    val = data_lib.val_images(config.record_dir)
    spe = data.steps_per_epoch
    total_steps = config.max_steps or config.epochs * spe

    with strategy.scope():
        model = build_srcnn(config.model, seed=config.seed)
        groups = _make_optimizers(config, model, total_steps)
        loss_scale = _LossScale(precision == "mixed_float16")
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="elapsed_seconds")
        best_psnr = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="best_val_psnr")
        best_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_step")
    state = dict(model=model, step=step, elapsed_seconds=elapsed, best_val_psnr=best_psnr,
                 best_step=best_step, loss_scale=loss_scale.scale)
    state.update({f"optimizer{i}": opt for i, (opt, _) in enumerate(groups)})
    ckpt = tf.train.Checkpoint(**state)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(run_dir, "checkpoints"),
                                         max_to_keep=config.keep_checkpoints)
    best_ckpt = tf.train.Checkpoint(model=model, step=step, best_val_psnr=best_psnr)
    best_manager = tf.train.CheckpointManager(best_ckpt, os.path.join(run_dir, "best"),
                                              max_to_keep=1)
    config_path = os.path.join(run_dir, "config.json")
    init = None
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info("resumed from %s at step %d", manager.latest_checkpoint, int(step.numpy()))
        if os.path.exists(config_path):
            init = _read_json(config_path).get("init")
    elif config.init_from:
        init = warm_start(model, config.model, config.init_from)
        log.info("warm start from %s (x%d)", init["label"], init["scale"])
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    _truncate_jsonl(metrics_path, int(step.numpy()))
    val_bicubic = validate_psnr(model, config.model, val, scale, lambda x: x) if val else None
    if chief:
        with open(config_path, "w") as f:
            json.dump({"train": dataclasses.asdict(config), "scale": scale,
                       "val_bicubic_psnr": val_bicubic,
                       "records_fingerprint": data.manifest["fingerprint"],
                       "records_patches": data.manifest["train"]["patches"],
                       "records": records.describe(data.manifest),
                       "init": init,
                       "tensorflow": tf.__version__, "keras": keras.__version__,
                       "replicas": strategy.num_replicas_in_sync,
                       "precision": precision or "float32"}, f, indent=1)

    variables = [v for _, vs in groups for v in vs]
    sizes = [len(vs) for _, vs in groups]
    global_batch = config.batch_size

    def step_fn(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            pred = tf.cast(model(x, training=True), tf.float32)
            per_example = tf.reduce_mean(tf.square(pred - y), axis=[1, 2, 3])
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            scaled = loss * loss_scale.scale if loss_scale.enabled else loss
        grads, finite = loss_scale.update(tape.gradient(scaled, variables))
        if loss_scale.enabled:
            grads = [tf.where(finite, g, tf.zeros_like(g)) for g in grads]
        start = 0
        for (opt, vs), n in zip(groups, sizes):
            opt.apply(grads[start:start + n], vs)
            start += n
        return loss

    @tf.function
    def train_step(batch: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        per_replica = strategy.run(step_fn, args=batch)
        step.assign_add(1)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    @tf.function(reduce_retracing=True)
    def predict(x: tf.Tensor) -> tf.Tensor:
        return super_resolve(model, config.model, x)

    writer = tf.summary.create_file_writer(os.path.join(run_dir, "tb")) if chief else None
    if chief and val_bicubic is not None:
        with writer.as_default(step=0):
            tf.summary.scalar("val_bicubic_psnr", val_bicubic)
    progress = _Progress(total_steps, int(step.numpy()), config.progress and chief, config.batch_size)
    session_start = time.perf_counter()
    elapsed0 = float(elapsed.numpy())
    window_start = time.perf_counter()
    last_loss = float("nan")

    def minutes() -> float:
        return (elapsed0 + time.perf_counter() - session_start) / 60.0

    def save() -> None:
        elapsed.assign(elapsed0 + time.perf_counter() - session_start)
        manager.save(checkpoint_number=int(step.numpy()))

    def log_event(loss_value: float, throughput: float, validate: bool) -> None:
        """One metrics.jsonl line and the matching TensorBoard scalars; with `validate`, the
        validation PSNR, the best checkpoint and the sample images too."""
        s = int(step.numpy())
        record = {"step": s, "epoch": s / spe, "minutes": minutes(), "loss": loss_value,
                  "lr": float(groups[0][0].learning_rate), "patches_per_s": throughput}
        if validate and val:
            psnr = validate_psnr(model, config.model, val, scale, predict)
            record["val_psnr"] = psnr
            progress.set(val_psnr=psnr)
            if psnr > float(best_psnr.numpy()):
                best_psnr.assign(psnr)
                best_step.assign(s)
                best_manager.save(checkpoint_number=s)
        if not chief:
            return
        _append_jsonl(metrics_path, record)
        with writer.as_default(step=s):
            for k, v in record.items():
                if k not in ("step", "epoch") and not math.isnan(v):
                    tf.summary.scalar(k, v)
            if validate and val:
                tf.summary.image("bicubic_sr_hr", _sample_strip(val, predict))
        writer.flush()

    stop = False
    window_losses: list[float] = []
    first_step = int(step.numpy())
    try:
        while not stop:
            s0 = int(step.numpy())
            epoch, done = divmod(s0, spe)
            if s0 >= total_steps or (config.max_minutes and minutes() >= config.max_minutes):
                break
            dist = strategy.experimental_distribute_dataset(data.epoch(epoch, done))
            for batch in dist:
                loss = float(train_step(batch))
                s = int(step.numpy())
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"loss became {loss} at step {s}; the last good checkpoint is "
                        f"{manager.latest_checkpoint}: lower --learning_rate or check the data")
                last_loss = loss
                window_losses.append(loss)
                progress.update(loss)
                validate = s % config.val_every == 0
                if s % config.log_every == 0 or validate:
                    now = time.perf_counter()
                    throughput = len(window_losses) * config.batch_size / (now - window_start)
                    log_event(float(np.mean(window_losses)), throughput, validate)
                    window_start, window_losses = time.perf_counter(), []
                if s % config.checkpoint_every == 0:
                    save()
                if s >= total_steps or (config.max_minutes and minutes() >= config.max_minutes):
                    stop = True
                    break
    finally:
        progress.close()
    summary_path = os.path.join(run_dir, "summary.json")
    if int(step.numpy()) == first_step and os.path.exists(summary_path):
        log.info("%s already reached step %d: nothing to do", run_dir, first_step)
        return _read_json(summary_path)  # a finished run, run again
    if int(step.numpy()) % config.val_every:
        log_event(float(np.mean(window_losses or [last_loss])), float("nan"), validate=True)
    save()
    summary = {"steps": int(step.numpy()), "epochs": int(step.numpy()) / spe, "minutes": minutes(),
               "best_val_psnr": float(best_psnr.numpy()), "best_step": int(best_step.numpy()),
               "final_loss": _finite(last_loss), "scale": scale, "run_dir": config.run_dir}
    if chief:
        with open(summary_path, "w") as f:
            json.dump(summary, f, indent=1, allow_nan=False)
    return summary


class _Progress:
    """Console progress bar with patches/s and ETA (tqdm), silent when disabled."""

    def __init__(self, total: int, initial: int, enabled: bool, batch: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, initial=initial, disable=not enabled, unit="step",
                         dynamic_ncols=True)
        self._batch = batch
        self._post: dict[str, str] = {}

    def update(self, loss: float) -> None:
        self._post["loss"] = f"{loss:.2e}"
        rate = self._bar.format_dict.get("rate") or 0
        self._post["patch/s"] = f"{rate * self._batch:.0f}"
        self._bar.set_postfix(self._post, refresh=False)
        self._bar.update(1)

    def set(self, val_psnr: float) -> None:
        self._post["val"] = f"{val_psnr:.2f}dB"

    def close(self) -> None:
        self._bar.close()


def load_model(run_dir: str, which: str = "best") -> tuple[keras.Model, ModelConfig, int]:
    """Restores a run's model ("best" or "latest") -> (model, model config, scale)."""
    with open(os.path.join(run_dir, "config.json")) as f:
        cfg = json.load(f)
    model_cfg = ModelConfig(**cfg["train"]["model"])
    model = build_srcnn(model_cfg, dtype="float32")  # inference in float32 whatever trained it
    folder = os.path.join(run_dir, "best" if which == "best" else "checkpoints")
    path = tf.train.latest_checkpoint(folder)
    if path is None and which == "best":
        path = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    if path is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint found (train first)")
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    return model, model_cfg, int(cfg["scale"])
