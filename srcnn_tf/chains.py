"""Training chains: what an export's metadata.json keeps of how its weights were trained
(`training_chain`, the stages oldest first). No framework imports: runs.py writes them for
TensorFlow runs and exports, the JAX trainer into the weights it saves.
"""

from __future__ import annotations

from typing import Any

ARCHITECTURE = ("preset", "n1", "n2", "padding", "scale_input")
RECIPE = ("learning_rate", "schedule", "warmup_steps", "warmup_fraction")  # beside batch_size


def architecture(fields: dict[str, Any]) -> dict[str, Any]:
    """The architecture fields of a metadata or model-config dict (older ones lack
    scale_input: False)."""
    return {k: fields.get(k, False) if k == "scale_input" else fields[k] for k in ARCHITECTURE}


def portable(data: dict[str, Any]) -> dict[str, Any]:
    """A stage's data record without folder paths, which mean nothing on another machine."""
    return {k: v for k, v in data.items() if k != "records"}


def run_chain(name: str, config: dict[str, Any], step: int,
              event: dict[str, Any]) -> list[dict[str, Any]]:
    """The chain of a run's weights at `step`: the chain its warm start continued (config.json's
    `init`), then this run as a stage. `name`: the run's folder name; `config`: its config.json;
    `event`: its metrics event at `step` (minutes, val_psnr; {} when none was logged). Stages
    exported before they recorded batch_size, RECIPE or precision lack them."""
    init, train = config.get("init") or {}, config["train"]
    stage = {"model": name, "data": config.get("records", {}), "steps": step,
             "minutes": event.get("minutes"), "val_psnr": event.get("val_psnr"),
             "init_from": init.get("label"), "batch_size": train.get("batch_size"),
             **{k: train[k] for k in RECIPE if train.get(k) is not None}}
    if config.get("precision"):  # what the run computed in (its config may say "auto")
        stage["precision"] = config["precision"]
    if config.get("device"):  # a JAX run records its accelerator
        stage["device"] = config["device"]
    if train.get("ema_decay"):  # the weights are an average of the iterates
        stage["ema_decay"] = train["ema_decay"]
    return [{**s, "data": portable(s.get("data", {}))} for s in init.get("chain", [])] + [stage]


def run_record(name: str, config: dict[str, Any], step: int,
               event: dict[str, Any]) -> dict[str, Any]:
    """What a warm start from a run's weights at `step` reads of them (describe_init's record
    without the checkpoint): model, scale, label and chain."""
    return {"model": architecture(config["train"]["model"]), "scale": config["scale"],
            "label": name, "chain": run_chain(name, config, step, event)}
