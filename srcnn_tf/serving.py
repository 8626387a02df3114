"""Requests to and answers from a running TF Serving (REST and gRPC) for the exported model.

Request building and response parsing are plain functions, so they are tested without a
server; `RestClient` / `GrpcClient` only add the transport.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np

START_HINT = ("start TF Serving with the model folder mounted, e.g. docker run -p 8501:8501 "
              "-p 8500:8500 -v $PWD/saved_models/{model}:/models/{model} -e MODEL_NAME={model} "
              "tensorflow/serving")


class ServingError(RuntimeError):
    """TF Serving did not answer, or answered with an error; the message says which and why."""


def upright_encoded(data: bytes) -> bytes:
    """The encoded image as it is displayed: TensorFlow's decoders (and so `upscale_encoded`)
    ignore the EXIF orientation of phone photos, so an image with one is rotated here and sent
    as PNG; anything else is returned unchanged."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.getexif().get(0x0112, 1) in (0, 1):  # 0x0112: EXIF Orientation
                return data
            out = io.BytesIO()
            ImageOps.exif_transpose(im).save(out, format="PNG")
            return out.getvalue()
    except (OSError, ValueError, SyntaxError):
        return data  # not for us to judge: the server's decoder answers with its own error


def rest_url(host: str, port: int, model: str, version: int | None = None) -> str:
    """http://host:port/v1/models/<model>[/versions/<v>]:predict"""
    v = f"/versions/{version}" if version else ""
    return f"http://{host}:{port}/v1/models/{model}{v}:predict"


def rest_request_image(images: np.ndarray, scale: float | None = None) -> dict[str, Any]:
    """serving_default body: uint8 (B, H, W, 3) -> row format {"instances": [...]}; with
    `scale` (a multi-scale model), columnar {"inputs": {"image": [...], "scale": s}} (row
    format needs every input batched)."""
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 [batch, H, W, 3], got {arr.dtype} {arr.shape}")
    if scale is not None:
        return {"signature_name": "serving_default",
                "inputs": {"image": arr.tolist(), "scale": float(scale)}}
    return {"signature_name": "serving_default", "instances": arr.tolist()}


def rest_request_encoded(image_bytes: bytes, scale: float | None = None) -> dict[str, Any]:
    """upscale_encoded body (columnar format, binary as base64): {"inputs": {"image_bytes": ...}}
    (and "scale" for a multi-scale model)."""
    inputs: dict[str, Any] = {
        "image_bytes": [{"b64": base64.b64encode(image_bytes).decode("ascii")}]}
    if scale is not None:
        inputs["scale"] = float(scale)
    return {"signature_name": "upscale_encoded", "inputs": inputs}


def rest_request_y(y: np.ndarray) -> dict[str, Any]:
    """super_resolve_y body: float32 (B, H, W, 1) in [0, 1]."""
    return {"signature_name": "super_resolve_y", "instances": np.asarray(y, np.float32).tolist()}


def parse_rest_response(body: dict[str, Any] | str) -> Any:
    """TF Serving's answer -> uint8/float numpy array, or PNG bytes for upscale_encoded.

    Handles row ("predictions") and columnar ("outputs") answers and {"b64": ...} values;
    raises RuntimeError with the server's message for {"error": ...}.
    """
    if isinstance(body, str):
        body = json.loads(body)
    if "error" in body:
        raise RuntimeError(f"TF Serving error: {body['error']}")
    value = body.get("predictions", body.get("outputs"))
    if value is None:
        raise ValueError(f"unexpected TF Serving answer with keys {sorted(body)}")
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, list) and value and isinstance(value[0], dict) and "b64" in value[0]:
        return base64.b64decode(value[0]["b64"])
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"])
    arr = np.asarray(value)
    if arr.dtype.kind in "iu":
        return arr.astype(np.uint8)
    return arr.astype(np.float32)


def grpc_request(model: str, signature: str, inputs: dict[str, np.ndarray | list[bytes]],
                 version: int | None = None):
    """A tensorflow_serving PredictRequest for `signature` with numpy/bytes inputs."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def parse_grpc_response(response, output: str) -> np.ndarray | bytes:
    """PredictResponse -> numpy array (or the first bytes element for string outputs)."""
    import tensorflow as tf

    arr = tf.make_ndarray(response.outputs[output])
    if arr.dtype == object:
        return arr.reshape(-1)[0]
    return arr


class RestClient:
    def __init__(self, host: str, port: int, model: str, timeout: float = 60.0) -> None:
        self.url = rest_url(host, port, model)
        self.model = model
        self.timeout = timeout

    def predict(self, body: dict[str, Any]) -> Any:
        """Posts `body`; raises ServingError when nothing answers or TF Serving reports an
        error (unknown model or signature, a failed input check), with its message."""
        import requests

        try:
            r = requests.post(self.url, json=body, timeout=self.timeout)
        except requests.exceptions.RequestException as e:
            raise ServingError(f"no TF Serving answered at {self.url} ({type(e).__name__}): "
                               f"{START_HINT.format(model=self.model)}") from None
        try:
            answer = r.json()
        except ValueError:
            raise ServingError(f"{self.url} answered HTTP {r.status_code} without JSON: "
                               f"{r.text[:200]!r}") from None
        try:
            return parse_rest_response(answer)
        except RuntimeError as e:
            raise ServingError(f"{self.url}: {e}") from None


class GrpcClient:
    def __init__(self, host: str, port: int, model: str, timeout: float = 60.0) -> None:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.channel = grpc.insecure_channel(f"{host}:{port}",
                                             options=[("grpc.max_receive_message_length",
                                                       1 << 30)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model = model
        self.timeout = timeout
        self.address = f"{host}:{port}"

    def predict(self, signature: str, inputs: dict[str, Any], output: str) -> Any:
        """Calls `signature`; raises ServingError as RestClient.predict does."""
        import grpc

        request = grpc_request(self.model, signature, inputs)
        try:
            response = self.stub.Predict(request, self.timeout)
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ServingError(f"no TF Serving answered at {self.address} (gRPC "
                                   f"{e.code().name}): {START_HINT.format(model=self.model)}"
                                   ) from None
            raise ServingError(f"TF Serving at {self.address}: {e.code().name}: {e.details()}"
                               ) from None
        return parse_grpc_response(response, output)
