"""TFLite variants of an exported model (what phones run through LiteRT) and their report."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np
import tensorflow as tf

from srcnn_tf import predictors, records

VARIANTS = ("fp32", "fp16", "dynamic_int8", "int8")


def representative_inputs(record_dir: str, count: int = 200, seed: int = 0) -> list[np.ndarray]:
    """Training patches (1, P, P, 1) float32 for full-integer calibration, spread over the set."""
    manifest = records.load_manifest(record_dir)
    total = manifest["train"]["patches"]
    rng = np.random.default_rng(seed)
    wanted = set(rng.choice(total, size=min(count, total), replace=False).tolist())
    return [p["input"][None] for i, p in enumerate(records.read_patches(record_dir))
            if i in wanted]


def convert_tflite(saved_model_dir: str, variant: str,
                   representative: list[np.ndarray] | None = None) -> bytes:
    """TFLite flatbuffer of the `super_resolve_y` signature (dynamic height/width).

    fp32; fp16 (weights in float16); dynamic_int8 (int8 weights, float activations); int8
    (full-integer: int8 weights and activations calibrated on `representative`, float I/O).
    """
    # from_saved_model leaves this SavedModel's Keras 3 weights as resource variables
    # (VAR_HANDLE/READ_VARIABLE, no weights in the file): freeze the signature first.
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    loaded = tf.saved_model.load(saved_model_dir)
    frozen = convert_variables_to_constants_v2(loaded.signatures["super_resolve_y"])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen], loaded)
    if variant == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        if not representative:
            raise ValueError("full-integer int8 needs representative inputs")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x.astype(np.float32)] for x in representative)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif variant != "fp32":
        raise ValueError(f"unknown TFLite variant {variant!r}; one of {VARIANTS}")
    return conv.convert()


def export_tflite(saved_model_dir: str, record_dir: str | None, eval_folder: str | None,
                  scale: int, variants: tuple[str, ...] = VARIANTS,
                  latency_size: int = 256, rounds: int = 20) -> dict[str, Any]:
    """Writes `<saved_model_dir>/tflite/srcnn_x{S}_{variant}.tflite` and `report.md`.

    The report gives size, PSNR on `eval_folder` (e.g. Set5) against the SavedModel, and median
    latency on a latency_size^2 input with all CPU threads.
    """
    out_dir = os.path.join(saved_model_dir, "tflite")
    os.makedirs(out_dir, exist_ok=True)
    representative = representative_inputs(record_dir) if record_dir and "int8" in variants else None
    rows: dict[str, dict[str, Any]] = {}
    ref_psnr = None
    if eval_folder:
        pairs = predictors.folder_pairs(eval_folder, scale)
        ref_psnr = predictors.mean_psnr(predictors.saved_model_y_predictor(saved_model_dir),
                                        pairs, scale)
    x = np.random.default_rng(0).uniform(size=(latency_size, latency_size, 1)).astype(np.float32)
    for variant in variants:
        if variant == "int8" and not representative:
            raise ValueError("the int8 variant needs the training records (record_dir) for "
                             "calibration")
        path = os.path.join(out_dir, f"srcnn_x{scale}_{variant}.tflite")
        with open(path, "wb") as f:
            f.write(convert_tflite(saved_model_dir, variant, representative))
        runner = predictors.TFLiteY(path)
        runner(x)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            runner(x)
            times.append(time.perf_counter() - start)
        row: dict[str, Any] = {"file": os.path.basename(path), "bytes": os.path.getsize(path),
                               "latency_ms": 1000 * statistics.median(times)}
        if eval_folder:
            row["psnr"] = predictors.mean_psnr(runner, pairs, scale)
            row["psnr_loss"] = ref_psnr - row["psnr"]
        rows[variant] = row
    fp32_ms = rows.get("fp32", {}).get("latency_ms")
    label = "/".join(os.path.normpath(os.path.abspath(saved_model_dir)).split(os.sep)[-2:])
    lines = [f"# TFLite variants of {label}", "",
             f"Latency: median of {rounds} runs on a {latency_size}x{latency_size} Y input, "
             f"LiteRT with {os.cpu_count()} threads on this machine.", ""]
    if eval_folder:
        lines.append(f"PSNR: {os.path.basename(os.path.normpath(eval_folder))} x{scale}, paper "
                     f"protocol; SavedModel reference {ref_psnr:.3f} dB.")
        lines.append("")
    lines += ["| variant | file | size (KiB) | PSNR (dB) | loss vs SavedModel (dB) | "
              "latency (ms) | speed vs fp32 |", "|---|---|---|---|---|---|---|"]
    for variant, r in rows.items():
        speed = f"{fp32_ms / r['latency_ms']:.2f}x" if fp32_ms else ""
        psnr = f"{r['psnr']:.3f}" if "psnr" in r else ""
        loss = f"{r['psnr_loss']:+.3f}" if "psnr_loss" in r else ""
        lines.append(f"| {variant} | {r['file']} | {r['bytes'] / 1024:.1f} | {psnr} | {loss} | "
                     f"{r['latency_ms']:.2f} | {speed} |")
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return {"variants": rows, "savedmodel_psnr": ref_psnr, "dir": out_dir}
