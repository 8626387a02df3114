"""Figures (matplotlib, PNG): training curves, first-layer filters, comparison crops, ablation."""

from __future__ import annotations

import json
import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from srcnn_tf import imaging, metrics, predictors  # noqa: E402


def plot_training(run_dir: str, out_path: str) -> str:
    """Loss and validation PSNR against steps and against wall-clock minutes, bicubic drawn;
    from the run's metrics.jsonl, which the TensorFlow and the JAX trainer both write."""
    from srcnn_tf.runs import RunDir

    run = RunDir(run_dir)
    events = run.metrics()
    if not any("loss" in e for e in events):
        raise ValueError(f"{run_dir}: no training events in metrics.jsonl (train first)")
    bicubic = run.config().get("val_bicubic_psnr")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for col, (xlabel, x) in enumerate((("step", "step"), ("wall-clock minutes", "minutes"))):
        loss = [(e[x], e["loss"]) for e in events if "loss" in e and e.get(x) is not None]
        axes[0, col].plot(*zip(*loss), lw=0.8)
        axes[0, col].set_yscale("log")
        axes[0, col].set_ylabel("training MSE")
        for label, points in validation_curves(events, x).items():
            axes[1, col].plot(*zip(*points), marker=".", label=label)
        if bicubic is not None:
            axes[1, col].axhline(bicubic, color="gray", ls="--", label="bicubic")
        axes[1, col].set_ylabel("validation PSNR (dB)")
        axes[1, col].legend(loc="lower right")
        for row in (0, 1):
            axes[row, col].set_xlabel(xlabel)
            axes[row, col].grid(alpha=0.3)
    fig.suptitle(f"training: {run.name}")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def validation_curves(events: Sequence[dict], x: str) -> dict[str, list[tuple[float, float]]]:
    """{label: [(x, PSNR)]} of the validation events: the model's, and with a weight average
    (--ema_decay) the last iterate's beside the average's."""
    curves = {}
    averaged = any(e.get("val_psnr_raw") is not None for e in events)
    for key, label in (("val_psnr", "SRCNN (weight average)" if averaged else "SRCNN"),
                       ("val_psnr_raw", "SRCNN (last iterate)")):
        points = [(e[x], e[key]) for e in events
                  if e.get(key) is not None and e.get(x) is not None]
        if points:
            curves[label] = points
    return curves


def plot_filters(run_dir: str, out_path: str) -> str:
    """The first-layer filters as a grid (the paper's Figure of learned filters)."""
    from srcnn_tf.model import conv_layers
    from srcnn_tf.runs import load_model

    model, _, _ = load_model(run_dir)
    kernel = conv_layers(model)[0].kernel.numpy()[:, :, 0, :]  # (f1, f1, n1)
    n = kernel.shape[-1]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < n:
            k = kernel[..., i]
            ax.imshow(k, cmap="gray", vmin=k.min(), vmax=k.max(), interpolation="nearest")
    fig.suptitle("first-layer filters")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def plot_comparison(predictor: predictors.Predictor, paths: Sequence[str], scale: int,
                    out_path: str, crop: int = 96) -> str:
    """HR / bicubic / SRCNN crops (centre of each image) with PSNR of the whole image in titles."""
    fig, axes = plt.subplots(len(paths), 3, figsize=(9, 3.1 * len(paths)), squeeze=False)
    for row, path in enumerate(paths):
        hr, inp = predictors.test_pair(path, scale)
        bic = imaging.to_uint8(inp)
        sr = imaging.to_uint8(np.asarray(predictor(inp)).reshape(inp.shape))
        h, w = hr.shape[:2]
        r, c = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        panels = [("HR", hr, None), ("bicubic", bic, metrics.psnr(bic, hr, crop_border=scale)),
                  ("SRCNN", sr, metrics.psnr(sr, hr, crop_border=scale))]
        for col, (title, img, p) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(img[r:r + crop, c:c + crop, 0], cmap="gray", vmin=0, vmax=255)
            name = os.path.splitext(os.path.basename(path))[0]
            ax.set_title(f"{name} {title}" + (f" {p:.2f} dB" if p is not None else ""), fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def plot_ablation(results_json: str, out_path: str) -> str:
    """Per training set, each arm's validation PSNR (its own records' held-out images) against
    training minutes; and every arm's PSNR on the common held-out images (from results.json)."""
    with open(results_json) as f:
        results = json.load(f)
    rows = results["runs"]
    datasets = list(dict.fromkeys(r["data"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets) + 1, figsize=(5 * (len(datasets) + 1), 4))
    for ax, dataset in zip(axes, datasets):
        for r in (r for r in rows if r["data"] == dataset):
            if r["curve"]:
                ax.plot(*zip(*r["curve"]), marker=".", label=r["architecture"])
        ax.set_title(f"trained on {dataset}")
        ax.set_xlabel("training minutes")
        ax.set_ylabel("validation PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    scored = [r for r in rows if r.get("heldout_psnr") is not None]
    ax = axes[-1]
    ax.barh(np.arange(len(scored)), [r["heldout_psnr"] for r in scored])
    ax.set_yticks(np.arange(len(scored)), [r["name"] for r in scored], fontsize=8)
    if scored:
        lo, hi = min(r["heldout_psnr"] for r in scored), max(r["heldout_psnr"] for r in scored)
        ax.set_xlim(lo - 0.2 - 0.1 * (hi - lo), hi + 0.1)
    ax.set_xlabel(f"PSNR on {results.get('heldout_images', '?')} held-out images (dB)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def plot_time_to_quality(curve: Sequence[dict], out_path: str, set_name: str, scale: int,
                         references: dict[str, float] | None = None) -> str:
    """Test-set PSNR of each kept checkpoint against training wall-clock minutes, with
    reference levels (e.g. bicubic, the paper) as dashed lines."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([c["minutes"] for c in curve], [c["psnr"] for c in curve], marker=".",
            label="SRCNN (this run)")
    for i, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, ls="--", color=f"C{i + 1}", label=f"{label} {value:.2f} dB")
    ax.set_xlabel("training wall-clock minutes")
    ax.set_ylabel(f"{set_name} x{scale} PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def plot_psnr_time(rows: Sequence[dict], out_path: str, set_name: str, scale: int) -> str:
    """PSNR against mean seconds per image (log x), one point per method, named in a legend
    (colour: the model, marker: the runtime)."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    markers = {"SavedModel": "o", "fp32": "s", "fp16": "D", "dynamic_int8": "v", "int8": "^"}
    family = [r["method"].rsplit(" TFLite", 1)[0].replace(" SavedModel", "") for r in rows]
    colours = {f: f"C{i}" for i, f in enumerate(dict.fromkeys(family))}
    for r, f in zip(rows, family):
        marker = next((m for k, m in markers.items() if r["method"].endswith(k)), "o")
        ax.scatter(r["seconds"], r["psnr"], s=40, marker=marker, label=r["method"],
                   color=colours[f])
    ax.set_xscale("log")
    ax.set_xlabel("seconds per image (this CPU, log scale)")
    ax.set_ylabel(f"PSNR (dB), {set_name} x{scale}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return out_path


def chain_gains(chain: Sequence[dict], default_batch: int = 128
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(patches trained so far, held-out gain in dB since the first validated stage, on an
    accelerator) per validated stage of an export's `training_chain` (metadata.json); stages
    without a `val_psnr` (validated on other images) count their patches only. Patches, not
    steps: an accelerator stage may use a larger batch. A stage that records no `batch_size`
    (exported before stages recorded it) counts `default_batch`, make train's default."""
    patches = np.cumsum([stage["steps"] * (stage.get("batch_size") or default_batch)
                         for stage in chain])
    kept = [(n, stage["val_psnr"], "device" in stage) for n, stage in zip(patches, chain)
            if stage.get("val_psnr") is not None]
    if len(kept) < 2:
        raise ValueError(f"a training chain needs 2 or more validated stages, got {len(kept)}")
    n, psnr, device = (np.array(column) for column in zip(*kept))
    return n.astype(float), psnr - psnr[0], device.astype(bool)


def plot_chains(chains: dict[str, Sequence[dict]], out_path: str) -> str:
    """Held-out PSNR gain of each stage of exported models' training chains against the patches
    trained so far (log2 x): what more training buys. Hollow markers: accelerator stages. The
    legend gives each model's least-squares gain per doubling of the patches."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (label, chain) in enumerate(chains.items()):
        try:
            patches, gain, device = chain_gains(chain)
        except ValueError as e:
            raise ValueError(f"{label}: {e}") from None
        slope = np.polyfit(np.log2(patches), gain, 1)[0]
        ax.plot(patches, gain, color=f"C{i}", label=f"{label}: {slope:+.3f} dB per doubling")
        ax.scatter(patches, gain, color=f"C{i}", zorder=3,
                   facecolors=[("none" if d else f"C{i}") for d in device])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training patches so far (log scale)")
    ax.set_ylabel("held-out PSNR gain since the first validated stage (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
