"""The paper's evaluation over any predictor: Y, modcrop, MATLAB bicubic, uint8, shave = scale
(fractional scales p/q: HR cropped to multiples of p, ceil(scale) pixels shaved);
tables (Markdown, JSON, per-image CSV), SR images, and the PSNR of a run's checkpoints.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from typing import Callable, Sequence

import numpy as np

from srcnn_tf import imaging, metrics, predictors, records
from srcnn_tf.predictors import Predictor

log = logging.getLogger("srcnn_tf.evaluate")

# Published numbers (Dong et al., TPAMI 2016 Table; ECCV 2014 for 9-1-5; sc: Yang et al.'s
# sparse coding as the TPAMI table gives it): (PSNR, SSIM or None).
PAPER = {
    ("Set5", 2, "bicubic"): (33.66, 0.9299), ("Set5", 3, "bicubic"): (30.39, 0.8682),
    ("Set5", 4, "bicubic"): (28.42, 0.8104), ("Set14", 2, "bicubic"): (30.23, 0.8687),
    ("Set14", 3, "bicubic"): (27.54, 0.7736), ("Set14", 4, "bicubic"): (26.00, 0.7019),
    ("Set5", 2, "SRCNN 9-5-5"): (36.66, 0.9542), ("Set5", 3, "SRCNN 9-5-5"): (32.75, 0.9090),
    ("Set5", 4, "SRCNN 9-5-5"): (30.49, 0.8628), ("Set14", 2, "SRCNN 9-5-5"): (32.45, 0.9067),
    ("Set14", 3, "SRCNN 9-5-5"): (29.30, 0.8215), ("Set14", 4, "SRCNN 9-5-5"): (27.50, 0.7513),
    ("Set5", 3, "SRCNN 9-1-5 (T91)"): (32.39, None),
    ("Set14", 3, "SRCNN 9-1-5 (T91)"): (29.00, None),
    ("Set5", 3, "sc"): (31.42, None), ("Set14", 3, "sc"): (28.31, None),
}


@dataclasses.dataclass
class Result:
    set: str
    scale: float  # int for integral scales
    method: str
    psnr: float
    ssim: float
    images: int
    per_image: list[dict] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)  # why each bad file was left out

    def row(self) -> dict:
        return {"set": self.set, "scale": self.scale, "method": self.method,
                "psnr": self.psnr, "ssim": self.ssim, "images": self.images,
                "skipped": self.skipped}


def evaluate_folder(predictor: Predictor, folder: str, scale: float, method: str,
                    set_name: str | None = None, save_dir: str | None = None,
                    max_pixels: int = imaging.MAX_PIXELS) -> Result:
    """Mean PSNR/SSIM over the images of `folder` at `scale`.

    Files that cannot be measured (unreadable, over `max_pixels`, too small) are left out with
    a warning naming each, and listed in `Result.skipped`. With `save_dir`, writes each colour
    SR image (SR on Y, Cb/Cr bicubic) as PNG.
    """
    paths = imaging.list_images(folder)
    if not paths:
        raise ValueError(f"{folder}: no images")
    set_name = set_name or os.path.basename(os.path.normpath(folder))
    per_image, skipped = [], []
    for path in paths:
        try:
            hr, inp = predictors.test_pair(path, scale, max_pixels)
        except imaging.ImageError as e:
            log.warning("skipped %s", e)
            skipped.append(str(e))
            continue
        sr = predictors.super_resolve_y(predictor, inp)
        per_image.append(_score(set_name, scale, method, os.path.relpath(path, folder), sr, hr))
        if save_dir:
            os.makedirs(save_dir, exist_ok=True)
            name = os.path.splitext(os.path.basename(path))[0]
            label = imaging.scale_label(scale)
            imaging.save_image(os.path.join(save_dir, f"{set_name}_x{label}_{name}.png"),
                               colour_sr(path, scale, sr))
    if not per_image:
        raise ValueError(f"{folder}: no image could be evaluated at "
                         f"x{imaging.scale_label(scale)}: " + "; ".join(skipped))
    return _result(set_name, scale, method, per_image, skipped)


def _score(set_name: str, scale: float, method: str, image: str, sr: np.ndarray,
           hr: np.ndarray) -> dict:
    """One image's row: PSNR / SSIM of uint8 Y `sr` against `hr`, `scale`'s shave."""
    shave = imaging.shave(scale)
    return {"set": set_name, "scale": scale, "method": method, "image": image,
            "psnr": metrics.psnr(sr, hr, crop_border=shave),
            "ssim": metrics.ssim(sr, hr, crop_border=shave)}


def _result(set_name: str, scale: float, method: str, rows: list[dict],
            skipped: Sequence[str] = ()) -> Result:
    """The mean of per-image rows (`_score`)."""
    return Result(set_name, scale, method, float(np.mean([r["psnr"] for r in rows])),
                  float(np.mean([r["ssim"] for r in rows])), len(rows), rows, list(skipped))


def is_records(folder: str) -> bool:
    """Whether `folder` is a records folder (make records' output: a manifest.json)."""
    return os.path.isfile(os.path.join(folder, records.MANIFEST))


def evaluate_records(methods: dict[str, Callable[[float], Predictor]], record_dir: str,
                     set_name: str | None = None) -> list[Result]:
    """Mean PSNR/SSIM over the held-out whole images of a records folder: for each factor they
    hold, one Result per method of `methods` ({name: the predictor for a factor}), the images
    read once. They are the images training validates on and selects by, so an export, a
    TFLite file or bicubic is measured as the run's `val_psnr` was."""
    set_name = set_name or held_out_name(record_dir)
    results = []
    for scale, images in sorted(held_out_images(record_dir).items()):
        for method, predictor_at in methods.items():
            results.append(_score_held_out(set_name, scale, method, predictor_at(scale), images))
    return results


def held_out_images(record_dir: str) -> dict[float, list[tuple[str, np.ndarray, np.ndarray]]]:
    """{scale: [(source id, bicubic input [H, W, 1] float32 in [0, 1], HR Y [H, W, 1] uint8)]}
    of a records folder's held-out whole images; ValueError naming `record_dir` when it has
    none or they are not Y."""
    held_out: dict[float, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for v in records.read_patches(record_dir, split="val"):
        if v["input"].shape[2] != 1:
            raise ValueError(f"{record_dir}: held-out images of {v['input'].shape[2]} channels; "
                             f"the evaluation measures Y (records of --channels=1)")
        held_out.setdefault(v["scale"], []).append(
            (v["source"], v["input"], imaging.to_uint8(v["label"])))
    if not held_out:
        raise ValueError(f"{record_dir}: the records hold no held-out images (make records "
                         f"with --val_fraction or --val_dir)")
    return held_out


def held_out_name(record_dir: str) -> str:
    """How tables name a records folder's held-out images: '<parent>/<folder> held-out'."""
    parts = os.path.normpath(os.path.abspath(record_dir)).split(os.sep)
    return f"{'/'.join(parts[-2:])} held-out"


def _score_held_out(set_name: str, scale: float, method: str, predictor: Predictor,
                    images: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> Result:
    return _result(set_name, scale, method, [
        _score(set_name, scale, method, source, predictors.super_resolve_y(predictor, inp), hr)
        for source, inp, hr in images])


def colour_sr(path: str, scale: float, sr_y: np.ndarray) -> np.ndarray:
    """Colour output for an evaluated image: SR Y (uint8) with the bicubic Cb/Cr of the same LR."""
    img = imaging.modcrop(imaging.load_image(path), scale)
    ycc = img.astype(np.float64) / 255.0
    if img.shape[2] == 3:
        ycc = imaging.rgb2ycbcr(ycc)
        ycc = np.concatenate([ycc[..., :1], imaging.degrade(ycc[..., 1:], scale)], axis=2)
    return predictors.merge_y(sr_y.astype(np.float64) / 255.0, ycc)


def write_outputs(results: Sequence[Result], json_path: str | None, csv_path: str | None,
                  md_path: str | None, paper: bool = False) -> str:
    """Writes the JSON summary, the per-image CSV and a Markdown table; returns the table."""
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"results": [r.row() for r in results]}, f, indent=1)
    if csv_path:
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, ["set", "scale", "method", "image", "psnr", "ssim"])
            w.writeheader()
            for r in results:
                w.writerows(r.per_image)
    table = markdown_table(results, paper)
    if md_path:
        with open(md_path, "w") as f:
            f.write(table)
    return table


def markdown_table(results: Sequence[Result], paper: bool = False) -> str:
    """Rows: set (in the order evaluated) x method; columns: scales; cells 'PSNR / SSIM'. With
    `paper`, adds the published rows for the sets and scales evaluated."""
    scales = sorted({r.scale for r in results})
    order = {name: i for i, name in enumerate(dict.fromkeys(r.set for r in results))}
    cells: dict[tuple[str, str], dict[int, str]] = {}
    for r in results:
        cells.setdefault((r.set, r.method), {})[r.scale] = f"{r.psnr:.2f} / {r.ssim:.4f}"
    if paper:
        for (set_name, scale, method), (p, s) in PAPER.items():
            if scale in scales and any(r.set == set_name for r in results):
                cell = f"{p:.2f}" + (f" / {s:.4f}" if s is not None else "")
                cells.setdefault((set_name, f"paper: {method}"), {})[scale] = cell
    lines = ["| set | method | " + " | ".join(f"x{s}" for s in scales) + " |",
             "|---|---|" + "---|" * len(scales)]
    for (set_name, method) in sorted(cells, key=lambda k: (order[k[0]], k[1].startswith("paper"),
                                                           k[1])):
        row = cells[(set_name, method)]
        lines.append(f"| {set_name} | {method} | " +
                     " | ".join(row.get(s, "") for s in scales) + " |")
    return "\n".join(lines) + "\n"


def scorer(folder: str, scale: float) -> Callable[[Predictor, str], Result]:
    """(predictor, method) -> its Result on `folder` at `scale`: HR images (evaluate_folder) or a
    records folder's held-out images (read once, here; ValueError naming `folder` when they
    are not for `scale`)."""
    if not is_records(folder):
        return lambda predictor, method: evaluate_folder(predictor, folder, scale, method)
    held_out = held_out_images(folder)
    if scale not in held_out:
        raise ValueError(f"{folder}: its held-out images are for x"
                         f"{imaging.scale_name(sorted(held_out))}, not x{scale}")
    name = held_out_name(folder)
    return lambda predictor, method: _score_held_out(name, scale, method, predictor,
                                                     held_out[scale])


def checkpoint_curve(run_dir: str, folder: str, scale: int) -> list[dict]:
    """PSNR/SSIM (float32 inference) of every checkpoint kept in run_dir/checkpoints (the
    weights it serves: the weight average of a run that kept one), with its step and wall
    time, on `folder`: HR images (a test set: reporting only) or a records folder (its
    held-out images at `scale`: the ones training selects on, so a step picked here is picked
    as training picks best/; `make export ... --step`).

    Outside training: this is how the time-to-quality curve is measured.
    """
    import tensorflow as tf

    from srcnn_tf.runs import RunDir, load_model, restore_served

    model, model_cfg, _ = load_model(run_dir, "latest")
    predictor = predictors.keras_predictor(model, model_cfg)
    score = scorer(folder, scale)
    out = []
    for path in RunDir(run_dir).kept_checkpoints():
        elapsed = tf.Variable(0.0, dtype=tf.float64)
        step = tf.Variable(0, dtype=tf.int64)
        tf.train.Checkpoint(elapsed_seconds=elapsed, step=step).read(path).expect_partial()
        restore_served(model, path)
        r = score(predictor, "srcnn")
        out.append({"step": int(step.numpy()), "minutes": float(elapsed.numpy()) / 60,
                    "psnr": r.psnr, "ssim": r.ssim})
    return out


def psnr_against_time(methods: dict[str, Predictor], folder: str, scale: int,
                      on_image=None, setup_per_shape: Sequence[str] = ()) -> list[dict]:
    """Each method's mean PSNR on `folder` and mean seconds per image from the LR image: the
    bicubic upscale (numpy, timed once per image) plus the method's own call, wall clock on
    this machine. All methods are timed in one run, in turn on each image, after one untimed
    call each on a small image (tracing). Methods in `setup_per_shape` (TensorFlow's and
    LiteRT's kernels are prepared for each new input size) get one untimed call on each image
    first, so the time is that of an image of a size already seen. `on_image(path)` is called
    as each image starts. Rows: {"method", "psnr", "seconds", "images"}.
    """
    warm = np.full((12 * scale, 12 * scale, 1), 0.5, np.float32)
    for predictor in methods.values():
        predictor(warm)
    psnr: dict[str, list[float]] = {m: [] for m in methods}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    for path in imaging.list_images(folder):
        if on_image:
            on_image(path)
        hr, inp = predictors.test_pair(path, scale)
        lr = imaging.imresize(hr.astype(np.float64) / 255.0, scale=1.0 / scale)
        start = time.perf_counter()
        imaging.imresize(lr, output_shape=hr.shape[:2])
        upscale = time.perf_counter() - start
        for method, predictor in methods.items():
            if method in setup_per_shape:
                predictor(inp)
            start = time.perf_counter()
            sr = predictors.super_resolve_y(predictor, inp)
            seconds[method].append(upscale + time.perf_counter() - start)
            psnr[method].append(metrics.psnr(sr, hr, crop_border=scale))
    return [{"method": m, "psnr": float(np.mean(psnr[m])),
             "seconds": float(np.mean(seconds[m])), "images": len(psnr[m])} for m in methods]
