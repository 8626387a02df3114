"""Super-resolves one image: `make upscale IMAGE=in.png SCALE=3 [OUT=out.png MODEL=dir]`.

python -m pipelines.upscale --image=in.png --scale=3 --out=in_x3.png
"""

from __future__ import annotations

import os
import time

from absl import app, flags, logging

from .common import fail
from srcnn_tf import export, imaging
from srcnn_tf import upscale as upscale_lib

_IMAGE = flags.DEFINE_string("image", None, "Input image (gray, RGB, RGBA, 16-bit).",
                             required=True)
_SCALE = flags.DEFINE_integer("scale", 3, "Upscaling factor (picks the newest model of it).",
                              lower_bound=2)
_OUT = flags.DEFINE_string("out", None, "Output PNG (default: <image>_x<scale>.png).")
_MODEL = flags.DEFINE_string("model", None, "SavedModel version folder (default: newest).")
_MODELS = flags.DEFINE_string("models_dir", None, "Export root searched for the newest model of "
                              "--scale (default: ./saved_models, else the installed models).")
_TILE = flags.DEFINE_integer("tile", 512, "Tile size on the output grid (memory bound).",
                             lower_bound=16)

_MAX_PIXELS = flags.DEFINE_integer(
    "max_pixels", imaging.MAX_PIXELS, "Refuse input images that declare more pixels (width x "
    "height); checked before decoding. The output is built tile by tile.", lower_bound=1)

flags.register_validator("image", lambda p: p is None or os.path.isfile(p),
                         message="--image: no such file")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    out = _OUT.value or f"{os.path.splitext(_IMAGE.value)[0]}_x{_SCALE.value}.png"
    try:
        models = _MODELS.value or export.default_models_dir()
        model_dir = _MODEL.value or export.latest_export(models, _SCALE.value)
        start = time.perf_counter()
        h, w = upscale_lib.upscale_file(_IMAGE.value, out, model_dir, _TILE.value,
                                        _MAX_PIXELS.value)
    except (OSError, ValueError) as e:  # missing model, unwritable --out, bad image
        fail(e)
    logging.info("%s -> %s (%dx%d) with %s in %.1f s", _IMAGE.value, out, w, h, model_dir,
                 time.perf_counter() - start)


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
