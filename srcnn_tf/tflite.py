"""TFLite variants of an exported model (what phones run through LiteRT) and their report."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from srcnn_tf import imaging, int8, predictors, records, runs
from srcnn_tf.model import with_scale

VARIANTS = ("fp32", "fp16", "dynamic_int8", "int8")
FINETUNE_STEPS = 1500  # int8 distillation: one epoch of the 291 + General100 records


def representative_inputs(record_dir: str, count: int = 200, seed: int = 0,
                          scale_input: bool = False) -> list[np.ndarray]:
    """Training patches (1, P, P, 1) float32 for full-integer calibration, spread over the set;
    with `scale_input`, (1, P, P, 3) with each patch's scale planes (model.with_scale), what a
    scale_input Keras model reads."""
    manifest = records.load_manifest(record_dir)
    total = manifest["train"]["patches"]
    rng = np.random.default_rng(seed)
    wanted = set(rng.choice(total, size=min(count, total), replace=False).tolist())
    out = []
    for i, p in enumerate(records.read_patches(record_dir)):
        if i in wanted:
            x = p["input"][None]
            out.append(with_scale(x, p["scale"]).numpy() if scale_input else x)
    return out


def _takes_scale(saved_model_dir: str) -> bool:
    """Whether the export is a scale_input model (its metadata says so)."""
    meta_path = os.path.join(saved_model_dir, runs.METADATA)
    return os.path.exists(meta_path) and runs.read_json(meta_path).get("scale_input", False)


def convert_tflite(saved_model_dir: str, variant: str,
                   representative: list[np.ndarray] | None = None, record_dir: str | None = None,
                   finetune_steps: int = 0) -> bytes:
    """TFLite flatbuffer of the `super_resolve_y` signature (dynamic height/width); for a
    scale_input model, of `super_resolve_y_at` (inputs y and scale: the factor is a bias).

    fp32; fp16 (weights in float16); dynamic_int8 (int8 weights, float activations); int8
    (full-integer: int8 weights and activations, float I/O, prepared by `int8.prepare` from the
    `representative` patches, with `finetune_steps` of distillation on the patches of
    `record_dir`; a scale_input model's file reads the factor as an input plane, so its first
    layer has no factor-dependent bias; "int8_as_is": the converter's own calibration of the
    signature on `representative`).
    """
    # from_saved_model would leave the weights as resource variables (VAR_HANDLE/READ_VARIABLE,
    # no weights in the file): freeze the signature first.
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    if variant == "int8" and representative:
        model, config, _ = runs.load_export(saved_model_dir)
        return int8.convert(int8.prepare(model, config, representative, record_dir,
                                         finetune_steps))
    loaded = tf.saved_model.load(saved_model_dir)
    told = _takes_scale(saved_model_dir) and "super_resolve_y_at" in loaded.signatures
    frozen = convert_variables_to_constants_v2(
        loaded.signatures["super_resolve_y_at" if told else "super_resolve_y"])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen], loaded)
    if told and representative:  # (1, P, P, 3) planes -> the inputs (y, scale), in order
        representative = [[x[..., :1], np.float32(x[0, 0, 0, 2])] for x in representative]
    else:
        representative = [[x] for x in representative] if representative else representative
    if variant == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant in ("int8", "int8_as_is"):
        if not representative:
            raise ValueError("full-integer int8 needs representative inputs")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([np.asarray(v, np.float32) for v in x]
                                               for x in representative)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif variant != "fp32":
        raise ValueError(f"unknown TFLite variant {variant!r}; one of {VARIANTS}")
    return conv.convert()


def export_tflite(saved_model_dir: str, record_dir: str | None,
                  eval_folders: str | Sequence[str] | None, scale: float | Sequence[float],
                  variants: tuple[str, ...] = VARIANTS, latency_size: int = 256,
                  rounds: int = 20, finetune_steps: int = FINETUNE_STEPS) -> dict[str, Any]:
    """Writes `<saved_model_dir>/tflite/srcnn_x{S}_{variant}.tflite` (srcnn_multiscale_...
    for several scales) and `report.md`.

    The report gives each variant's size, PSNR on every folder of `eval_folders` (e.g. Set5,
    Set14) at each scale and its loss against the SavedModel, and the median latency on a
    latency_size^2 input with all CPU threads, the variants timed in alternation (round r of
    each in turn).
    """
    scales = imaging.scale_list(scale)
    multi = len(scales) > 1
    prefix = "srcnn_multiscale" if multi else f"srcnn_x{imaging.scale_label(scales[0])}"
    if isinstance(eval_folders, str):
        eval_folders = [eval_folders]
    out_dir = os.path.join(saved_model_dir, "tflite")
    os.makedirs(out_dir, exist_ok=True)
    if "int8" in variants and not record_dir:
        raise ValueError("the int8 variant needs the training records (record_dir) for "
                         "calibration")
    told = _takes_scale(saved_model_dir)
    representative = representative_inputs(record_dir, scale_input=told) \
        if "int8" in variants else None
    sets = {}  # name -> (scale, pairs)
    for folder in eval_folders or []:
        name = os.path.basename(os.path.normpath(folder))
        for s in scales:
            key = f"{name} x{imaging.scale_label(s)}" if multi else name
            sets[key] = (s, predictors.folder_pairs(folder, s))
    ref = {name: predictors.mean_psnr(predictors.saved_model_y_predictor(
        saved_model_dir, s if told else None), pairs, s) for name, (s, pairs) in sets.items()}
    rows, runners = {}, {}
    for variant in variants:
        path = os.path.join(out_dir, f"{prefix}_{variant}.tflite")
        with open(path, "wb") as f:
            f.write(convert_tflite(saved_model_dir, variant, representative, record_dir,
                                   finetune_steps))
        runners[variant] = predictors.TFLiteY(path, scale=scales[0])
        rows[variant] = {"file": os.path.basename(path), "bytes": os.path.getsize(path),
                         "psnr": {n: predictors.mean_psnr(
                             predictors.TFLiteY(path, scale=s) if told else runners[variant],
                             pairs, s) for n, (s, pairs) in sets.items()}}
        rows[variant]["psnr_loss"] = {n: ref[n] - v for n, v in rows[variant]["psnr"].items()}
    for variant, ms in _alternated_latency(runners, latency_size, rounds).items():
        rows[variant]["latency_ms"] = ms
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(_report(runs.export_label(saved_model_dir), rows, ref, scales, latency_size,
                        rounds))
    return {"variants": rows, "savedmodel_psnr": ref, "dir": out_dir}


def _alternated_latency(runners: dict[str, Any], size: int, rounds: int) -> dict[str, float]:
    """Median milliseconds per variant; each round times every variant once, in turn."""
    x = np.random.default_rng(0).uniform(size=(size, size, 1)).astype(np.float32)
    times: dict[str, list[float]] = {v: [] for v in runners}
    for runner in runners.values():
        runner(x)  # allocation and first-run costs are not latency
    for _ in range(rounds):
        for variant, runner in runners.items():
            start = time.perf_counter()
            runner(x)
            times[variant].append(time.perf_counter() - start)
    return {v: 1000 * statistics.median(t) for v, t in times.items()}


def _report(label: str, rows: dict[str, dict], ref: dict[str, float],
            scales: tuple[float, ...], size: int, rounds: int) -> str:
    fp32_ms = rows.get("fp32", {}).get("latency_ms")
    lines = [f"# TFLite variants of {label}", "",
             f"Latency: median of {rounds} alternated runs on a {size}x{size} Y input, LiteRT "
             f"with {os.cpu_count()} threads on this machine.", ""]
    if ref:
        lines += ["PSNR: x%s, paper protocol; SavedModel reference %s." % (
            imaging.scale_name(scales), ", ".join(f"{n} {v:.3f} dB" for n, v in ref.items())),
            ""]
    head = "".join(f" {n} PSNR (dB) | {n} loss (dB) |" for n in ref)
    lines += [f"| variant | file | size (KiB) |{head} latency (ms) | speed vs fp32 |",
              "|---|---|---|" + "---|---|" * len(ref) + "---|---|"]
    for variant, r in rows.items():
        speed = f"{fp32_ms / r['latency_ms']:.2f}x" if fp32_ms else ""
        cells = "".join(f" {r['psnr'][n]:.3f} | {r['psnr_loss'][n]:+.3f} |" for n in ref)
        lines.append(f"| {variant} | {r['file']} | {r['bytes'] / 1024:.1f} |{cells} "
                     f"{r['latency_ms']:.2f} | {speed} |")
    return "\n".join(lines) + "\n"
