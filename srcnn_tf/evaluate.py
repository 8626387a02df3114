"""The paper's evaluation: Y, modcrop, MATLAB bicubic, uint8, shave = scale; tables and files.

One code path for every model kind: a *predictor* maps the bicubic-upscaled Y (float32
(H, W, 1) in [0, 1]) to the SR Y of the same shape. Bicubic itself is the identity predictor.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
from typing import Callable, Sequence

import numpy as np

from srcnn_tf import imaging, metrics

log = logging.getLogger("srcnn_tf.evaluate")

Predictor = Callable[[np.ndarray], np.ndarray]

# Published numbers (Dong et al., TPAMI 2016 Table; ECCV 2014 for 9-1-5): (PSNR, SSIM or None).
PAPER = {
    ("Set5", 2, "bicubic"): (33.66, 0.9299), ("Set5", 3, "bicubic"): (30.39, 0.8682),
    ("Set5", 4, "bicubic"): (28.42, 0.8104), ("Set14", 2, "bicubic"): (30.23, 0.8687),
    ("Set14", 3, "bicubic"): (27.54, 0.7736), ("Set14", 4, "bicubic"): (26.00, 0.7019),
    ("Set5", 2, "SRCNN 9-5-5"): (36.66, 0.9542), ("Set5", 3, "SRCNN 9-5-5"): (32.75, 0.9090),
    ("Set5", 4, "SRCNN 9-5-5"): (30.49, 0.8628), ("Set14", 2, "SRCNN 9-5-5"): (32.45, 0.9067),
    ("Set14", 3, "SRCNN 9-5-5"): (29.30, 0.8215), ("Set14", 4, "SRCNN 9-5-5"): (27.50, 0.7513),
    ("Set5", 3, "SRCNN 9-1-5 (T91)"): (32.39, None), ("Set14", 3, "SRCNN 9-1-5 (T91)"): (29.00, None),
}


@dataclasses.dataclass
class Result:
    set: str
    scale: int
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


def prepare(path: str, scale: int,
            max_pixels: int = imaging.MAX_PIXELS) -> tuple[np.ndarray, np.ndarray]:
    """HR file -> (HR Y uint8 (H, W, 1) modcropped, bicubic input float32 (H, W, 1)).

    Raises imaging.ImageError naming the file when it does not decode, declares more than
    `max_pixels` pixels, or leaves nothing to measure once `scale` pixels are shaved.
    """
    y = imaging.modcrop(imaging.to_y(imaging.load_image(path, max_pixels=max_pixels)), scale)
    if min(y.shape[:2]) <= 2 * scale:
        raise imaging.ImageError(f"{path}: too small ({y.shape[1]}x{y.shape[0]} after cropping "
                                 f"to a multiple of {scale}) to measure with {scale} pixels "
                                 f"shaved")
    return y, imaging.degrade(y.astype(np.float64) / 255.0, scale).astype(np.float32)


def bicubic_predictor(x: np.ndarray) -> np.ndarray:
    return x


def evaluate_folder(predictor: Predictor, folder: str, scale: int, method: str,
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
            hr, inp = prepare(path, scale, max_pixels)
        except imaging.ImageError as e:
            log.warning("skipped %s", e)
            skipped.append(str(e))
            continue
        sr = imaging.to_uint8(np.asarray(predictor(inp)).reshape(inp.shape))
        per_image.append({
            "set": set_name, "scale": scale, "method": method,
            "image": os.path.relpath(path, folder),
            "psnr": metrics.psnr(sr, hr, crop_border=scale),
            "ssim": metrics.ssim(sr, hr, crop_border=scale),
        })
        if save_dir:
            os.makedirs(save_dir, exist_ok=True)
            name = os.path.splitext(os.path.basename(path))[0]
            imaging.save_image(os.path.join(save_dir, f"{set_name}_x{scale}_{name}.png"),
                               colour_sr(path, scale, sr))
    if not per_image:
        raise ValueError(f"{folder}: no image could be evaluated at x{scale}: " +
                         "; ".join(skipped))
    return Result(set_name, scale, method, float(np.mean([r["psnr"] for r in per_image])),
                  float(np.mean([r["ssim"] for r in per_image])), len(per_image), per_image,
                  skipped)


def colour_sr(path: str, scale: int, sr_y: np.ndarray) -> np.ndarray:
    """Colour output for an evaluated image: SR Y with the bicubic Cb/Cr of the same LR."""
    img = imaging.modcrop(imaging.load_image(path), scale)
    if img.shape[2] == 1:
        return sr_y
    ycc = imaging.rgb2ycbcr(img.astype(np.float64) / 255.0)
    up = imaging.degrade(ycc[..., 1:], scale)
    out = np.concatenate([sr_y.astype(np.float64) / 255.0, up], axis=2)
    return imaging.to_uint8(imaging.ycbcr2rgb(out))


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
    """Rows: set x method; columns: scales; cells 'PSNR / SSIM'. With `paper`, adds the
    published rows for the sets and scales evaluated."""
    scales = sorted({r.scale for r in results})
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
    for (set_name, method) in sorted(cells, key=lambda k: (k[0], k[1].startswith("paper"), k[1])):
        row = cells[(set_name, method)]
        lines.append(f"| {set_name} | {method} | " +
                     " | ".join(row.get(s, "") for s in scales) + " |")
    return "\n".join(lines) + "\n"


def keras_predictor(model, model_config) -> Predictor:
    """Predictor over a Keras SRCNN (edge-padded for 'valid' models, clipped to [0, 1])."""
    import tensorflow as tf

    from srcnn_tf.model import super_resolve

    @tf.function(reduce_retracing=True)
    def run(x):
        return super_resolve(model, model_config, x)

    return lambda x: run(tf.constant(x[None]))[0].numpy()


def checkpoint_curve(run_dir: str, folder: str, scale: int) -> list[dict]:
    """PSNR on `folder` of every checkpoint kept in run_dir/checkpoints, with its wall time.

    Outside training: this is how the time-to-quality curve is measured.
    """
    import tensorflow as tf

    from srcnn_tf.train import load_model

    model, model_cfg, _ = load_model(run_dir, "latest")
    predictor = keras_predictor(model, model_cfg)
    state = tf.train.get_checkpoint_state(os.path.join(run_dir, "checkpoints"))
    out = []
    for path in state.all_model_checkpoint_paths:
        elapsed = tf.Variable(0.0, dtype=tf.float64)
        step = tf.Variable(0, dtype=tf.int64)
        tf.train.Checkpoint(model=model, elapsed_seconds=elapsed, step=step).restore(
            path).expect_partial()
        r = evaluate_folder(predictor, folder, scale, "srcnn")
        out.append({"step": int(step.numpy()), "minutes": float(elapsed.numpy()) / 60,
                    "psnr": r.psnr, "ssim": r.ssim})
    return out


def load_predictor(spec: str, num_threads: int | None = None) -> tuple[Predictor, str, dict]:
    """'bicubic', a training run dir, a SavedModel (version dir or its parent), or a .tflite
    file -> (predictor, method name, info such as the model's scale)."""
    if spec == "bicubic":
        return bicubic_predictor, "bicubic", {}
    if spec.endswith(".tflite"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"{spec}: no such TFLite file")
        from srcnn_tf.export import TFLiteY

        return TFLiteY(spec, num_threads), f"SRCNN tflite {os.path.basename(spec)}", {}
    if os.path.isfile(os.path.join(spec, "config.json")):
        from srcnn_tf.train import load_model

        model, cfg, scale = load_model(spec)
        name = f"SRCNN {cfg.preset} ({os.path.basename(os.path.normpath(spec))})"
        return keras_predictor(model, cfg), name, {"scale": scale}
    path = spec
    if not os.path.isfile(os.path.join(path, "saved_model.pb")) and os.path.isdir(path):
        from srcnn_tf.export import model_versions

        versions = model_versions(path)
        if versions:
            path = os.path.join(path, str(max(versions)))
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        from srcnn_tf.export import saved_model_y_predictor

        meta_path = os.path.join(path, "metadata.json")
        meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
        name = f"SRCNN {meta.get('preset', '')} (SavedModel {path})".replace("  ", " ")
        return saved_model_y_predictor(path), name, {"scale": meta.get("scale")}
    raise FileNotFoundError(f"{spec}: not 'bicubic', a run directory (config.json), a SavedModel "
                            f"or a .tflite file")
