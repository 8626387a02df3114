"""Super-resolves one image: `make upscale IMAGE=in.png SCALE=3 [OUT=out.png MODEL=dir]`,
`SCALE=1.5` or `SIZE=1920x1080` (any factor in (1, 4] through the multi-scale model).

python -m pipelines.upscale --image=in.png --scale=3 --out=in_x3.png
python -m pipelines.upscale --image=in.png --size=1920x1080
"""

from __future__ import annotations

import math
import os
import time

from absl import app, flags, logging

from .common import fail
from srcnn_tf import export, imaging, runs
from srcnn_tf import upscale as upscale_lib

_IMAGE = flags.DEFINE_string("image", None, "Input image (gray, RGB, RGBA, 16-bit).",
                             required=True)
_SCALE = flags.DEFINE_float(
    "scale", None, "Upscaling factor (default 3, or --model's own): the newest "
    "srcnn_x<scale>, else srcnn_multiscale for any factor in (1, 4] (output ceil(scale * side)).")
_SIZE = flags.DEFINE_string(
    "size", None, "Output size WIDTHxHEIGHT instead of --scale: the factor comes from the larger "
    "side, the aspect is kept (the other side is ceil(factor * side)).")
_OUT = flags.DEFINE_string("out", None, "Output PNG (default: <image>_x<scale>.png).")
_MODEL = flags.DEFINE_string("model", None, "SavedModel version folder, or a model folder (its "
                             "newest version); default: the newest of --scale.")
_MODELS = flags.DEFINE_string("models_dir", None, "Export root searched for the newest model of "
                              "--scale (default: ./saved_models, else the installed models).")
_TILE = flags.DEFINE_integer("tile", 512, "Tile size on the output grid (memory bound).",
                             lower_bound=16)

_MAX_PIXELS = flags.DEFINE_integer(
    "max_pixels", imaging.MAX_PIXELS, "Refuse input images that declare more pixels (width x "
    "height); checked before decoding. The output is built tile by tile.", lower_bound=1)


@flags.validator("image")
def _check_image(path: str | None) -> bool:
    if path is not None and not os.path.isfile(path):
        raise flags.ValidationError(f"--image: {path} is a folder: give one image file"
                                    if os.path.isdir(path) else f"--image: no file {path}")
    return True


flags.register_validator("model", lambda p: p is None or os.path.isdir(p),
                         message="--model: no such folder")


@flags.validator("scale")
def _check_scale(value: float | None) -> bool:
    if value is not None and not (math.isfinite(value) and value > 1):
        raise flags.ValidationError(f"--scale: {value:g} is not a factor > 1 (served: (1, 4])")
    return True


def parse_size(value: str) -> tuple[int, int]:
    """'1920x1080' -> (1920, 1080); flags.ValidationError naming the value otherwise."""
    parts = value.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise flags.ValidationError(f"--size: {value!r} is not WIDTHxHEIGHT (e.g. 1920x1080)")
    return int(parts[0]), int(parts[1])


@flags.multi_flags_validator(["scale", "size"], message="give --scale or --size, not both")
def _check_scale_or_size(f: dict) -> bool:
    if f["size"] is not None:
        parse_size(f["size"])
    return f["scale"] is None or f["size"] is None


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    size = parse_size(_SIZE.value) if _SIZE.value else None
    scale = _SCALE.value
    if scale is None and size is None and not _MODEL.value:
        scale = 3.0  # with --model alone: the model's own factor
    try:
        models = _MODELS.value or export.default_models_dir()
        if _MODEL.value:
            model_dir = runs.resolve_export(_MODEL.value, "--model")
        else:
            model_dir = (export.latest_multiscale(models) if size
                         else export.latest_export(models, scale))
        if size:
            suffix = f"{size[0]}x{size[1]}"
        else:
            own = runs.read_json(os.path.join(model_dir, "metadata.json"))["scale"]
            suffix = f"x{imaging.scale_name(own if scale is None else scale)}"
        out = _OUT.value or f"{os.path.splitext(_IMAGE.value)[0]}_{suffix}.png"
        start = time.perf_counter()
        h, w = upscale_lib.upscale_file(_IMAGE.value, out, model_dir, _TILE.value,
                                        _MAX_PIXELS.value, None if size else scale, size)
    except (OSError, ValueError) as e:  # missing model, unwritable --out, bad image
        fail(e)
    logging.info("%s -> %s (%dx%d) with %s in %.1f s", _IMAGE.value, out, w, h, model_dir,
                 time.perf_counter() - start)


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
