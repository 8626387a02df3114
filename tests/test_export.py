"""SavedModel signatures, TF Serving request/response handling, TFLite variants, upscale."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from srcnn_tf import evaluate, export, imaging, predictors, runs, serving
from srcnn_tf import tflite as tflite_lib
from srcnn_tf import upscale as upscale_lib
from srcnn_tf import train as train_lib
from srcnn_tf.model import ModelConfig, build_srcnn, super_resolve

from conftest import ROOT, natural_like, tiny_records

SCALE = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small 9-5-5 trained for a few steps, exported once."""
    record_dir = tiny_records(tmp_path_factory.mktemp("data"), 3, (80, 84), seed=30,
                              num_shards=2, val_fraction=0.34)
    run = tmp_path_factory.mktemp("run")
    train_lib.train(train_lib.TrainConfig(
        record_dir=record_dir, run_dir=str(run), model=ModelConfig(n1=16, n2=8),
        batch_size=16, max_steps=30, val_every=15, checkpoint_every=15, progress=False,
        learning_rate=3e-3))
    root = tmp_path_factory.mktemp("saved_models")
    path = export.export_run(str(run), str(root))
    return {"run": str(run), "root": str(root), "path": path, "records": record_dir}


@pytest.fixture(scope="module")
def loaded(trained):
    return tf.saved_model.load(trained["path"])


def test_layout_versions_and_metadata(trained):
    assert trained["path"] == os.path.join(trained["root"], "srcnn_x3", "1")
    meta = json.loads(open(os.path.join(trained["path"], "metadata.json")).read())
    assert meta["scale"] == 3 and meta["preset"] == "9-5-5" and meta["border"] == 8
    assert meta["run"] == os.path.basename(trained["run"]) and meta["val_psnr"] is not None
    assert meta["training_data"]["patches"] > 0 and meta["training_data"]["fingerprint"]
    assert meta["training_chain"][-1]["steps"] == meta["best_step"]
    assert not [v for v in json.dumps(meta).split('"') if v.startswith(os.sep)], \
        "no absolute (machine) paths in metadata.json"
    curve = open(os.path.join(trained["path"], "training_curve.csv")).read().splitlines()
    assert curve[0] == "step,minutes,loss,val_psnr" and [c.split(",")[0] for c in curve[1:]] == \
        ["15", "30"]
    second = export.export_run(trained["run"], trained["root"])
    assert second.endswith(os.path.join("srcnn_x3", "2"))
    assert export.latest_export(trained["root"], 3) == second
    with pytest.raises(FileExistsError):
        export.export_run(trained["run"], trained["root"], version=1)
    with pytest.raises(FileNotFoundError, match="make export SCALE=4"):
        export.latest_export(trained["root"], 4)


def test_export_of_a_kept_step(trained, tmp_path):
    """--step exports the weights a kept checkpoint serves, with that step in its chain; a step
    not kept, or --step without a run, is refused naming it."""
    cmd = [sys.executable, "-m", "pipelines.export", f"--run_dir={trained['run']}",
           f"--out_dir={tmp_path}"]
    r = subprocess.run(cmd + ["--step=15"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    path = os.path.join(tmp_path, "srcnn_x3", "1")
    meta = json.loads(open(os.path.join(path, "metadata.json")).read())
    assert meta["best_step"] == 15 and meta["training_chain"][-1]["steps"] == 15
    exported, _, _ = runs.load_export(path)
    kept, _, _ = runs.load_model(trained["run"], step=15)
    final, _, _ = runs.load_model(trained["run"], "latest")
    for e, k, f in zip(exported.weights, kept.weights, final.weights):
        np.testing.assert_array_equal(e.numpy(), k.numpy())
        assert not np.array_equal(k.numpy(), f.numpy())
    r = subprocess.run(cmd + ["--step=16"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "no checkpoint kept at step 16 (kept: 15, 30)" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "pipelines.export", "--step=15",
                        f"--from_saved_model={path}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode != 0 and "--step picks a checkpoint of --run_dir" in r.stderr


def session_run(path: str, signature: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs a signature the way TF Serving does: the session-based SavedModel loader (import
    the MetaGraph, run the saver's restore op) and Session.run on the signature's tensors."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        sig = meta.signature_def[signature]
        fetches = {k: v.name for k, v in sig.outputs.items()}
        return sess.run(fetches, {sig.inputs[k].name: v for k, v in feeds.items()})


def signature_feeds(scale: float | None = None) -> dict[str, dict[str, np.ndarray]]:
    """A feed for each signature; with `scale`, the multi-scale model's `scale` input too."""
    rgb = natural_like(19, 23, seed=41)
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, format="PNG")
    y = imaging.imresize(imaging.to_y(natural_like(30, 27, seed=42)) / 255.0, 3.0)
    extra = {} if scale is None else {"scale": np.float32(scale)}
    return {"serving_default": {"image": rgb[None], **extra},
            "super_resolve_y": {"y": y[None].astype(np.float32)},
            "upscale_encoded": {"image_bytes": np.array([png.getvalue()], dtype=object), **extra}}


@pytest.mark.parametrize("signature", ["serving_default", "super_resolve_y", "upscale_encoded"])
def test_every_signature_runs_in_the_session_loader_of_tf_serving(trained, loaded, signature):
    feeds = signature_feeds()[signature]
    got = session_run(trained["path"], signature, feeds)
    want = loaded.signatures[signature](**{k: tf.constant(v) for k, v in feeds.items()})
    (key, value), = got.items()
    if signature == "upscale_encoded":  # PNG bytes: compare the decoded pixels
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(value[0]))),
                              np.asarray(Image.open(io.BytesIO(want[key].numpy()[0]))))
    elif value.dtype == np.uint8:
        assert np.array_equal(value, want[key].numpy())
    else:
        np.testing.assert_allclose(value, want[key].numpy(), atol=1e-5)


def test_saved_model_cli_run_serves_every_signature(trained, loaded, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    for signature, feeds in signature_feeds().items():
        (key, value), = feeds.items()
        np.save(tmp_path / f"{key}.npy", value, allow_pickle=True)  # bytes: an object array
        out = tmp_path / signature
        proc = subprocess.run(
            [cli, "run", "--dir", trained["path"], "--tag_set", "serve", "--signature_def",
             signature, "--inputs", f"{key}={tmp_path / key}.npy", "--outdir", str(out)],
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        got = np.load(out / f"{key}.npy", allow_pickle=True)
        want = loaded.signatures[signature](**{key: tf.constant(value)})[key].numpy()
        if signature == "upscale_encoded":  # PNG bytes: compare the decoded pixels
            got, want = (np.asarray(Image.open(io.BytesIO(v[0]))) for v in (got, want))
        np.testing.assert_allclose(got, want, atol=1e-5 if want.dtype != np.uint8 else 0)


def test_saved_model_cli_lists_the_signatures(trained):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    out = subprocess.run([cli, "show", "--dir", trained["path"], "--all"], capture_output=True,
                         text=True, timeout=120).stdout
    blocks = {name: out.split(f"signature_def['{name}']")[1].split("signature_def[")[0]
              for name in ("serving_default", "super_resolve_y", "upscale_encoded")}
    sd = blocks["serving_default"]
    assert "inputs['image']" in sd and "outputs['image']" in sd
    assert sd.count("DT_UINT8") == 2 and "shape: (-1, -1, -1, 3)" in sd
    y = blocks["super_resolve_y"]
    assert "inputs['y']" in y and "outputs['y']" in y and y.count("DT_FLOAT") == 2
    assert y.count("shape: (-1, -1, -1, 1)") == 2
    enc = blocks["upscale_encoded"]
    assert "inputs['image_bytes']" in enc and "outputs['image_bytes']" in enc
    assert enc.count("DT_STRING") == 2 and enc.count("shape: (1)") == 2


def test_signatures_after_load(trained, loaded):
    model, cfg, _ = runs.load_model(trained["run"])
    y = np.random.default_rng(0).uniform(size=(2, 30, 26, 1)).astype(np.float32)
    got = loaded.signatures["super_resolve_y"](y=tf.constant(y))["y"].numpy()
    np.testing.assert_allclose(got, super_resolve(model, cfg, tf.constant(y)).numpy(), atol=1e-6)
    rgb = natural_like(20, 24, seed=1)[None]
    out = loaded.signatures["serving_default"](image=tf.constant(rgb))["image"]
    assert out.dtype == tf.uint8 and tuple(out.shape) == (1, 60, 72, 3)
    png = loaded.signatures["upscale_encoded"](
        image_bytes=tf.constant([_png(rgb[0])]))["image_bytes"].numpy()
    decoded = imaging.load_image(png[0])
    assert decoded.shape == (60, 72, 3)
    np.testing.assert_array_equal(decoded, out[0].numpy())


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.squeeze()).save(buf, "PNG")
    return buf.getvalue()


def test_encoded_accepts_gray_and_jpeg_and_keeps_alpha_as_make_upscale_does(trained, loaded):
    fn = loaded.signatures["upscale_encoded"]
    predict = predictors.saved_model_y_predictor(trained["path"])
    alpha = natural_like(16, 18, c=1, seed=6)
    for colour in (natural_like(16, 18, c=1, seed=2), natural_like(16, 18, seed=3)):
        c = colour.shape[2]
        for image in (colour, np.concatenate([colour, alpha], axis=2)):
            png = fn(image_bytes=tf.constant([_png(image)]))["image_bytes"][0].numpy()
            out = imaging.load_image(png, keep_alpha=True)
            assert out.shape == (48, 54, image.shape[2])
            want = upscale_lib.upscale_array(image, 3, predict, 8)
            assert np.abs(out.astype(int) - want).max() <= 1, c  # float32 graph vs float64
            if image.shape[2] > c:
                assert np.abs(out[..., c].astype(int) - imaging.to_uint8(
                    imaging.imresize(alpha[..., 0] / 255.0, scale=3))).max() <= 1
    buf = io.BytesIO()
    Image.fromarray(natural_like(16, 18, seed=4)).save(buf, "JPEG")
    out = imaging.load_image(fn(image_bytes=tf.constant([buf.getvalue()]))["image_bytes"][0]
                             .numpy())
    assert out.shape == (48, 54, 3)


def test_in_graph_input_checks(trained):
    # A model with a small cap, to check the rejection without allocating gigabytes.
    model, cfg, _ = runs.load_model(trained["run"])
    path = export.export_saved_model(model, cfg, 3, trained["root"] + "_cap", max_pixels=90_000)
    sig = tf.saved_model.load(path).signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match="3 channel"):
        sig["serving_default"](image=tf.zeros([1, 8, 8, 4], tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="rank 4"):
        sig["serving_default"](image=tf.zeros([8, 8, 3], tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="cap of 90000"):
        sig["serving_default"](image=tf.zeros([1, 101, 100, 3], tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="1 channel"):
        sig["super_resolve_y"](y=tf.zeros([1, 8, 8, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="cap"):
        sig["upscale_encoded"](image_bytes=tf.constant([_png(np.zeros((101, 100), np.uint8))]))
    with pytest.raises(tf.errors.InvalidArgumentError):
        sig["upscale_encoded"](image_bytes=tf.constant([b"not an image"]))


def _decode_like_tf_serving(body: dict, signature) -> dict[str, tf.Tensor]:
    """TF Serving's JSON decoding: row format ("instances") stacks per-example values; columnar
    ("inputs") takes each named value as is; {"b64": s} is base64 binary; the dtype comes from
    the signature."""
    specs = signature.structured_input_signature[1]

    def convert(value, dtype):
        if isinstance(value, dict) and "b64" in value:
            return base64.b64decode(value["b64"])
        if isinstance(value, list):
            return [convert(v, dtype) for v in value]
        return value

    if "instances" in body:
        (name, spec), = specs.items()
        return {name: tf.constant(convert(body["instances"], spec.dtype), spec.dtype)}
    return {name: tf.constant(convert(value, specs[name].dtype), specs[name].dtype)
            for name, value in body["inputs"].items()}


def test_rest_bodies_round_trip(shared_data, loaded):
    lr = imaging.imresize(imaging.modcrop(imaging.load_image(shared_data / "Set5" /
                                                              "butterfly_GT.bmp"), 3)[:96, :96],
                          scale=1 / 3)
    body = json.loads(json.dumps(serving.rest_request_image(lr[None])))
    sig = loaded.signatures["serving_default"]
    out = sig(**_decode_like_tf_serving(body, sig))["image"].numpy()
    answer = json.loads(json.dumps({"predictions": out.tolist()}))
    np.testing.assert_array_equal(serving.parse_rest_response(answer), out)
    assert out.shape == (1, 96, 96, 3)

    data = _png(lr)
    enc = loaded.signatures["upscale_encoded"]
    for body in (serving.rest_request_encoded(data),
                 {"inputs": {"image_bytes": {"b64": base64.b64encode(data).decode()}}}):
        body = json.loads(json.dumps(body))
        png = enc(**_decode_like_tf_serving(body, enc))["image_bytes"].numpy()[0]
        answer = {"outputs": {"image_bytes": [{"b64": base64.b64encode(png).decode()}]}}
        got = serving.parse_rest_response(json.dumps(answer))
        np.testing.assert_array_equal(imaging.load_image(got), out[0])
    with pytest.raises(RuntimeError, match="boom"):
        serving.parse_rest_response({"error": "boom"})
    with pytest.raises(ValueError, match="uint8"):
        serving.rest_request_image(lr)


def test_grpc_request_and_response(loaded):
    from tensorflow_serving.apis import predict_pb2

    rgb = natural_like(12, 10, seed=5)[None]
    req = serving.grpc_request("srcnn_x3", "serving_default", {"image": rgb}, version=2)
    assert req.model_spec.name == "srcnn_x3" and req.model_spec.version.value == 2
    fed = tf.make_ndarray(req.inputs["image"])
    assert fed.dtype == np.uint8
    out = loaded.signatures["serving_default"](image=tf.constant(fed))["image"]
    resp = predict_pb2.PredictResponse()
    resp.outputs["image"].CopyFrom(tf.make_tensor_proto(out.numpy()))
    np.testing.assert_array_equal(serving.parse_grpc_response(resp, "image"), out.numpy())
    req = serving.grpc_request("srcnn_x3", "upscale_encoded", {"image_bytes": [b"\x89PNG"]})
    assert tf.make_ndarray(req.inputs["image_bytes"]).tolist() == [b"\x89PNG"]
    resp = predict_pb2.PredictResponse()
    resp.outputs["image_bytes"].CopyFrom(tf.make_tensor_proto([b"png-bytes"]))
    assert serving.parse_grpc_response(resp, "image_bytes") == b"png-bytes"


def _identity_srcnn(cfg: ModelConfig):
    """SRCNN weights that pass the input through (delta kernels): the exported colour pipeline
    must then reproduce the paper protocol's bicubic numbers."""
    from srcnn_tf.model import build_srcnn, conv_layers

    model = build_srcnn(cfg)
    for layer in conv_layers(model):
        k = np.zeros(layer.kernel.shape, np.float32)
        f = k.shape[0] // 2
        k[f, f, 0, 0] = 1.0
        layer.kernel.assign(k)
        layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
    return model


def test_serving_default_matches_paper_protocol(shared_data, tmp_path):
    """Fed the LR made by our MATLAB bicubic, the Y of the RGB answer scores within 0.05 dB of
    the paper-protocol PSNR of the same model (here the pass-through one: Set5 bicubic)."""
    cfg = ModelConfig(n1=4, n2=2)
    model = _identity_srcnn(cfg)
    folder = str(shared_data / "Set5")
    ref = evaluate.evaluate_folder(predictors.keras_predictor(model, cfg), folder, 3, "m").psnr
    assert abs(ref - evaluate.PAPER[("Set5", 3, "bicubic")][0]) < 0.01
    sig = tf.saved_model.load(export.export_saved_model(model, cfg, 3, str(tmp_path))
                              ).signatures["serving_default"]
    values = []
    for path in imaging.list_images(folder):
        hr = imaging.modcrop(imaging.load_image(path), 3)
        out = sig(image=tf.constant(imaging.imresize(hr, scale=1 / 3)[None]))["image"][0].numpy()
        values.append(evaluate.metrics.psnr(imaging.to_y(out), imaging.to_y(hr), crop_border=3))
    assert abs(np.mean(values) - ref) <= 0.05


def test_tflite_variants(trained, tmp_path):
    result = tflite_lib.export_tflite(trained["path"], trained["records"], None, 3, rounds=2,
                                      latency_size=32, finetune_steps=20)
    report = open(os.path.join(result["dir"], "report.md")).read()
    hr = natural_like(42, 48, c=1, seed=11).astype(np.float64) / 255.0
    y = imaging.degrade(hr, 3).astype(np.float32)  # an input like the calibration patches
    ref = predictors.saved_model_y_predictor(trained["path"])(y)
    # (max, mean) absolute error against the SavedModel, values in [0, 1]; the model is barely
    # trained, so int8 errors are larger than with real weights (see the report's PSNR).
    tolerance = {"fp32": (1e-5, 1e-6), "fp16": (5e-3, 1e-3), "dynamic_int8": (0.15, 0.03),
                 "int8": (0.15, 0.03)}
    for variant, (tol_max, tol_mean) in tolerance.items():
        assert variant in report
        runner = predictors.TFLiteY(os.path.join(result["dir"], f"srcnn_x3_{variant}.tflite"))
        assert not predictors.tflite_takes_scale(os.path.join(result["dir"],
                                                              f"srcnn_x3_{variant}.tflite"))
        for shape in ((42, 48, 1), (17, 40, 1)):  # dynamic height/width
            assert runner(np.resize(y, shape)).shape == shape
        err = np.abs(runner(y) - ref)
        assert err.max() <= tol_max and err.mean() <= tol_mean, (variant, err.max(), err.mean())


def test_upscale_tiles_equal_whole_image(trained, tmp_path):
    predict = predictors.saved_model_y_predictor(trained["path"])
    for c in (1, 3):
        img = natural_like(41, 53, c=c, seed=c)
        whole = upscale_lib.upscale_array(img, 3, predict, 8, tile=1000)
        tiled = upscale_lib.upscale_array(img, 3, predict, 8, tile=29)
        assert whole.shape == (123, 159, c)
        np.testing.assert_array_equal(whole, tiled)
    # The Y of the whole-image result is the paper protocol's SR (model on bicubic Y).
    img = natural_like(30, 33, c=1, seed=9)
    model, cfg, _ = runs.load_model(trained["run"])
    up = imaging.imresize(img.astype(np.float64) / 255.0, scale=3).astype(np.float32)
    ref = imaging.to_uint8(super_resolve(model, cfg, tf.constant(up[None]))[0].numpy())
    got = upscale_lib.upscale_array(img, 3, predict, 8, tile=40)
    assert np.abs(got.astype(int) - ref).max() <= 1


def test_upscale_keeps_alpha_as_its_bicubic(trained):
    predict = predictors.saved_model_y_predictor(trained["path"])
    for colour in (1, 3):
        img = natural_like(23, 31, c=colour, seed=colour)
        alpha = natural_like(23, 31, c=1, seed=5)
        with_alpha = np.concatenate([img, alpha], axis=2)
        got = upscale_lib.upscale_array(with_alpha, 3, predict, 8, tile=25)
        assert got.shape == (69, 93, colour + 1)
        np.testing.assert_array_equal(got[..., :colour],
                                      upscale_lib.upscale_array(img, 3, predict, 8, tile=1000))
        want = imaging.to_uint8(imaging.imresize(alpha[..., 0] / 255.0, scale=3))
        np.testing.assert_array_equal(got[..., colour], want)


def test_upscale_file_refuses_an_output_that_would_lose_alpha(trained, tmp_path):
    src = tmp_path / "logo.png"
    rgba = np.concatenate([natural_like(10, 12, seed=2), natural_like(10, 12, c=1, seed=3)], 2)
    imaging.save_image(src, rgba)
    with pytest.raises(ValueError, match=r"logo_x3\.jpg: JPEG has no alpha channel"):
        upscale_lib.upscale_file(str(src), str(tmp_path / "logo_x3.jpg"), trained["path"])
    assert upscale_lib.upscale_file(str(src), str(tmp_path / "logo_x3.png"),
                                    trained["path"]) == (30, 36)
    assert imaging.load_image(tmp_path / "logo_x3.png", keep_alpha=True).shape == (30, 36, 4)


def test_upscale_file_refuses_to_replace_its_input_or_write_nowhere(trained, tmp_path):
    src = tmp_path / "photo.png"
    imaging.save_image(src, natural_like(10, 12, seed=2))
    before = src.read_bytes()
    with pytest.raises(ValueError, match="photo.png is the input image"):
        upscale_lib.upscale_file(str(src), str(src), trained["path"])
    with pytest.raises(ValueError, match="photo.png is the input image"):  # the same file
        upscale_lib.upscale_file(str(src), str(tmp_path / "." / "photo.png"), trained["path"])
    assert src.read_bytes() == before
    with pytest.raises(ValueError, match=f"no folder {tmp_path / 'nope'} to write it in"):
        upscale_lib.upscale_file(str(src), str(tmp_path / "nope" / "o.png"), trained["path"])


def test_make_upscale_names_a_folder_given_as_image(tmp_path):
    r = _upscale_cli(f"--image={tmp_path}")
    assert r.returncode != 0 and f"--image: {tmp_path} is a folder" in r.stderr
    r = _upscale_cli(f"--image={tmp_path}/no.png")
    assert r.returncode != 0 and f"--image: no file {tmp_path}/no.png" in r.stderr


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "I;16"])
def test_make_upscale_pipeline_any_mode(trained, tmp_path, mode):
    arr = natural_like(20, 22, c=1 if mode in ("L", "I;16") else 3, seed=4)
    if mode == "RGBA":
        arr = np.concatenate([arr, np.full((20, 22, 1), 200, np.uint8)], 2)
    img = Image.fromarray(arr.squeeze()) if mode != "I;16" else Image.fromarray(
        arr.squeeze().astype(np.uint16) * 257)
    src = tmp_path / "in.png"
    img.save(src)
    out = tmp_path / "out.png"
    r = subprocess.run([sys.executable, "-m", "pipelines.upscale", f"--image={src}", "--scale=3",
                        f"--models_dir={trained['root']}", f"--out={out}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert imaging.load_image(out, keep_alpha=True).shape == (60, 66, 4 if mode == "RGBA" else
                                                              1 if mode in ("L", "I;16") else 3)


def test_default_models_are_a_checkout_s_or_the_installed_ones(tmp_path, monkeypatch):
    prefix = tmp_path / "prefix"
    installed = os.path.join(prefix, "share", "srcnn-tf", "saved_models")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # Nothing here and nothing installed: the checkout the code runs from (pip install -e).
    assert export.default_models_dir() == str(ROOT / "saved_models")
    monkeypatch.setattr(export, "__file__", str(tmp_path / "site" / "srcnn_tf" / "export.py"))
    assert export.default_models_dir() == installed  # neither: the path the error names
    os.makedirs(os.path.join(installed, "srcnn_x3"))
    assert export.default_models_dir() == installed  # pip install: the shipped models
    (work / "saved_models" / "my_keras_model" / "1").mkdir(parents=True)
    assert export.default_models_dir() == installed  # someone else's models: not ours
    (work / "saved_models" / "srcnn_x3").mkdir()
    assert export.default_models_dir() == "saved_models"  # a checkout's


def test_upscale_without_model_is_a_clear_error(tmp_path):
    src = tmp_path / "in.png"
    imaging.save_image(src, natural_like(10, 10, seed=1))
    r = subprocess.run([sys.executable, "-m", "pipelines.upscale", f"--image={src}", "--scale=4",
                        f"--models_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode != 0 and "no exported x4 model" in r.stderr


SHIPPED_MODELS = sorted(  # the SavedModels (sc_x*/ hold the SC baseline's dictionaries)
    p.parent.parent.name for p in (ROOT / "saved_models").glob("*/1/saved_model.pb"))


def test_shipped_metadata_and_reports_hold_no_machine_paths():
    for path in (ROOT / "saved_models").glob("*/*/**/*"):
        if path.suffix in (".json", ".md", ".csv"):
            text = path.read_text()
            assert not [v for v in json.dumps(text).split('"') if v.startswith(os.sep)], path
            assert str(ROOT.parent) not in text, path


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_newest_shipped_version_serves_through_the_session_loader(name):
    path = os.path.join(ROOT, "saved_models", name)
    path = os.path.join(path, str(max(export.model_versions(path))))
    eager = tf.saved_model.load(path)
    multi = isinstance(json.load(open(os.path.join(path, "metadata.json")))["scale"], list)
    for signature, feeds in signature_feeds(2.5 if multi else None).items():
        (key, value), = session_run(path, signature, feeds).items()
        want = eager.signatures[signature](**{k: tf.constant(v) for k, v in feeds.items()})[key]
        if signature == "upscale_encoded":
            value, want = (np.asarray(Image.open(io.BytesIO(v))) for v in
                           (value[0], want.numpy()[0]))
        else:
            want = want.numpy()
        np.testing.assert_allclose(value, want, atol=0 if want.dtype == np.uint8 else 1e-5)


# ----------------------------------------------------------------------------- any scale


@pytest.fixture(scope="module")
def multiscale(tmp_path_factory):
    """A small 9-5-5 trained a few steps on x1.5/2/2.5/3/4 records, exported once."""
    root = tmp_path_factory.mktemp("ms")
    record_dir = tiny_records(root, 3, (80, 84), seed=60, num_shards=2, val_fraction=0.34,
                              scale=(1.5, 2, 2.5, 3, 4))
    run = root / "run"
    train_lib.train(train_lib.TrainConfig(
        record_dir=record_dir, run_dir=str(run), model=ModelConfig(n1=16, n2=8, scale_input=True),
        scale=(1.5, 2, 2.5, 3, 4), batch_size=16, max_steps=20, val_every=10,
        checkpoint_every=10, progress=False, learning_rate=3e-3))
    path = export.export_run(str(run), str(root / "saved_models"))
    return {"run": str(run), "root": str(root / "saved_models"), "path": path,
            "records": record_dir}


def test_multiscale_run_validates_each_scale_and_exports_with_a_scale_input(multiscale):
    events = [e for e in runs.RunDir(multiscale["run"]).metrics() if "val_psnr" in e]
    per_scale = [events[-1][f"val_psnr_x{s}"] for s in ("1.5", "2", "2.5", "3", "4")]
    assert events[-1]["val_psnr"] == pytest.approx(np.mean(per_scale))
    assert multiscale["path"].endswith(os.path.join("srcnn_multiscale", "1"))
    meta = json.load(open(os.path.join(multiscale["path"], "metadata.json")))
    assert meta["scale"] == [1.5, 2, 2.5, 3, 4] and meta["max_scale"] == 4
    sig = tf.saved_model.load(multiscale["path"]).signatures
    assert set(sig["serving_default"].structured_input_signature[1]) == {"image", "scale"}
    assert set(sig["upscale_encoded"].structured_input_signature[1]) == {"image_bytes", "scale"}
    assert set(sig["super_resolve_y"].structured_input_signature[1]) == {"y"}
    assert set(sig["super_resolve_y_at"].structured_input_signature[1]) == {"y", "scale"}


def test_multiscale_y_signatures_equal_the_keras_model_told_the_scale_or_not(multiscale):
    model, cfg, _ = runs.load_model(multiscale["run"])
    assert cfg.scale_input
    y = np.random.default_rng(3).uniform(size=(1, 30, 26, 1)).astype(np.float32)
    answers = {}
    for scale in (None, 1.5, 2.5, 4.0):
        want = super_resolve(model, cfg, tf.constant(y), scale).numpy()
        got = session_run(multiscale["path"], "super_resolve_y", {"y": y})["y"] if scale is None \
            else session_run(multiscale["path"], "super_resolve_y_at",
                             {"y": y, "scale": np.float32(scale)})["y"]
        np.testing.assert_allclose(got, want, atol=1e-5)
        answers[scale] = got
    assert np.abs(answers[1.5] - answers[4.0]).max() > 1e-4  # the factor reaches the model


def test_single_scale_model_starts_a_scale_input_one_unchanged(trained, tmp_path):
    model, cfg, _ = runs.load_model(trained["run"])
    widened_cfg = dataclasses.replace(cfg, scale_input=True)
    widened = build_srcnn(widened_cfg, seed=1)
    runs.warm_start(widened, widened_cfg, trained["path"])
    y = tf.constant(np.random.default_rng(4).uniform(size=(1, 24, 20, 1)).astype(np.float32))
    want = super_resolve(model, cfg, y).numpy()
    for scale in (None, 1.5, 4.0):
        np.testing.assert_allclose(super_resolve(widened, widened_cfg, y, scale), want,
                                   atol=1e-6)
    with pytest.raises(ValueError, match="holds a"):  # and not the other way round
        runs.warm_start(build_srcnn(cfg), cfg, export.export_saved_model(
            widened, widened_cfg, [2, 3], str(tmp_path)))


@pytest.mark.parametrize("scale", [2.5, 1.5, 3])
def test_multiscale_signatures_answer_as_make_upscale_does(multiscale, scale):
    rgb = natural_like(77, 101, seed=5)  # 101x77 at x2.5: 253x193 (ceil)
    predict = predictors.saved_model_y_predictor(multiscale["path"], scale)  # told the factor
    want = upscale_lib.upscale_array(rgb, scale, predict, 8, tile=48)
    assert want.shape == (*imaging.output_size(77, 101, scale), 3)
    whole = upscale_lib.upscale_array(rgb, scale, predict, 8, tile=4096)
    np.testing.assert_array_equal(want, whole)  # tiled == whole image
    got = session_run(multiscale["path"], "serving_default",
                      {"image": rgb[None], "scale": np.float32(scale)})["image"][0]
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want).max() <= 1  # float32 graph vs float64 numpy colour
    png = session_run(multiscale["path"], "upscale_encoded",
                      {"image_bytes": np.array([_png(rgb)], dtype=object),
                       "scale": np.float32(scale)})["image_bytes"][0]
    np.testing.assert_array_equal(imaging.load_image(png), got)
    rgba = np.concatenate([rgb, natural_like(77, 101, c=1, seed=6)], axis=2)
    png = session_run(multiscale["path"], "upscale_encoded",
                      {"image_bytes": np.array([_png(rgba)], dtype=object),
                       "scale": np.float32(scale)})["image_bytes"][0]
    want = upscale_lib.upscale_array(rgba, scale, predict, 8)
    np.testing.assert_array_equal(imaging.load_image(png, keep_alpha=True)[..., :3], got)
    assert np.abs(imaging.load_image(png, keep_alpha=True).astype(int) - want).max() <= 1


def test_multiscale_saved_model_cli_run_takes_the_scale(multiscale, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    np.save(tmp_path / "image.npy", natural_like(10, 12, seed=6)[None])
    np.save(tmp_path / "scale.npy", np.float32(1.5))
    proc = subprocess.run(
        [cli, "run", "--dir", multiscale["path"], "--tag_set", "serve", "--signature_def",
         "serving_default", "--inputs",
         f"image={tmp_path / 'image.npy'};scale={tmp_path / 'scale.npy'}",
         "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert np.load(tmp_path / "out" / "image.npy").shape == (1, 15, 18, 3)


@pytest.mark.parametrize("bad", [1.0, 0.5, 4.5, float("nan"), float("inf")])
def test_multiscale_scale_outside_the_range_is_refused_naming_it(multiscale, bad):
    image = natural_like(10, 12, seed=7)[None]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"scale must be a number in \(1, 4\]"):
        session_run(multiscale["path"], "serving_default",
                    {"image": image, "scale": np.float32(bad)})
    with pytest.raises(tf.errors.InvalidArgumentError, match="scale must be"):
        session_run(multiscale["path"], "upscale_encoded",
                    {"image_bytes": np.array([_png(image[0])], dtype=object),
                     "scale": np.float32(bad)})


def test_multiscale_output_cap_counts_the_scale(multiscale):
    model, cfg, scale = runs.load_model(multiscale["run"])
    path = export.export_saved_model(model, cfg, scale, multiscale["root"] + "_cap",
                                     max_pixels=10_000)
    sig = tf.saved_model.load(path).signatures
    image = tf.zeros([1, 40, 40, 3], tf.uint8)
    assert sig["serving_default"](image=image, scale=2.5)["image"].shape == (1, 100, 100, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="cap of 10000"):
        sig["serving_default"](image=image, scale=2.55)  # 102 x 102
    with pytest.raises(tf.errors.InvalidArgumentError, match="cap of 10000"):
        sig["upscale_encoded"](image_bytes=tf.constant([_png(np.zeros((40, 41), np.uint8))]),
                               scale=2.5)


def test_latest_export_falls_back_to_the_multiscale_model(multiscale, trained):
    root = multiscale["root"]
    assert export.latest_export(root, 2.5) == multiscale["path"]
    assert export.latest_export(root, 3) == multiscale["path"]  # no srcnn_x3 beside it
    with pytest.raises(FileNotFoundError, match="x4.5 is outside"):
        export.latest_export(root, 4.5)
    assert os.path.dirname(export.latest_export(trained["root"], 3)).endswith("srcnn_x3")
    with pytest.raises(FileNotFoundError, match="no srcnn_multiscale model"):
        export.latest_export(trained["root"], 2.5)


def _upscale_cli(*args):
    return subprocess.run([sys.executable, "-m", "pipelines.upscale", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_multiscale_rest_and_grpc_bodies_carry_the_scale(multiscale):
    loaded = tf.saved_model.load(multiscale["path"])
    rgb = natural_like(11, 13, seed=9)
    want = session_run(multiscale["path"], "serving_default",
                       {"image": rgb[None], "scale": np.float32(2.5)})["image"]
    sig = loaded.signatures["serving_default"]
    body = json.loads(json.dumps(serving.rest_request_image(rgb[None], 2.5)))
    np.testing.assert_array_equal(sig(**_decode_like_tf_serving(body, sig))["image"], want)
    enc = loaded.signatures["upscale_encoded"]
    body = json.loads(json.dumps(serving.rest_request_encoded(_png(rgb), 2.5)))
    png = enc(**_decode_like_tf_serving(body, enc))["image_bytes"].numpy()[0]
    np.testing.assert_array_equal(imaging.load_image(png), want[0])
    req = serving.grpc_request("srcnn_multiscale", "serving_default",
                               {"image": rgb[None], "scale": np.float32(2.5)})
    fed = {k: tf.constant(tf.make_ndarray(v)) for k, v in req.inputs.items()}
    np.testing.assert_array_equal(sig(**fed)["image"], want)


def test_make_upscale_any_scale_and_size(multiscale, tmp_path):
    src = tmp_path / "in.png"
    imaging.save_image(src, natural_like(77, 101, seed=8))
    for args, size in ((["--scale=2.5"], (193, 253)), (["--size=202x154"], (154, 202)),
                       (["--size=150x231"], (231, 303))):  # scale from the larger side
        out = tmp_path / "out.png"
        r = _upscale_cli(f"--image={src}", f"--models_dir={multiscale['root']}", f"--out={out}",
                         *args)
        assert r.returncode == 0, r.stderr[-2000:]
        assert imaging.load_image(out).shape[:2] == size


@pytest.mark.parametrize("args, message", [
    (["--scale=0.5"], "--scale: 0.5 is not a factor > 1"),
    (["--scale=abc"], "abc"),
    (["--scale=4.5"], "x4.5 is outside (1, 4]"),
    (["--size=1920x1080"], "size 1920x1080 needs x19.01"),
    (["--size=12x"], "'12x' is not WIDTHxHEIGHT"),
    (["--size=20x20", "--scale=2"], "not both"),
    (["--scale=2.5", "--max_pixels=40000"], "253x193 = 48829 pixels exceeds the limit of 40000"),
])
def test_make_upscale_refuses_bad_scales_and_sizes_naming_the_value(multiscale, tmp_path, args,
                                                                    message):
    src = tmp_path / "in.png"
    imaging.save_image(src, natural_like(77, 101, seed=8))
    r = _upscale_cli(f"--image={src}", f"--models_dir={multiscale['root']}",
                     f"--out={tmp_path / 'o.png'}", *args)
    assert r.returncode != 0 and message in r.stderr, r.stderr[-1000:]
    assert "Traceback" not in r.stderr and not (tmp_path / "o.png").exists()


def test_multiscale_tflite_variants_report_each_scale(multiscale):
    result = tflite_lib.export_tflite(multiscale["path"], multiscale["records"],
                                      [multiscale["records"] + "/../../img"], [1.5, 3],
                                      variants=("fp32", "int8"), rounds=2, latency_size=32,
                                      finetune_steps=20)
    assert sorted(os.listdir(result["dir"])) == [
        "report.md", "srcnn_multiscale_fp32.tflite", "srcnn_multiscale_int8.tflite"]
    assert set(result["savedmodel_psnr"]) == {"img x1.5", "img x3"}
    for name, psnr in result["variants"]["fp32"]["psnr"].items():
        assert abs(psnr - result["savedmodel_psnr"][name]) < 0.01
    y = np.random.default_rng(5).uniform(size=(20, 17, 1)).astype(np.float32)
    for scale in (1.5, 3.5):  # the file takes the factor as its second input, as phones feed it
        runner = predictors.TFLiteY(os.path.join(result["dir"], "srcnn_multiscale_fp32.tflite"),
                                    scale=scale)
        want = predictors.saved_model_y_predictor(multiscale["path"], scale)(y)
        np.testing.assert_allclose(runner(y), want, atol=1e-5)
    with pytest.raises(ValueError, match="give the scale"):
        predictors.TFLiteY(os.path.join(result["dir"], "srcnn_multiscale_fp32.tflite"))
    untold, _, info = predictors.load_predictor(
        os.path.join(result["dir"], "srcnn_multiscale_fp32.tflite"))
    np.testing.assert_allclose(info["at"](1.5)(y), predictors.saved_model_y_predictor(
        multiscale["path"], 1.5)(y), atol=1e-5)
    with pytest.raises(ValueError, match="give the scale"):  # no factor is made up
        untold(y)
    assert "x1.5,3" in open(os.path.join(result["dir"], "report.md")).read()


def test_make_upscale_with_a_model_takes_its_factor_and_refuses_another(trained, multiscale,
                                                                         tmp_path):
    src = tmp_path / "in.png"
    imaging.save_image(src, natural_like(10, 12, seed=10))
    r = _upscale_cli(f"--image={src}", f"--model={trained['path']}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert imaging.load_image(tmp_path / "in_x3.png").shape[:2] == (30, 36)
    r = _upscale_cli(f"--image={src}", f"--model={trained['path']}", "--scale=2")
    assert r.returncode == 2 and "is an x3 model, asked for x2" in r.stderr
    r = _upscale_cli(f"--image={src}", f"--model={multiscale['path']}")
    assert r.returncode == 2 and "multi-scale model: give the scale" in r.stderr
    out = tmp_path / "newest.png"  # a model folder: its newest version
    r = _upscale_cli(f"--image={src}", f"--model={os.path.dirname(trained['path'])}",
                     f"--out={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert imaging.load_image(out).shape[:2] == (30, 36)
    for bad, message in ((tmp_path, "neither an exported version"),
                         (trained["run"], "is a training run, not an exported version"),
                         (tmp_path / "nope", "--model: no such folder")):
        r = _upscale_cli(f"--image={src}", f"--model={bad}")
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, passed, dropped", [
    (["MODEL=saved_models/srcnn_x2", "SCALE=3"], ["--model=saved_models/srcnn_x2", "--scale=3"],
     []),
    (["SIZE=1000x1000", "SCALE=2"], ["--size=1000x1000", "--scale=2"], []),  # the flag refuses
    ([], [], ["--model", "--scale", "--size"]),  # the pipeline's defaults: newest x3
])
def test_make_upscale_passes_what_the_user_gave(args, passed, dropped):
    """Nothing the user typed is dropped on the way to the flags (dry runs of make)."""
    cmd = subprocess.run(["make", "-n", "--no-print-directory", "upscale", "IMAGE=a.png", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    line = cmd.strip().splitlines()[-1]
    assert all(p in line.split() for p in passed), line
    assert not any(d in line for d in dropped), line
