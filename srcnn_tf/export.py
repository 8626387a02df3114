"""What TF Serving loads: a versioned SavedModel with three signatures (TFLite: tflite.py).

SavedModel signatures (names are a contract with tools outside this project):
  serving_default   image uint8 [batch, H, W, 3] LR RGB -> image uint8 [batch, S*H, S*W, 3]
  super_resolve_y   y float32 [batch, H, W, 1] bicubic-upscaled Y in [0, 1] -> y, same shape
  upscale_encoded   image_bytes string [1] (PNG/JPEG/BMP/GIF) -> image_bytes string [1] (PNG)
A multi-scale model (`srcnn_multiscale`, trained on several factors) takes the factor as an
input: serving_default and upscale_encoded also take `scale` float32 [] (1 < scale <= 4) and
answer ceil(scale * H) x ceil(scale * W); super_resolve_y is the same as above (blind: the
model guesses the factor from the image) and super_resolve_y_at (y, scale) tells it.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from typing import Any

import tensorflow as tf

from srcnn_tf import chains, imaging, runs
from srcnn_tf.model import ModelConfig
from srcnn_tf.runs import model_versions
from srcnn_tf.signatures import MultiScaleModule, SRModule

log = logging.getLogger("srcnn_tf.export")


MULTISCALE_NAME = "srcnn_multiscale"


def _next_version(root: str) -> int:
    return max(model_versions(root), default=0) + 1


def export_saved_model(model: tf.keras.Model, config: ModelConfig,
                       scale: "int | float | list[float]", out_root: str,
                       metadata: dict[str, Any] | None = None, version: int | None = None,
                       max_pixels: int = 16_000_000, name: str | None = None) -> str:
    """Writes `out_root/<name>/{version}/` (name srcnn_x{scale}, or srcnn_multiscale for a
    model trained on several scales, and the next integer version by default); returns the
    path. A multi-scale model's signatures take the factor (MultiScaleModule)."""
    scales = imaging.scale_list(scale)
    multi = len(scales) > 1
    if not multi and not isinstance(scales[0], int):
        raise ValueError(f"scale {scale}: a single fractional factor is served by a multi-scale "
                         f"model (train on several scales)")
    if config.scale_input and not multi:
        raise ValueError("a scale_input model is exported as a multi-scale model: give the "
                         "scales it was trained on")
    base = os.path.join(out_root, name or (MULTISCALE_NAME if multi else f"srcnn_x{scale}"))
    version = version or _next_version(base)
    path = os.path.join(base, str(version))
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists: versions are immutable, pick another")
    tmp = path + ".tmp"
    if multi:
        module = MultiScaleModule(model, config, 1, max_pixels)
        signatures = {"serving_default": module.serve_at.get_concrete_function(),
                      "upscale_encoded": module.upscale_encoded_at.get_concrete_function(),
                      "super_resolve_y_at": module.super_resolve_y_at.get_concrete_function()}
    else:
        module = SRModule(model, config, scales[0], max_pixels)
        signatures = {"serving_default": module.serve.get_concrete_function(),
                      "upscale_encoded": module.upscale_encoded.get_concrete_function()}
    signatures["super_resolve_y"] = module.super_resolve_y.get_concrete_function()
    tf.saved_model.save(module, tmp, signatures=signatures)
    served = {"max_scale": imaging.MAX_SCALE} if multi else {}
    meta = {"scale": imaging.scale_json(scales), **served, "preset": config.preset,
            "n1": config.n1, "n2": config.n2, "padding": config.padding,
            "scale_input": config.scale_input, "border": config.border, "max_pixels": max_pixels,
            "version": version,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "tensorflow": tf.__version__, **(metadata or {})}
    with open(os.path.join(tmp, "metadata.json"), "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, path)  # TF Serving only ever sees complete versions
    return path


def export_run(run_dir: str, out_root: str, version: int | None = None,
               max_pixels: int = 16_000_000, name: str | None = None,
               step: int | None = None) -> str:
    """Exports the best checkpoint of a training run, or with `step` the weights it served at
    that kept checkpoint (one a float32 held-out curve picked: evaluate.checkpoint_curve),
    with its provenance in metadata.json (run folder name, records sources and fingerprint,
    the chain of warm starts: no machine paths)."""
    model, config, scale = runs.load_model(run_dir, "best", step)
    info = runs.describe_run(run_dir, step)
    stage = info["chain"][-1]
    run = runs.RunDir(run_dir)
    cfg = run.config()
    if stage["steps"] == 0 and cfg.get("init"):
        log.warning("%s: no step beat the weights it started from (%s); the export holds them "
                    "unchanged", run.name, cfg["init"].get("label"))
    meta: dict[str, Any] = {
        "run": run.name,
        "val_psnr": stage.get("val_psnr"), "best_step": stage["steps"],
        "training_minutes": stage["minutes"],
        "training_data": cfg.get("records") or {"patches": cfg.get("records_patches"),
                                                "fingerprint": cfg.get("records_fingerprint")},
        "training_chain": info["chain"],
        # Minutes on this project's CPUs and on accelerators (JAX stages) are not one unit.
        "total_training_minutes": sum(s.get("minutes") or 0.0 for s in info["chain"]
                                      if not s.get("device")),
    }
    accelerated = [s.get("minutes") or 0.0 for s in info["chain"] if s.get("device")]
    if accelerated:
        meta["accelerator_training_minutes"] = sum(accelerated)
    path = export_saved_model(model, config, scale, out_root, meta, version, max_pixels, name)
    write_training_curve(run_dir, os.path.join(path, "training_curve.csv"))
    return path


def reexport(saved_model_dir: str, out_root: str, version: int | None = None,
             name: str | None = None) -> str:
    """A new version of an exported model with the same weights, metadata and training curve,
    written by today's exporter (e.g. to serve an export made before a signature fix).
    Returns the new version's path."""
    source = os.path.normpath(saved_model_dir)
    model, config, old = runs.load_export(source)
    keep = {k: v for k, v in old.items() if k not in (
        "scale", "max_scale", "preset", "n1", "n2", "padding", "scale_input", "border",
        "max_pixels", "version", "created", "tensorflow", "source_run")}
    if "source_run" in old:  # older exports named an absolute run path: keep its folder name
        keep.setdefault("run", os.path.basename(os.path.normpath(old["source_run"])))
    keep["training_data"] = chains.portable(keep.get("training_data", {}))
    if "training_chain" not in keep:  # older exports: the one stage their metadata describes
        keep["training_chain"] = runs.describe_init(source)["chain"]
    keep["reexported_from"] = runs.export_label(source)
    name = name or os.path.basename(os.path.dirname(source))
    path = export_saved_model(model, config, old["scale"], out_root, keep, version,
                              old.get("max_pixels", 16_000_000), name)
    curve = os.path.join(source, "training_curve.csv")
    if os.path.exists(curve):
        with open(curve) as src, open(os.path.join(path, "training_curve.csv"), "w") as dst:
            dst.write(src.read())
    return path


def write_training_curve(run_dir: str, csv_path: str) -> None:
    """step, minutes, loss, val_psnr of each validation event of the run (metrics.jsonl); the
    loss is blank at a warm start's step 0 (validated before any training)."""
    with open(csv_path, "w") as f:
        f.write("step,minutes,loss,val_psnr\n")
        for e in runs.RunDir(run_dir).metrics():
            if "val_psnr" in e:
                loss = f"{e['loss']:.6g}" if e.get("loss") is not None else ""
                f.write(f"{e['step']},{e['minutes']:.3f},{loss},{e['val_psnr']:.4f}\n")


def default_models_dir() -> str:
    """`saved_models` in the working directory when it holds this project's models (a checkout;
    a folder of that common name with other models in it does not count), else the shipped
    models that `pip install` put under <prefix>/share/srcnn-tf/saved_models, else (an editable
    install, `pip install -e`, which installs no data files) those of the checkout it runs from."""
    def ours(folder: str) -> bool:
        return os.path.isdir(folder) and any(
            name.startswith(("srcnn_", "sc_")) for name in os.listdir(folder))

    installed = os.path.join(sys.prefix, "share", "srcnn-tf", "saved_models")
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "saved_models")
    return next((f for f in ("saved_models", installed, checkout) if ours(f)), installed)


def latest_multiscale(root: str) -> str:
    """The newest version folder of `root/srcnn_multiscale`; a clear error when none exists."""
    base = os.path.join(root, MULTISCALE_NAME)
    versions = model_versions(base)
    if not versions:
        raise FileNotFoundError(f"no {MULTISCALE_NAME} model under {root}: a size or a "
                                f"fractional scale needs one (make train SCALE=1.5,2,2.5,3,3.5,4, "
                                f"then make export)")
    return os.path.join(base, str(max(versions)))


def latest_export(root: str, scale: float) -> str:
    """The newest version folder of `root/srcnn_x{scale}`, else (any factor in (1, 4]) of
    `root/srcnn_multiscale`; a clear error naming what is missing when neither exists."""
    label = imaging.scale_label(scale)
    base = os.path.join(root, f"srcnn_x{label}")
    versions = model_versions(base)
    if versions:
        return os.path.join(base, str(max(versions)))
    multi = os.path.join(root, MULTISCALE_NAME)
    served = 1 < scale <= imaging.MAX_SCALE
    if served and model_versions(multi):
        return os.path.join(multi, str(max(model_versions(multi))))
    why = (f"x{label} is outside (1, {imaging.MAX_SCALE:g}], the factors {MULTISCALE_NAME} "
           f"serves" if model_versions(multi) else f"there is no {MULTISCALE_NAME} model "
           f"(any factor in (1, {imaging.MAX_SCALE:g}]) either")
    raise FileNotFoundError(f"no exported x{label} model under {base}, and {why}: run "
                            f"`make export SCALE={label}` (after `make train`)")
