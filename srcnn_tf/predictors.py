"""Every model kind behind one call, and the one colour path.

A *predictor* maps the bicubic-upscaled Y, float32 (H, W, 1) in [0, 1], to the SR Y of the same
shape and range. Bicubic itself is the identity predictor; Keras models, SavedModels and TFLite
files are the others. Colour output is always SR on Y with the bicubic Cb/Cr (`merge_y`).
"""

from __future__ import annotations

import json
import os
from typing import Callable, Iterable

import numpy as np

from srcnn_tf import imaging, metrics

Predictor = Callable[[np.ndarray], np.ndarray]


def bicubic_predictor(x: np.ndarray) -> np.ndarray:
    return x


def keras_predictor(model, model_config, scale: float | None = None) -> Predictor:
    """A Keras SRCNN as a predictor (edge-replicated borders, clipped to [0, 1]); a scale_input
    model is told `scale` (None: blind)."""
    import tensorflow as tf

    from srcnn_tf.model import super_resolve

    told = None if scale is None else tf.constant(scale, tf.float32)

    @tf.function(reduce_retracing=True)
    def run(x):
        return super_resolve(model, model_config, x, told)

    return lambda x: run(tf.constant(x[None], tf.float32))[0].numpy()


class Judge:
    """A Keras model run on whole images for validation: (x (1, H, W, C) float32 tensor in
    [0, 1], scale tensor or None) -> (1, H, W, C) float32. With `float32_twin` (training in mixed
    precision), `refresh` copies the model's weights into a float32 twin that runs instead, so
    val_psnr and the best checkpoint measure what an export computes: bfloat16 inference moved
    held-out PSNR by up to 0.01 dB either way, as much as a long stage adds."""

    def __init__(self, model, model_config, float32_twin: bool) -> None:
        import tensorflow as tf

        from srcnn_tf.model import build_srcnn, super_resolve

        self.model = model
        self.twin = build_srcnn(model_config, dtype="float32") if float32_twin else None
        runs_on = model if self.twin is None else self.twin

        @tf.function(reduce_retracing=True)
        def predict(x, scale=None):
            return super_resolve(runs_on, model_config, x, scale)

        self._predict = predict

    def refresh(self) -> None:
        """Takes the model's current weights (a no-op without a twin)."""
        if self.twin is not None:
            self.twin.set_weights(self.model.get_weights())

    def __call__(self, x, scale=None):
        return self._predict(x, scale)


def saved_model_y_predictor(path: str, scale: float | None = None) -> Predictor:
    """A SavedModel's `super_resolve_y` signature as a predictor; with `scale`, a multi-scale
    model's `super_resolve_y_at` (told the factor)."""
    import tensorflow as tf

    signatures = tf.saved_model.load(path).signatures
    if scale is not None and "super_resolve_y_at" in signatures:
        fn, s = signatures["super_resolve_y_at"], tf.constant(scale, tf.float32)
        return lambda x: fn(y=tf.constant(x[None], tf.float32), scale=s)["y"][0].numpy()
    fn = signatures["super_resolve_y"]
    return lambda x: fn(y=tf.constant(x[None], tf.float32))["y"][0].numpy()


def _factor_input(details: list[dict]) -> dict | None:
    """The factor input of a multi-scale model's TFLite file (a tensor of rank < 4 beside the
    Y image), None for a single-scale file."""
    return next((d for d in details if len(d["shape"]) < 4), None)


def tflite_takes_scale(path: str) -> bool:
    """Whether a TFLite file has the factor input of a multi-scale model."""
    from ai_edge_litert.interpreter import Interpreter

    return _factor_input(Interpreter(model_path=path).get_input_details()) is not None


class TFLiteY:
    """LiteRT interpreter over a Y model, resized to each input; callable like a predictor.
    A multi-scale model's file has a second input, the factor: `scale` is fed to it."""

    def __init__(self, path: str, num_threads: int | None = None,
                 scale: float | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path, num_threads=num_threads or os.cpu_count())
        self._shape: tuple[int, ...] | None = None
        inputs = self.interpreter.get_input_details()
        self._y = next(d for d in inputs if len(d["shape"]) == 4)
        self._scale = _factor_input(inputs)
        if self._scale is not None and scale is None:
            raise ValueError(f"{path} takes the upscaling factor as an input: give the scale")
        self.scale = scale

    def __call__(self, x: np.ndarray) -> np.ndarray:
        it = self.interpreter
        batch = x[None].astype(np.float32)
        if self._shape != batch.shape:
            it.resize_tensor_input(self._y["index"], batch.shape, strict=False)
            it.allocate_tensors()
            self._shape = batch.shape
        it.set_tensor(self._y["index"], batch)
        if self._scale is not None:
            it.set_tensor(self._scale["index"],
                          np.full(self._scale["shape"], self.scale, np.float32))
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])[0]


def sc_predictor(models_dir: str, scale: int, learned_at: int | None = 2,
                 progress=None) -> tuple[Predictor, str]:
    """The sparse-coding baseline at `scale` with the newest dictionaries of
    `models_dir/sc_x{learned_at}` (None: learned at `scale` itself; 2: the authors' released
    setup, as the SRCNN papers ran it) -> (predictor, the folder it read).
    `progress(done, total)` is called per chunk of patches."""
    from srcnn_tf import sparse_coding

    dictionaries, path = sparse_coding.load_newest(models_dir, learned_at or scale)
    return sparse_coding.SparseCodingSR(dictionaries, scale, progress=progress), path


def _export_metadata(version: str) -> dict:
    """An exported version folder's metadata.json ({} for a SavedModel made elsewhere)."""
    path = os.path.join(version, "metadata.json")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def load_predictor(spec: str, num_threads: int | None = None) -> tuple[Predictor, str, dict]:
    """'bicubic', a training run dir, a SavedModel (version dir or its parent), or a .tflite
    file -> (predictor, method name, info such as the model's scale). For models that take
    the factor (multi-scale ones) info["at"](scale) is the predictor told that factor."""
    if spec == "bicubic":
        return bicubic_predictor, "bicubic", {}
    if spec.endswith(".tflite"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"{spec}: no such TFLite file")
        name = f"SRCNN tflite {os.path.basename(spec)}"
        # Inside an export (<version>/tflite/*.tflite) the version's metadata names the scale.
        meta = _export_metadata(os.path.dirname(os.path.dirname(os.path.abspath(spec))))
        known = {"scale": meta["scale"]} if "scale" in meta else {}
        if not tflite_takes_scale(spec):
            return TFLiteY(spec, num_threads), name, known

        def untold(x: np.ndarray) -> np.ndarray:  # such a file has no blind signature
            raise ValueError(f"{spec} takes the upscaling factor as an input: give the scale")

        return untold, name, {**known, "at": lambda s: TFLiteY(spec, num_threads, scale=s)}
    if os.path.isfile(os.path.join(spec, "config.json")):
        from srcnn_tf.runs import load_model

        model, cfg, scale = load_model(spec)
        name = f"SRCNN {cfg.preset} ({os.path.basename(os.path.normpath(spec))})"
        info: dict = {"scale": scale}
        if cfg.scale_input:
            info["at"] = lambda s: keras_predictor(model, cfg, s)
        return keras_predictor(model, cfg), name, info
    from srcnn_tf.runs import newest_version

    path = newest_version(spec)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        meta = _export_metadata(path)
        name = f"SRCNN {meta.get('preset', '')} (SavedModel {path})".replace("  ", " ")
        info = {"scale": meta.get("scale")}
        if isinstance(meta.get("scale"), list):
            info["at"] = lambda s: saved_model_y_predictor(path, s)
        return saved_model_y_predictor(path), name, info
    what = "not" if os.path.exists(spec) else "no such file or folder; give"
    raise FileNotFoundError(f"{spec}: {what} 'bicubic', a run directory (config.json), a "
                            f"SavedModel (a version or model folder) or a .tflite file")


# ----------------------------------------------------------------------------- the protocol


def test_pair(path: str, scale: float,
              max_pixels: int = imaging.MAX_PIXELS) -> tuple[np.ndarray, np.ndarray]:
    """HR file -> (HR Y uint8 (H, W, 1) modcropped, bicubic input float32 (H, W, 1)).

    Raises imaging.ImageError naming the file when it does not decode, declares more than
    `max_pixels` pixels, or leaves nothing to measure once imaging.shave(scale) pixels are
    shaved.
    """
    y = imaging.modcrop(imaging.to_y(imaging.load_image(path, max_pixels=max_pixels)), scale)
    shave = imaging.shave(scale)
    if min(y.shape[:2]) <= 2 * shave:
        raise imaging.ImageError(f"{path}: too small ({y.shape[1]}x{y.shape[0]} after cropping "
                                 f"to a multiple of {imaging.crop_multiple(scale)}) to measure "
                                 f"with {shave} pixels shaved")
    return y, imaging.degrade(y.astype(np.float64) / 255.0, scale).astype(np.float32)


def super_resolve_y(predictor: Predictor, inp: np.ndarray) -> np.ndarray:
    """The predictor's answer for a bicubic input, rounded to uint8 like the papers' outputs."""
    return imaging.to_uint8(np.asarray(predictor(inp)).reshape(inp.shape))


def mean_psnr(predictor: Predictor, pairs: Iterable[tuple[np.ndarray, np.ndarray]],
              scale: float) -> float:
    """Mean PSNR (uint8 Y, shave = imaging.shave(scale)) over (bicubic input, HR uint8) pairs."""
    pairs = list(pairs)
    return mean_output_psnr([np.asarray(predictor(inp)).reshape(inp.shape) for inp, _ in pairs],
                            [hr for _, hr in pairs], scale)


def mean_output_psnr(outputs: Iterable[np.ndarray], hrs: Iterable[np.ndarray],
                     scale: float) -> float:
    """Mean PSNR of float outputs in [0, 1] (rounded to uint8 like the papers' outputs)
    against their uint8 HR images, imaging.shave(scale) pixels shaved."""
    return float(np.mean([metrics.psnr(imaging.to_uint8(out), hr,
                                       crop_border=imaging.shave(scale))
                          for out, hr in zip(outputs, hrs)]))


def mean_psnr_by_scale(predictor_at: Callable[[float], Predictor],
                       images: Iterable) -> dict[float, float]:
    """{scale: mean_psnr at that scale} over held-out images (anything with .input, .hr and
    .scale, e.g. data.ValImage); `predictor_at(scale)` is the predictor for that factor."""
    images = list(images)
    return {s: mean_psnr(predictor_at(s), [(v.input, v.hr) for v in images if v.scale == s], s)
            for s in sorted({v.scale for v in images})}


def folder_pairs(folder: str, scale: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(bicubic input, HR Y) of every image of a test folder (errors name the bad file)."""
    return [test_pair(p, scale)[::-1] for p in imaging.list_images(folder)]


def merge_y(sr_y: np.ndarray, ycbcr: np.ndarray) -> np.ndarray:
    """The one colour path: SR Y (H, W, 1) float in [0, 1] with the bicubic YCbCr (H, W, 3, its
    Y replaced) or gray (H, W, 1, then the SR Y is the image) -> uint8 RGB or gray."""
    if ycbcr.shape[2] == 1:
        return imaging.to_uint8(sr_y)
    out = np.concatenate([np.asarray(sr_y, np.float64), ycbcr[..., 1:]], axis=2)
    return imaging.to_uint8(imaging.ycbcr2rgb(out))
