"""Sends an image to a running TF Serving and saves the answer.

python -m pipelines.serving_client --image=in.png --out=out.png --model=srcnn_x3 \
    [--protocol=rest|grpc --host=localhost --port=8501 --signature=upscale_encoded]
python -m pipelines.serving_client --image=in.png --out=out.png --model=srcnn_multiscale \
    --scale=1.5
"""

from __future__ import annotations

import os

import numpy as np
from absl import app, flags, logging

from .common import fail
from srcnn_tf import imaging, serving

_IMAGE = flags.DEFINE_string("image", None, "Input image file.", required=True)
_OUT = flags.DEFINE_string("out", None, "Output image: .png for upscale_encoded (the server "
                           "answers PNG bytes), any image extension for serving_default.",
                           required=True)
_MODEL = flags.DEFINE_string("model", "srcnn_x3", "Model name in TF Serving.")
_HOST = flags.DEFINE_string("host", "localhost", "Server host.")
_PORT = flags.DEFINE_integer("port", None, "Port (default 8501 REST, 8500 gRPC).")
_PROTOCOL = flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "Transport.")
_SIGNATURE = flags.DEFINE_enum("signature", "upscale_encoded",
                               ["upscale_encoded", "serving_default"], "Signature to call.")

_SCALE = flags.DEFINE_float("scale", None, "The factor, for a multi-scale model (1 < scale <= 4; "
                            "the server checks it and names a bad value).")

flags.register_validator("image", lambda p: p is None or os.path.isfile(p),
                         message="--image: no such file")


@flags.multi_flags_validator(["out", "signature"], message="--out: the upscale_encoded answer is "
                             "PNG bytes: give a .png name (or --signature=serving_default)")
def _check_out(f: dict) -> bool:
    if f["out"] is None:
        return True
    try:
        fmt = imaging.output_format(f["out"], 3)
    except ValueError as e:
        raise flags.ValidationError(f"--out: {e}") from None
    return f["signature"] != "upscale_encoded" or fmt == "PNG"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        _run()
    except (serving.ServingError, imaging.ImageError) as e:
        fail(e)


def _run() -> None:
    with open(_IMAGE.value, "rb") as f:
        data = f.read()
    encoded = _SIGNATURE.value == "upscale_encoded"
    if encoded:
        data = serving.upright_encoded(data)  # the server's decoder ignores EXIF orientation
    else:
        rgb = imaging.load_image(data, name=_IMAGE.value)
        rgb = np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb
    if _PROTOCOL.value == "rest":
        client = serving.RestClient(_HOST.value, _PORT.value or 8501, _MODEL.value)
        body = serving.rest_request_encoded(data, _SCALE.value) if encoded else \
            serving.rest_request_image(rgb[None], _SCALE.value)
        result = client.predict(body)
    else:
        client = serving.GrpcClient(_HOST.value, _PORT.value or 8500, _MODEL.value)
        extra = {} if _SCALE.value is None else {"scale": np.float32(_SCALE.value)}
        if encoded:
            result = client.predict("upscale_encoded", {"image_bytes": [data], **extra},
                                    "image_bytes")
        else:
            result = client.predict("serving_default", {"image": rgb[None], **extra}, "image")
    if isinstance(result, bytes):
        with open(_OUT.value, "wb") as f:
            f.write(result)
    else:
        imaging.save_image(_OUT.value, np.asarray(result, np.uint8)[0])
    logging.info("wrote %s", _OUT.value)


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
