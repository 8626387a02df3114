"""Where trained weights live, both ways: the run directory and the exported version folders.

Run directory contract (`run_dir/`), written by train.py through `RunDir` and read through it by
evaluate, export, figures and warm starts:
  config.json          the resolved TrainConfig, the records (sources, fingerprint), versions,
                       and `init`: what the run warm-started from, with its training chain
  metrics.jsonl        one JSON object per log/validation event (step, minutes, loss, val_psnr ...)
  checkpoints/         latest checkpoints: model, optimisers, step, epoch, wall time, best PSNR
  best/                the checkpoint with the best validation PSNR (what export uses)
                       (a JAX run, jax_train.py, keeps weights-<step>.npz files here and in
                       checkpoints/ instead, see weights.py)
  tb/                  TensorBoard events: loss, lr, val PSNR, patches/s, sample images
  summary.json         written when training ends

An exported version folder (export.py) holds `saved_model.pb`, `variables/` with the three
convolutions as `kernels/i` and `biases/i`, and `metadata.json` (architecture, scale, chain).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import keras
import tensorflow as tf

from srcnn_tf import chains, imaging, weights
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers

CONFIG, METRICS, SUMMARY = "config.json", "metrics.jsonl", "summary.json"
CHECKPOINTS, BEST, TB = "checkpoints", "best", "tb"
METADATA = "metadata.json"
EXPORT_VARIABLE = "{}/{}/.ATTRIBUTES/VARIABLE_VALUE"  # kernels/0 ... of signatures.SRModule


def finite(value: float) -> float | None:
    """JSON has no NaN/Infinity: a value that is not finite is written as null."""
    return value if math.isfinite(value) else None


def read_json(path: str) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def write_json(path: str, obj: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False)


class RunDir:
    """One run directory: paths, config, metrics events, checkpoints, summary."""

    def __init__(self, path: str) -> None:
        self.path = path

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def name(self) -> str:
        """The run's folder name: how metadata refers to it on any machine."""
        return os.path.basename(os.path.normpath(os.path.abspath(self.path)))

    def config(self) -> dict[str, Any]:
        if not os.path.exists(self.file(CONFIG)):
            raise FileNotFoundError(f"{self.path}: no {CONFIG} (not a training run)")
        return read_json(self.file(CONFIG))

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.file(CONFIG), config)

    def model_config(self) -> tuple[ModelConfig, "int | float | list[float]"]:
        """(architecture, scale as imaging.scale_json: a list for a multi-scale run)."""
        cfg = self.config()
        return ModelConfig(**cfg["train"]["model"]), imaging.scale_json(cfg["scale"])

    def append_metrics(self, record: dict[str, Any]) -> None:
        record = {k: finite(v) if isinstance(v, float) else v for k, v in record.items()}
        with open(self.file(METRICS), "a") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.file(METRICS)):
            return []
        with open(self.file(METRICS)) as f:
            return [json.loads(line) for line in f if line.strip()]

    def truncate_metrics(self, max_step: int) -> None:
        """Drops events logged after the checkpoint a resumed run starts from."""
        if os.path.exists(self.file(METRICS)):
            kept = [e for e in self.metrics() if e["step"] <= max_step]
            with open(self.file(METRICS), "w") as f:
                f.writelines(json.dumps(e, allow_nan=False) + "\n" for e in kept)

    def event_at(self, step: int) -> dict[str, Any]:
        """The last metrics event logged at `step` ({} when none was)."""
        at = [e for e in self.metrics() if e["step"] == step]
        return at[-1] if at else {}

    def summary(self) -> dict[str, Any] | None:
        return read_json(self.file(SUMMARY)) if os.path.exists(self.file(SUMMARY)) else None

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.file(SUMMARY), summary)

    def checkpoint(self, which: str = "best") -> str:
        """Path of the best (falling back to the latest) or the latest checkpoint."""
        folders = [BEST, CHECKPOINTS] if which == "best" else [CHECKPOINTS]
        path = None
        for folder in folders:
            path = path or tf.train.latest_checkpoint(self.file(folder)) \
                or weights.latest_weights(self.file(folder))
        if path is None:
            raise FileNotFoundError(f"{self.path}: no checkpoint found (train first)")
        return path

    def kept_checkpoint(self, step: int) -> str:
        """The checkpoint kept at `step` under checkpoints/; FileNotFoundError naming the
        steps kept when there is none."""
        kept = {self.step_of(p): p for p in self.kept_checkpoints()}
        if step not in kept:
            raise FileNotFoundError(
                f"{self.path}: no checkpoint kept at step {step} (kept: "
                f"{', '.join(map(str, sorted(kept))) or 'none'})")
        return kept[step]

    @staticmethod
    def step_of(checkpoint: str) -> int:
        """The training step a checkpoint path names (ckpt-1200, weights-1200.npz)."""
        return int(checkpoint.removesuffix(".npz").rsplit("-", 1)[-1])

    def kept_checkpoints(self) -> list[str]:
        state = tf.train.get_checkpoint_state(self.file(CHECKPOINTS))
        return list(state.all_model_checkpoint_paths) if state else []


def load_model(run_dir: str, which: str = "best",
               step: int | None = None) -> tuple[keras.Model, ModelConfig, int]:
    """Restores a run's model ("best", or "latest": its last iterate) in float32 -> (model,
    model config, scale); with `step`, the weights it serves at that kept checkpoint
    (restore_served) instead."""
    run = RunDir(run_dir)
    model_cfg, scale = run.model_config()
    model = build_srcnn(model_cfg, dtype="float32")  # inference in float32 whatever trained it
    if step is None:
        restore_weights(model, run.checkpoint(which))
    else:
        restore_served(model, run.kept_checkpoint(step))
    return model, model_cfg, scale


def model_versions(base: str) -> list[int]:
    """The numeric version folders of a TF Serving model folder (empty when there is none)."""
    return [int(d) for d in os.listdir(base) if d.isdigit()] if os.path.isdir(base) else []


def newest_version(path: str) -> str:
    """`path` itself when it is an exported version, else its highest numeric version folder
    (`path` unchanged when it has none)."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = model_versions(path)
    return os.path.join(path, str(max(versions))) if versions else path


def is_export(path: str) -> bool:
    """Whether `path` is a version folder exported by this project (SavedModel + metadata)."""
    return all(os.path.isfile(os.path.join(path, f)) for f in ("saved_model.pb", METADATA))


def resolve_export(path: str, what: str) -> str:
    """The exported version a user named: `path` itself or a model folder's newest version.
    Raises FileNotFoundError naming `what` (the flag) and `path` when it is neither."""
    version = newest_version(path)
    if is_export(version):
        return version
    if os.path.exists(os.path.join(path, CONFIG)):
        raise FileNotFoundError(f"{what}: {path} is a training run, not an exported version: "
                                f"export it first")
    raise FileNotFoundError(f"{what}: {path} is neither an exported version "
                            f"(saved_model.pb, {METADATA}) nor a folder of them")


def export_label(path: str) -> str:
    """'<model name>/<version>' of an exported version folder: its name on any machine."""
    return "/".join(os.path.normpath(os.path.abspath(path)).split(os.sep)[-2:])


def load_export(path: str) -> tuple[keras.Model, ModelConfig, dict[str, Any]]:
    """An exported version as a float32 Keras model -> (model, model config, metadata)."""
    meta = read_json(os.path.join(path, METADATA))
    config = ModelConfig(**chains.architecture(meta))
    model = build_srcnn(config, dtype="float32")
    warm_start(model, config, path)
    return model, config, meta


def describe_init(source: str) -> dict[str, Any]:
    """What a warm start reads from `source`: an exported version folder, a model folder (its
    newest version), a run directory, or a weights file (.npz, weights.py: what `make
    jax-bundle` writes and a JAX run keeps).

    Returns {"checkpoint": restore path, "model": architecture fields, "scale", "label": a
    machine-independent name ("srcnn_x3/2" or the run's folder name), "chain": the training
    stages that produced the weights, oldest first}. Raises FileNotFoundError / ValueError
    naming `source`.
    """
    source = os.path.normpath(source)
    if os.path.isfile(source) and source.endswith(".npz"):
        return _describe_weights(source)
    if os.path.exists(os.path.join(source, CONFIG)):
        return describe_run(source)
    version = newest_version(source)
    if os.path.exists(os.path.join(version, "saved_model.pb")):
        return _describe_export(version)
    raise FileNotFoundError(f"init_from: {source} is neither an exported version folder "
                            f"(saved_model.pb), a folder of them, a run directory ({CONFIG}) "
                            f"nor a weights file (.npz)")


def _describe_export(source: str) -> dict[str, Any]:
    if not os.path.exists(os.path.join(source, METADATA)):
        raise ValueError(f"init_from: {source} has no {METADATA} (not exported by this project)")
    meta = read_json(os.path.join(source, METADATA))
    label = export_label(source)
    chain = meta.get("training_chain") or [{
        "model": label, "data": chains.portable(meta.get("training_data", {})),
        "steps": meta.get("best_step"), "minutes": meta.get("training_minutes"),
        "init_from": None}]
    return {"checkpoint": os.path.join(source, "variables", "variables"),
            "model": chains.architecture(meta), "scale": meta["scale"],
            "label": label, "chain": chain}


def _describe_weights(source: str) -> dict[str, Any]:
    _, info = weights.read_weights(source)
    missing = [k for k in ("model", "scale", "label") if k not in info]
    if missing:
        raise ValueError(f"init_from: {source} does not say what its weights are "
                         f"(no {', '.join(missing)} in its info)")
    return {"checkpoint": source, "model": chains.architecture(info["model"]),
            "scale": info["scale"], "label": info["label"], "chain": info.get("chain", [])}


def describe_run(run_dir: str, step: int | None = None) -> dict[str, Any]:
    """describe_init's record of a run's best checkpoint, or with `step` of the one kept at
    that step (what `make export ... --step` writes)."""
    run = RunDir(run_dir)
    path = run.checkpoint("best") if step is None else run.kept_checkpoint(step)
    step = run.step_of(path)
    return {"checkpoint": path,
            **chains.run_record(run.name, run.config(), step, run.event_at(step))}


def warm_start(model: keras.Model, config: ModelConfig, source: str) -> dict[str, Any]:
    """Loads the weights of `source` (see describe_init) into `model`; the architectures must
    match. Returns describe_init's record without the checkpoint path."""
    info = describe_init(source)
    want = {k: getattr(config, k) for k in info["model"]}
    widen = not info["model"]["scale_input"] and config.scale_input
    if {**info["model"], "scale_input": config.scale_input} != want or (
            info["model"]["scale_input"] and not config.scale_input):
        raise ValueError(f"init_from: {source} holds a {info['model']} model, this run "
                         f"trains {want}")
    if not widen:
        restore_weights(model, info.pop("checkpoint"))
        return info
    # A single-scale model starts a scale_input one: its weights, zero weights on the scale
    # planes, so the new model begins as the old one at every factor.
    source_model = build_srcnn(dataclasses.replace(config, scale_input=False), dtype="float32")
    restore_weights(source_model, info.pop("checkpoint"))
    for i, (src, dst) in enumerate(zip(conv_layers(source_model), conv_layers(model))):
        kernel, bias = src.get_weights()
        dst.set_weights([weights.with_plane_weights(kernel) if i == 0 else kernel, bias])
    return info


def restore_served(model: keras.Model, checkpoint: str) -> None:
    """The weights a run serves from one of its kept checkpoints (checkpoints/ckpt-N): its
    weight average when it kept one (`ema_decay`: what validation, best/ and exports read),
    else the model. A checkpoint under best/ holds the served weights already (restore_weights)."""
    names = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
    key = "average" if any(n.startswith("average/") for n in names) else "model"
    tf.train.Checkpoint(**{key: model}).read(checkpoint).expect_partial() \
        .assert_existing_objects_matched()


def restore_weights(model: keras.Model, checkpoint: str) -> None:
    """Model weights from a run checkpoint (the Keras model under `model`, as older exports
    also keep it), from an export's plain variables `kernels/i`, `biases/i`, or from a weights
    file (.npz, weights.py) of a JAX run."""
    if checkpoint.endswith(".npz"):
        params, _ = weights.read_weights(checkpoint)
        weights.check_shapes(params, [(layer.kernel.shape, layer.bias.shape)
                                      for layer in conv_layers(model)], checkpoint)
        for layer, (kernel, bias) in zip(conv_layers(model), params):
            layer.set_weights([kernel, bias])
        return
    reader = tf.train.load_checkpoint(checkpoint)
    if EXPORT_VARIABLE.format("kernels", 0) not in reader.get_variable_to_shape_map():
        tf.train.Checkpoint(model=model).read(checkpoint).expect_partial() \
            .assert_existing_objects_matched()
        return
    for i, layer in enumerate(conv_layers(model)):
        layer.set_weights([reader.get_tensor(EXPORT_VARIABLE.format("kernels", i)),
                           reader.get_tensor(EXPORT_VARIABLE.format("biases", i))])
