"""Training: a small Trainer (tf.function step, validate, save) and the run loop around it.

The run directory it writes is described in runs.py. Resume order: (1) the latest checkpoint
under run_dir/checkpoints restores the model, the optimisers, the step, the epoch position, the
accumulated wall time and the best PSNR; (2) without one, `init_from` (an exported version or
another run's best checkpoint) gives the weights, the optimisers starting fresh, and those
weights are validated as step 0, the first candidate for best/; (3) else the
model is initialised from `seed`. The data order of the resumed epoch is replayed from its seed
and the batches already done are skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from srcnn_tf import data as data_lib
from srcnn_tf import imaging, predictors, records, runs
from srcnn_tf.devices import is_chief, make_strategy, resolve_precision
from srcnn_tf.meters import Clock, Progress
from srcnn_tf.model import ModelConfig, build_srcnn
from srcnn_tf.optim import LossScale, WeightAverage, make_optimizers

log = logging.getLogger("srcnn_tf.train")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. The defaults are the measured fast recipe (see README)."""

    record_dir: str
    run_dir: str
    model: ModelConfig = ModelConfig()
    scale: float | tuple[float, ...] | None = None  # checked against the records when given
    optimizer: str = "adam"  # "adam" or "sgd" (momentum 0.9, the paper's)
    learning_rate: float = 1e-3
    lr_multipliers: tuple[float, float, float] = (1.0, 1.0, 0.1)  # per conv layer
    schedule: str = "cosine"  # "constant", "cosine" (to 1 % at the end), "step"
    step_every: int = 0  # "step": decay every N steps (0: at 50 % and 75 % of training)
    step_factor: float = 0.1
    warmup_steps: int = 0  # linear warm-up of the learning rate (for warm starts)
    adam_epsilon: float = 1e-7  # Keras' default; larger: filters with tiny gradients move less
    batch_size: int = 128  # global, split over replicas
    epochs: int = 120
    max_steps: int = 0  # 0: epochs * steps_per_epoch
    max_minutes: float = 0.0  # 0: no wall-clock budget
    augment: bool = False
    blind_fraction: float = 0.15  # scale_input models: examples trained without their factor
    shuffle_buffer: int = 16384  # patches; only without `cache`
    cache: bool = True  # in memory, each epoch a permutation of all patches
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
    ema_decay: float = 0.0  # > 0: validate, keep and export an average of the weights

    def validate(self) -> None:
        self.model.validate()
        checks = {
            "optimizer": self.optimizer in ("adam", "sgd"),
            "schedule": self.schedule in ("constant", "cosine", "step"),
            "mixed_precision": self.mixed_precision in ("auto", "", "mixed_float16",
                                                        "mixed_bfloat16"),
            "learning_rate": self.learning_rate > 0,
            "blind_fraction": 0 <= self.blind_fraction < 1,
            "batch_size": self.batch_size >= 1,
            "warmup_steps": self.warmup_steps >= 0,
            "adam_epsilon": self.adam_epsilon > 0,
            "lr_multipliers": len(self.lr_multipliers) == 3 and min(self.lr_multipliers) > 0,
            "epochs": self.epochs >= 1 or self.max_steps >= 1,
            "ema_decay": 0 <= self.ema_decay < 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: invalid value {getattr(self, name)!r}")


RECIPES: dict[str, dict[str, Any]] = {
    # The measured default (README): Adam, He init, cosine to 1 %, random flips/rotations.
    "fast": {"optimizer": "adam", "learning_rate": 1e-3, "lr_multipliers": (1.0, 1.0, 0.1),
             "schedule": "cosine", "init": "he", "augment": True},
    # The ECCV/TPAMI recipe: SGD + momentum 0.9, lr 1e-4 (1e-5 last layer), N(0, 1e-3) init.
    "paper": {"optimizer": "sgd", "learning_rate": 1e-4, "lr_multipliers": (1.0, 1.0, 0.1),
              "schedule": "constant", "init": "gaussian", "augment": False},
}


def make_config(record_dir: str, run_dir: str, recipe: str = "fast",
                model: ModelConfig = ModelConfig(), **overrides: Any) -> TrainConfig:
    """A TrainConfig from a named recipe (its weight init included), then `overrides`
    (any TrainConfig field; `init` sets the model's)."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
    fields = {**RECIPES[recipe], **overrides}
    model = dataclasses.replace(model, init=fields.pop("init"))
    return TrainConfig(record_dir=record_dir, run_dir=run_dir, model=model, **fields)


def train(config: TrainConfig) -> dict[str, Any]:
    """Trains (or resumes) the run; returns the summary also written to run_dir/summary.json.

    Raises FloatingPointError when the loss stops being finite (the last good checkpoint stays).
    """
    config.validate()
    previous_policy = keras.mixed_precision.global_policy()
    precision = resolve_precision(config.mixed_precision)
    keras.mixed_precision.set_global_policy(precision or "float32")
    try:
        return Trainer(config, precision).run()
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


class Trainer:
    """One run: the data, the model and its optimisers, one checkpoint object for the state,
    the step function, validation and the run directory's records."""

    def __init__(self, config: TrainConfig, precision: str) -> None:
        self.config, self.precision = config, precision
        self._iterator = None  # the training batches while the loop runs (see _loop)
        self.strategy = make_strategy(config.devices)
        self.chief = is_chief(self.strategy)
        path = config.run_dir
        if not self.chief:  # collective saves still happen on every worker, into a scratch folder
            path = os.path.join(path, f"worker_scratch_{self.strategy.cluster_resolver.task_id}")
        os.makedirs(path, exist_ok=True)
        self.run_dir = runs.RunDir(path)
        geometry = data_lib.Geometry.from_manifest(records.load_manifest(config.record_dir))
        crop = data_lib.check_fit(geometry, config.model, config.scale)
        self.scale = geometry.scale
        self.data = data_lib.TrainData(
            config.record_dir, config.batch_size, label_crop=crop, augment=config.augment,
            shuffle_buffer=config.shuffle_buffer, seed=config.seed,
            deterministic=config.deterministic, cache=config.cache,
            scale_input=config.model.scale_input, blind_fraction=config.blind_fraction)
        self.val = data_lib.val_images(config.record_dir)
        self.total_steps = config.max_steps or config.epochs * self.data.steps_per_epoch
        self._build_state()
        self.init = self._restore()
        self.train_step = self._make_step()

    def _build_state(self) -> None:
        c = self.config
        with self.strategy.scope():
            self.model = build_srcnn(c.model, seed=c.seed)
            self.average = WeightAverage(self.model, build_srcnn(c.model), c.ema_decay) \
                if c.ema_decay else None
            # elapsed / max_minutes, kept by the loop: the schedule's wall-clock budget
            self.time_fraction = tf.Variable(0.0, trainable=False, name="time_fraction") \
                if c.max_minutes else None
            self.groups = make_optimizers(c, self.model, self.total_steps, self.time_fraction)
            self.loss_scale = LossScale(self.precision == "mixed_float16")
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                       name="elapsed_seconds")
            self.best_psnr = tf.Variable(-np.inf, dtype=tf.float64, trainable=False,
                                         name="best_val_psnr")
            self.best_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_step")
        state = dict(model=self.model, step=self.step, elapsed_seconds=self.elapsed,
                     best_val_psnr=self.best_psnr, best_step=self.best_step,
                     loss_scale=self.loss_scale.scale)
        state.update({f"optimizer{i}": opt for i, (opt, _) in enumerate(self.groups)})
        if self.average:
            state.update(average=self.average.twin, average_updates=self.average.updates)
        self.ckpt = tf.train.Checkpoint(**state)
        self.manager = tf.train.CheckpointManager(
            self.ckpt, self.run_dir.file(runs.CHECKPOINTS), max_to_keep=c.keep_checkpoints)
        best = tf.train.Checkpoint(model=self.served, step=self.step,
                                   best_val_psnr=self.best_psnr)
        self.best_manager = tf.train.CheckpointManager(best, self.run_dir.file(runs.BEST),
                                                       max_to_keep=1)

    @property
    def served(self) -> keras.Model:
        """The model validated, kept as best and exported: the weight average when there is one."""
        return self.average.twin if self.average else self.model

    def _restore(self) -> dict[str, Any] | None:
        """The resume order of the module docstring; returns the run's warm-start record."""
        init = self._restore_or_init()
        if self.average and int(self.average.updates.numpy()) == 0:  # new, or a run without one
            self.average.reset()
        return init

    def _restore_or_init(self) -> dict[str, Any] | None:
        if self.manager.latest_checkpoint:
            self.ckpt.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            log.info("resumed from %s at step %d", self.manager.latest_checkpoint,
                     int(self.step.numpy()))
            return self.run_dir.config().get("init") if os.path.exists(
                self.run_dir.file(runs.CONFIG)) else None
        if self.config.init_from:
            init = runs.warm_start(self.model, self.config.model, self.config.init_from)
            log.info("warm start from %s (x%s)", init["label"], imaging.scale_name(init["scale"]))
            trains = imaging.scale_list(self.data.manifest["scale"])
            if len(trains) == 1 and set(imaging.scale_list(init["scale"])) != set(trains):
                log.warning("%s was trained for x%s; these records are x%s: a start from another "
                            "factor", init["label"], imaging.scale_name(init["scale"]),
                            imaging.scale_name(trains))
            return init
        return None

    def _make_step(self):
        variables = [v for _, vs in self.groups for v in vs]
        sizes = [len(vs) for _, vs in self.groups]
        model, loss_scale, groups, average = self.model, self.loss_scale, self.groups, self.average
        global_batch = self.config.batch_size

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
            per_replica = self.strategy.run(step_fn, args=batch)
            self.step.assign_add(1)
            if average:
                average.update()
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        self.predict = predictors.Judge(self.served, self.config.model, bool(self.precision))
        self.predict_raw = predictors.Judge(model, self.config.model, bool(self.precision)) \
            if average else None
        return train_step

    def write_config(self, val_bicubic: float | None) -> None:
        c, manifest = self.config, self.data.manifest
        self.run_dir.write_config({
            "train": dataclasses.asdict(c), "scale": self.scale,
            "val_bicubic_psnr": val_bicubic, "records_fingerprint": manifest["fingerprint"],
            "records_patches": manifest["train"]["patches"],
            "records": records.describe(manifest), "init": self.init,
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "replicas": self.strategy.num_replicas_in_sync,
            "precision": self.precision or "float32"})

    def validate(self, predict=None, net=None) -> float:
        """Mean PSNR (uint8 Y, shave = scale) over the records' held-out whole images; for
        multi-scale records the mean of the per-scale means (`validate_per_scale`)."""
        return float(np.mean(list(self.validate_per_scale(predict, net).values())))

    def validate_per_scale(self, predict=None, net=None) -> dict[float, float]:
        """{scale: mean PSNR of the held-out images at that scale}: of `predict` (an image
        predictor) or of `net` (a predictors.Judge like self.predict, the default)."""
        net = net or self.predict
        if not predict:
            net.refresh()

        def predictor_at(s: float) -> predictors.Predictor:
            if predict:
                return predict
            told = tf.constant(s, tf.float32) if self.config.model.scale_input else None
            return lambda x: net(tf.constant(x[None]), told)[0].numpy()

        return predictors.mean_psnr_by_scale(predictor_at, self.val)

    def save(self, elapsed_seconds: float) -> None:
        self.elapsed.assign(elapsed_seconds)
        self.manager.save(checkpoint_number=int(self.step.numpy()))

    def log_event(self, loss: float | None, throughput: float | None, minutes: float,
                  validate: bool) -> None:
        """One metrics.jsonl line and the matching TensorBoard scalars; with `validate`, the
        validation PSNR, the best checkpoint and the sample images too. `loss` and `throughput`
        are None for the warm start's weights, validated before any step."""
        s = int(self.step.numpy())
        record = {"step": s, "epoch": s / self.data.steps_per_epoch, "minutes": minutes,
                  "lr": float(self.groups[0][0].learning_rate)}
        if loss is not None:
            record.update(loss=loss, patches_per_s=throughput)
        if validate and self.val:
            per_scale = self.validate_per_scale()
            record["val_psnr"] = psnr = float(np.mean(list(per_scale.values())))
            if len(per_scale) > 1:
                record.update({f"val_psnr_x{imaging.scale_label(k)}": v
                               for k, v in per_scale.items()})
            if self.predict_raw:  # the last iterate beside the average it is compared to
                record["val_psnr_raw"] = self.validate(net=self.predict_raw)
            self.progress.set(val_psnr=psnr)
            if psnr > float(self.best_psnr.numpy()):
                self.best_psnr.assign(psnr)
                self.best_step.assign(s)
                self.best_manager.save(checkpoint_number=s)
        if not self.chief:
            return
        self.run_dir.append_metrics(record)
        with self.writer.as_default(step=s):
            for k, v in record.items():
                if k not in ("step", "epoch") and math.isfinite(v):
                    tf.summary.scalar(k, v)
            if validate and self.val:  # bicubic | SR | HR of the first held-out image
                _, inp, hr, scale = self.val[0]
                sr = self.predict(tf.constant(inp[None]), tf.constant(scale, tf.float32))[0]
                tf.summary.image("bicubic_sr_hr", imaging.centre_crops(inp, sr.numpy(), hr))
        self.writer.flush()

    def run(self) -> dict[str, Any]:
        """The loop: epochs of batches until the step or minute budget; returns the summary."""
        c = self.config
        first_step = int(self.step.numpy())
        self.run_dir.truncate_metrics(first_step if first_step else -1)
        val_bicubic = self.validate(predictors.bicubic_predictor) if self.val else None
        if self.chief:
            self.write_config(val_bicubic)
        self.writer = tf.summary.create_file_writer(self.run_dir.file(runs.TB)) if self.chief \
            else None
        if self.chief and val_bicubic is not None:
            with self.writer.as_default(step=0):
                tf.summary.scalar("val_bicubic_psnr", val_bicubic)
        self.progress = Progress(self.total_steps, first_step, c.progress and self.chief,
                                  c.batch_size)
        if first_step == 0 and self.init and self.val:  # the start: best/'s first candidate
            self.log_event(None, None, 0.0, validate=True)
        clock = Clock(float(self.elapsed.numpy()))
        try:
            last_loss, window, validated = self._loop(clock)
        finally:
            self.progress.close()
        finished = self.run_dir.summary() if int(self.step.numpy()) == first_step else None
        if finished is not None:  # a finished run, run again
            log.info("%s already reached step %d: nothing to do", self.run_dir.path, first_step)
            return finished
        if not validated:  # the data ran out before a budget did
            self.log_event(float(np.mean(window or [last_loss])), float("nan"), clock.minutes(),
                           validate=True)
        self.save(clock.seconds())
        summary = self._write_summary(clock.minutes(), last_loss)
        self._iterator = None
        return summary

    def _done(self, clock: Clock) -> bool:
        c = self.config
        return int(self.step.numpy()) >= self.total_steps or bool(
            c.max_minutes and clock.minutes() >= c.max_minutes)

    def _loop(self, clock: Clock) -> tuple[float, list[float], bool]:
        """Trains until done, validating at the last step too; returns the last loss, the
        losses not yet logged and whether the last step was logged with validation."""
        c, spe = self.config, self.data.steps_per_epoch
        last_loss, window, window_start = float("nan"), [], time.perf_counter()
        validate = False
        if self._done(clock):
            return last_loss, window, validate
        epoch, done = divmod(int(self.step.numpy()), spe)
        # Held until the run's last checkpoint and summary are written: dropping the iterator
        # can block on tf.data's autotuning thread (21-52 s seen, now and then).
        self._iterator = iter(self.strategy.experimental_distribute_dataset(
            self.data.stream(epoch, done)))
        for batch in self._iterator:
            if self.time_fraction is not None:
                self.time_fraction.assign(clock.minutes() / c.max_minutes)
            last_loss = float(self.train_step(batch))
            s = int(self.step.numpy())
            if not math.isfinite(last_loss):
                raise FloatingPointError(
                    f"loss became {last_loss} at step {s}; the last good checkpoint is "
                    f"{self.manager.latest_checkpoint}: lower the learning rate or check "
                    f"the data")
            window.append(last_loss)
            self.progress.update(last_loss)
            last = self._done(clock)
            validate = s % c.val_every == 0 or last
            if s % c.log_every == 0 or validate:
                rate = len(window) * c.batch_size / (time.perf_counter() - window_start)
                self.log_event(float(np.mean(window)), rate, clock.minutes(), validate)
                window, window_start = [], time.perf_counter()
            if s % c.checkpoint_every == 0:
                self.save(clock.seconds())
            if last:
                break
        return last_loss, window, validate

    def _write_summary(self, minutes: float, last_loss: float) -> dict[str, Any]:
        s = int(self.step.numpy())
        summary = {"steps": s, "epochs": s / self.data.steps_per_epoch, "minutes": minutes,
                   "best_val_psnr": float(self.best_psnr.numpy()),
                   "best_step": int(self.best_step.numpy()), "final_loss": runs.finite(last_loss),
                   "scale": self.scale, "run_dir": self.config.run_dir}
        if self.chief:
            self.run_dir.write_summary(summary)
        return summary
