"""What TF Serving loads: a versioned SavedModel with three signatures (TFLite: tflite.py).

SavedModel signatures (names are a contract with tools outside this project):
  serving_default   image uint8 [batch, H, W, 3] LR RGB -> image uint8 [batch, S*H, S*W, 3]
  super_resolve_y   y float32 [batch, H, W, 1] bicubic-upscaled Y in [0, 1] -> y, same shape
  upscale_encoded   image_bytes string [1] (PNG/JPEG/BMP/GIF) -> image_bytes string [1] (PNG)
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from typing import Any

import numpy as np
import tensorflow as tf

from srcnn_tf import runs, tf_imaging
from srcnn_tf.runs import model_versions
from srcnn_tf.model import ModelConfig, conv_layers, pad_for_valid

def _as_fed(x: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """`x` with its static shape hidden (a serialize/parse round trip), so that checks and
    reshapes of what was actually fed are not folded away by the graph optimiser: TF Serving
    does not enforce signature shapes."""
    return tf.io.parse_tensor(tf.io.serialize_tensor(x), dtype)


def _checked(x: tf.Tensor, dtype: tf.DType, channels: int | None, name: str, max_pixels: int,
             scale: int) -> tf.Tensor:
    """`x`, once its rank, channels and output size are checked (InvalidArgument with a clear
    message otherwise, before any computation)."""
    fed = _as_fed(x, dtype)
    rank_ok = tf.debugging.assert_equal(tf.rank(fed), 4, message=(
        f"{name} must have rank 4: [batch, height, width, {channels}]"))
    with tf.control_dependencies([rank_ok]):
        shape = tf.shape(fed)
    out_pixels = (tf.cast(shape[0], tf.int64) * tf.cast(shape[1], tf.int64)
                  * tf.cast(shape[2], tf.int64) * scale * scale)
    checks = [] if channels is None else [
        tf.debugging.assert_equal(shape[3], channels, message=(
            f"{name} must have {channels} channel(s) in the last dimension"))]
    checks += [
        tf.debugging.assert_less_equal(out_pixels, tf.constant(max_pixels, tf.int64), message=(
            f"output too large: batch * height * width after upscaling exceeds the cap of "
            f"{max_pixels} pixels set at export; send smaller images or tiles")),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(x)


def _header_int(data: tf.Tensor, offset: int, size: int, big_endian: bool) -> tf.Tensor:
    """An unsigned integer of `size` bytes at `offset` of a (zero-padded) string, as int64."""
    b = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, size), tf.uint8), tf.int64)
    weights = [256 ** (size - 1 - i) if big_endian else 256 ** i for i in range(size)]
    return tf.reduce_sum(b * tf.constant(weights, tf.int64))


def declared_size(data: tf.Tensor) -> tf.Tensor:
    """(height, width) int64 that an encoded PNG, JPEG, GIF or BMP declares in its header, read
    without decoding a pixel; (0, 0) for other formats (the decoder then rejects them)."""
    padded = tf.strings.join([data, tf.constant(b"\0" * 32)])
    magic = tf.strings.substr(padded, 0, 8)

    def bmp() -> tf.Tensor:  # height is signed: negative means top-down rows
        h = _header_int(padded, 22, 4, False)
        return tf.stack([tf.where(h >= 2**31, 2**32 - h, h), _header_int(padded, 18, 4, False)])

    return tf.case([
        (tf.equal(magic, b"\x89PNG\r\n\x1a\n"),
         lambda: tf.stack([_header_int(padded, 20, 4, True), _header_int(padded, 16, 4, True)])),
        (tf.io.is_jpeg(data), lambda: tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)),
        (tf.equal(tf.strings.substr(padded, 0, 4), b"GIF8"),
         lambda: tf.stack([_header_int(padded, 8, 2, False), _header_int(padded, 6, 2, False)])),
        (tf.equal(tf.strings.substr(padded, 0, 2), b"BM"), bmp),
    ], default=lambda: tf.zeros([2], tf.int64))


class SRModule(tf.Module):
    """The exported graph: SRCNN on Y with the whole colour pipeline around it.

    The weights are copied into plain `tf.Variable`s and the three convolutions are written
    with `tf.nn` ops: Keras 3 variables end up in a SavedModel in a form that TF Serving's
    session-based loader (and `saved_model_cli run`) cannot restore, plain variables restore
    through every loader.
    """

    def __init__(self, model: tf.keras.Model, config: ModelConfig, scale: int,
                 max_pixels: int) -> None:
        super().__init__()
        self.config = config
        self.scale = scale
        self.max_pixels = max_pixels
        self.kernels, self.biases = [], []
        for layer in conv_layers(model):
            kernel, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
            self.kernels.append(tf.Variable(kernel, trainable=False, name=f"{layer.name}/kernel"))
            self.biases.append(tf.Variable(bias, trainable=False, name=f"{layer.name}/bias"))

    def _sr_y(self, y: tf.Tensor) -> tf.Tensor:
        """Bicubic-upscaled Y (B, H, W, 1) float32 [0, 1] -> SR Y, same shape, clipped to
        [0, 1]; the same numbers as model.super_resolve."""
        b = self.config.border
        x = pad_for_valid(y, b)
        last = len(self.kernels) - 1
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, self.config.padding.upper()), bias)
            x = x if i == last else tf.nn.relu(x)
        if self.config.padding == "same" and b:
            x = x[:, b:-b, b:-b, :]
        return tf.clip_by_value(x, 0.0, 1.0)

    def _sr_rgb(self, rgb: tf.Tensor) -> tf.Tensor:
        """LR RGB float [0, 1] (B, H, W, 3) -> SR RGB uint8 (B, S*H, S*W, 3)."""
        ycc = tf_imaging.rgb_to_ycbcr(tf_imaging.upscale_bicubic(rgb, self.scale))
        ycc = tf.concat([self._sr_y(ycc[..., :1]), ycc[..., 1:]], axis=-1)
        return tf_imaging.to_uint8(tf_imaging.ycbcr_to_rgb(ycc))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="y")])
    def super_resolve_y(self, y: tf.Tensor) -> dict[str, tf.Tensor]:
        y = _checked(y, tf.float32, 1, "y", self.max_pixels, 1)
        return {"y": self._sr_y(y)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")])
    def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        image = _checked(image, tf.uint8, 3, "image", self.max_pixels, self.scale)
        return {"image": self._sr_rgb(tf.cast(image, tf.float32) / 255.0)}

    @tf.function(input_signature=[tf.TensorSpec([1], tf.string, name="image_bytes")])
    def upscale_encoded(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        """PNG/JPEG/GIF/BMP bytes -> PNG bytes. The size the header declares is checked against
        max_pixels before decoding. TensorFlow's decoders ignore EXIF orientation: send phone
        photos upright (the serving client does)."""
        # reshape: TF Serving feeds a scalar for {"b64": ...} and [1] for [{"b64": ...}].
        data = tf.reshape(_as_fed(image_bytes, tf.string), [-1])[0]
        hw = declared_size(data)
        fits = tf.debugging.assert_less_equal(
            hw[0] * hw[1] * self.scale * self.scale, tf.constant(self.max_pixels, tf.int64),
            message=(f"output too large: the image's declared height * width after upscaling "
                     f"exceeds the cap of {self.max_pixels} pixels set at export"))
        with tf.control_dependencies([fits]):
            data = tf.identity(data)
        img = tf.io.decode_image(data, expand_animations=False)  # uint8 (H, W, C)
        img = tf.ensure_shape(img, [None, None, None])[None]
        img = _checked(img, tf.uint8, None, "decoded image", self.max_pixels, self.scale)
        channels = tf.shape(img)[-1]

        def gray() -> tf.Tensor:  # a gray image is its own Y
            y = tf_imaging.upscale_bicubic(tf.cast(img[..., :1], tf.float32) / 255.0, self.scale)
            return tf.io.encode_png(tf_imaging.to_uint8(self._sr_y(y))[0])

        def colour() -> tf.Tensor:  # RGB; alpha dropped
            rgb = tf.cast(img[..., :3], tf.float32) / 255.0
            return tf.io.encode_png(self._sr_rgb(tf.ensure_shape(rgb, [1, None, None, 3]))[0])

        png = tf.cond(channels < 3, gray, colour)
        return {"image_bytes": tf.reshape(png, [1])}


def _next_version(root: str) -> int:
    return max(model_versions(root), default=0) + 1


def export_saved_model(model: tf.keras.Model, config: ModelConfig, scale: int, out_root: str,
                       metadata: dict[str, Any] | None = None, version: int | None = None,
                       max_pixels: int = 16_000_000, name: str | None = None) -> str:
    """Writes `out_root/<name>/{version}/` (name srcnn_x{scale} and the next integer version by
    default); returns the path."""
    base = os.path.join(out_root, name or f"srcnn_x{scale}")
    version = version or _next_version(base)
    path = os.path.join(base, str(version))
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists: versions are immutable, pick another")
    module = SRModule(model, config, scale, max_pixels)
    tmp = path + ".tmp"
    tf.saved_model.save(module, tmp, signatures={
        "serving_default": module.serve.get_concrete_function(),
        "super_resolve_y": module.super_resolve_y.get_concrete_function(),
        "upscale_encoded": module.upscale_encoded.get_concrete_function(),
    })
    meta = {"scale": scale, "preset": config.preset, "n1": config.n1, "n2": config.n2,
            "padding": config.padding, "border": config.border, "max_pixels": max_pixels,
            "version": version,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "tensorflow": tf.__version__, **(metadata or {})}
    with open(os.path.join(tmp, "metadata.json"), "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, path)  # TF Serving only ever sees complete versions
    return path


def export_run(run_dir: str, out_root: str, version: int | None = None,
               max_pixels: int = 16_000_000, name: str | None = None) -> str:
    """Exports the best checkpoint of a training run, with its provenance in metadata.json
    (run folder name, records sources and fingerprint, the chain of warm starts: no machine
    paths)."""
    model, config, scale = runs.load_model(run_dir, "best")
    info = runs.describe_init(run_dir)
    stage = info["chain"][-1]
    run = runs.RunDir(run_dir)
    cfg = run.config()
    meta: dict[str, Any] = {
        "run": run.name,
        "val_psnr": stage.get("val_psnr"), "best_step": stage["steps"],
        "training_minutes": stage["minutes"],
        "training_data": cfg.get("records") or {"patches": cfg.get("records_patches"),
                                                "fingerprint": cfg.get("records_fingerprint")},
        "training_chain": info["chain"],
        "total_training_minutes": sum(s.get("minutes") or 0.0 for s in info["chain"]),
    }
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
        "scale", "preset", "n1", "n2", "padding", "border", "max_pixels", "version", "created",
        "tensorflow", "source_run")}
    if "source_run" in old:  # older exports named an absolute run path: keep its folder name
        keep.setdefault("run", os.path.basename(os.path.normpath(old["source_run"])))
    keep["training_data"] = runs.portable(keep.get("training_data", {}))
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
    """step, minutes, loss, val_psnr of each validation event of the run (metrics.jsonl)."""
    with open(csv_path, "w") as f:
        f.write("step,minutes,loss,val_psnr\n")
        for e in runs.RunDir(run_dir).metrics():
            if "val_psnr" in e:
                f.write(f"{e['step']},{e['minutes']:.3f},{e['loss']:.6g},{e['val_psnr']:.4f}\n")


def default_models_dir() -> str:
    """`saved_models` in the working directory when there is one (a checkout), else the shipped
    models that `pip install` put under <prefix>/share/srcnn-tf/saved_models."""
    if os.path.isdir("saved_models"):
        return "saved_models"
    return os.path.join(sys.prefix, "share", "srcnn-tf", "saved_models")


def latest_export(root: str, scale: int) -> str:
    """The newest version folder of `root/srcnn_x{scale}`; a clear error when none exists."""
    base = os.path.join(root, f"srcnn_x{scale}")
    versions = model_versions(base)
    if not versions:
        raise FileNotFoundError(f"no exported x{scale} model under {base}: run "
                                f"`make export SCALE={scale}` (after `make train`)")
    return os.path.join(base, str(max(versions)))
