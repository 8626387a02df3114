"""The serving client against what a user meets: no server, a wrong model name, phone photos."""

from __future__ import annotations

import http.server
import io
import json
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from srcnn_tf import serving

from conftest import ROOT, natural_like


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture
def not_found_server():
    """A local HTTP server answering every predict as TF Serving does for an unknown model."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"error": "Servable not found for request: Latest(srcnn_x9)"})
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("localhost", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_rest_client_names_the_address_nobody_answers_at():
    port = free_port()
    client = serving.RestClient("localhost", port, "srcnn_x3", timeout=5)
    with pytest.raises(serving.ServingError, match=f"no TF Serving answered at "
                       f"http://localhost:{port}/v1/models/srcnn_x3:predict") as e:
        client.predict(serving.rest_request_encoded(b"x"))
    assert "docker run" in str(e.value) and "MODEL_NAME=srcnn_x3" in str(e.value)


def test_rest_client_passes_on_tf_servings_own_error(not_found_server):
    client = serving.RestClient("localhost", not_found_server, "srcnn_x9", timeout=5)
    with pytest.raises(serving.ServingError, match=r"Servable not found .*srcnn_x9"):
        client.predict(serving.rest_request_encoded(b"x"))


def test_grpc_client_names_the_address_nobody_answers_at():
    pytest.importorskip("tensorflow_serving")
    port = free_port()
    client = serving.GrpcClient("localhost", port, "srcnn_x3", timeout=5)
    with pytest.raises(serving.ServingError, match=f"no TF Serving answered at localhost:{port}"):
        client.predict("serving_default", {"image": np.zeros((1, 4, 4, 3), np.uint8)}, "image")


@pytest.mark.parametrize("server", ["none", "not_found"])
def test_client_command_answers_in_one_line(server, not_found_server, tmp_path):
    image = tmp_path / "photo.png"
    Image.fromarray(natural_like(20, 24)).save(image)
    port = free_port() if server == "none" else not_found_server
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.serving_client", f"--image={image}",
         f"--out={tmp_path / 'o.png'}", "--model=srcnn_x9", f"--port={port}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and f"localhost:{port}" in last
    assert ("docker run" if server == "none" else "Servable not found") in last


def test_phone_photos_are_sent_upright():
    stored = natural_like(30, 40, seed=3)  # 40 wide as stored; orientation 6: displayed 30 wide
    exif = Image.Exif()
    exif[0x0112] = 6
    data = io.BytesIO()
    Image.fromarray(stored).save(data, format="JPEG", quality=95, exif=exif.tobytes())
    upright = serving.upright_encoded(data.getvalue())
    assert Image.open(io.BytesIO(upright)).size == (30, 40)
    plain = io.BytesIO()
    Image.fromarray(stored).save(plain, format="PNG")
    assert serving.upright_encoded(plain.getvalue()) == plain.getvalue()  # nothing to turn
    assert serving.upright_encoded(b"not an image") == b"not an image"  # the server judges


@pytest.mark.parametrize("out,signature,says", [
    ("o.jpg", "upscale_encoded", "the upscale_encoded answer is PNG bytes"),
    ("o.xyz", "serving_default", "unknown image extension '.xyz'")])
def test_client_command_checks_out_before_sending(out, signature, says, tmp_path):
    image = tmp_path / "photo.png"
    Image.fromarray(natural_like(20, 24)).save(image)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.serving_client", f"--image={image}",
         f"--out={tmp_path / out}", f"--signature={signature}", f"--port={free_port()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and says in proc.stderr
    assert "no TF Serving answered" not in proc.stderr  # refused before any request
