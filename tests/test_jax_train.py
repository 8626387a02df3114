"""The JAX trainer: the same network, update and metric as the TensorFlow side, and a run
directory that export reads."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
import tensorflow as tf

from srcnn_tf import chains, export, imaging, jax_train, packs, plots, predictors, runs
from srcnn_tf import jax_model, weights
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers, super_resolve

from conftest import ROOT, tiny_records

SMALL = ModelConfig(n1=8, n2=4)


def _params(model: keras.Model) -> list:
    return [tuple(layer.get_weights()) for layer in conv_layers(model)]


def test_adam_step_equals_keras_adam():
    rng = np.random.default_rng(0)
    params = [(rng.normal(size=(3, 3, 1, 2)).astype(np.float32),
               rng.normal(size=2).astype(np.float32))]
    grads = [(rng.normal(size=(3, 3, 1, 2)).astype(np.float32),
              rng.normal(size=2).astype(np.float32))]
    jp = [tuple(jnp.asarray(a) for a in p) for p in params]
    zeros = [tuple(jnp.zeros_like(a) for a in p) for p in jp]
    opt = (zeros, zeros, jnp.zeros((), jnp.int32))
    variables = [keras.Variable(a) for a in params[0]]
    keras_adam = keras.optimizers.Adam(1e-3)
    for _ in range(3):
        jp, opt = jax_train._adam(jp, [tuple(jnp.asarray(g) for g in grads[0])], opt,
                                  jnp.asarray([1e-3]))
        keras_adam.apply_gradients(zip([tf.constant(g) for g in grads[0]], variables))
    for mine, theirs in zip(jp[0], variables):
        np.testing.assert_allclose(np.asarray(mine), theirs.numpy(), rtol=1e-5, atol=1e-7)


def test_cosine_with_warmup():
    assert jax_train.cosine_lr(1e-3, 0.0) == pytest.approx(1e-3)
    assert jax_train.cosine_lr(1e-3, 1.0) == pytest.approx(1e-5)
    assert jax_train.cosine_lr(1e-3, 0.01, warmup=0.02) == pytest.approx(
        0.5 * jax_train.cosine_lr(1e-3, 0.01))


def test_the_timed_loop_keeps_one_call_queued(tmp_path):
    """Dispatch is asynchronous: without waiting, the wall clock (cosine, budget) would time
    the queueing of calls, not the work."""
    issued = []

    class Loss:
        waited = False

        def block_until_ready(self):
            self.waited = True
            return self

        def __array__(self, dtype=None, copy=None):
            return np.zeros((), dtype or np.float32)

    def call(state, bank, key, lr):
        assert all(loss.waited for loss in issued[:-1]), f"{len(issued)} calls queued"
        issued.append(Loss())
        return state, issued[-1]

    loop = jax_train._Loop.__new__(jax_train._Loop)
    loop.config = jax_train.JaxTrainConfig(run_dir=str(tmp_path), scale=(3,), minutes=0.05,
                                           steps_per_call=1, val_every_minutes=1.0)
    loop.state, loop.bank, loop.call = ([], None), None, call
    loop.key = jax.random.PRNGKey(0)
    jax.random.split(loop.key)  # compiled before the clock starts (a loaded host is slow at it)
    loop.event = lambda step, minutes, lr, losses: {"loss": 0.0, "val_psnr": 0.0,
                                                    "patches_per_s": 0.0}
    loop.run = type("Run", (), {"save_weights": lambda self, *a: None})()
    steps, _ = loop.run_for()
    assert steps == len(issued) > 3


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("jax")
    record_dir = tiny_records(root, 6, (60, 66), seed=3, val_fraction=0.34, stride=12)
    packs.write_pack(record_dir, str(root / "images.npz"))
    return root, record_dir


def test_validator_equals_the_tensorflow_metric(bundle):
    root, record_dir = bundle
    model = build_srcnn(SMALL, seed=2, dtype="float32")
    images = packs.val_images(packs.read_pack(str(root / "images.npz")))
    got = jax_train.Validator(images, SMALL)(_params(model))
    predict = lambda x: super_resolve(model, SMALL, tf.constant(x[None]))[0].numpy()  # noqa
    want = predictors.mean_psnr(predict, [(inp, hr) for _, inp, hr in images], 3)
    assert got == {3: pytest.approx(want, abs=1e-3)}


def test_run_from_a_warm_start_exports_with_its_chain(bundle, tmp_path):
    root, record_dir = bundle
    model = build_srcnn(SMALL, seed=4, dtype="float32")
    init = {"model": chains.architecture(vars(SMALL)), "scale": 3, "label": "srcnn_x3/7",
            "chain": [{"model": "srcnn_x3/7", "steps": 10, "minutes": 1.0, "init_from": None}]}
    weights.write_weights(str(tmp_path / "init.npz"), _params(model), init)
    config = jax_train.JaxTrainConfig(
        run_dir=str(tmp_path / "run"), scale=(3.0,), model=SMALL, minutes=0.05, batch_size=8,
        precision="float32", steps_per_call=4, val_every_minutes=0.005, learning_rate=1e-3)
    summary = jax_train.train(config, str(root / "images.npz"), str(tmp_path / "init.npz"))
    events = runs.RunDir(config.run_dir).metrics()
    assert events[0]["step"] == 0 and events[-1]["step"] == summary["steps"] >= 8
    assert summary["best_val_psnr"] > events[0]["val_psnr"] + 1  # it learns
    path = export.export_run(config.run_dir, str(tmp_path / "models"), name="srcnn_x3")
    meta = runs.read_json(os.path.join(path, "metadata.json"))
    assert meta["best_step"] == summary["best_step"] and meta["scale"] == 3
    assert [s["model"] for s in meta["training_chain"]] == ["srcnn_x3/7", "run"]
    assert meta["training_chain"][-1]["device"].startswith("cpu")
    assert meta["training_chain"][-1]["batch_size"] == 8  # the figure counts patches
    assert {k: meta["training_chain"][-1][k] for k in
            ("learning_rate", "schedule", "warmup_fraction", "precision")} == {
        "learning_rate": 1e-3, "schedule": "cosine", "warmup_fraction": config.warmup_fraction,
        "precision": "float32"}
    assert meta["accelerator_training_minutes"] == pytest.approx(summary["minutes"], abs=0.02)
    assert meta["total_training_minutes"] == 1.0  # CPU minutes only
    exported, cfg, _ = runs.load_export(path)  # its held-out PSNR is the run's best (to a few
    # pixels rounded the other way: XLA's and TensorFlow's convolutions sum in other orders)
    images = packs.val_images(packs.read_pack(str(root / "images.npz")))
    predict = lambda x: super_resolve(exported, cfg, tf.constant(x[None]))[0].numpy()  # noqa
    assert predictors.mean_psnr(predict, [(i, h) for _, i, h in images], 3) == pytest.approx(
        summary["best_val_psnr"], abs=1e-3)


def test_the_weight_average_is_train_py_s_and_is_kept_as_best(bundle, tmp_path):
    from srcnn_tf.optim import WeightAverage

    model, twin = build_srcnn(SMALL, seed=1), build_srcnn(SMALL, seed=2)
    average = WeightAverage(model, twin, 0.5)
    average.reset()
    avg = [tuple(jnp.asarray(a) for a in p) for p in _params(model)]
    rng = np.random.default_rng(0)
    for t in range(4):
        model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.weights])
        average.update()
        avg = jax_train._average(avg, [tuple(jnp.asarray(a) for a in p) for p in _params(model)],
                                 jnp.int32(t), 0.5)
    for mine, theirs in zip(jax.tree.leaves(avg), jax.tree.leaves(_params(twin))):
        np.testing.assert_allclose(np.asarray(mine), theirs, rtol=1e-6, atol=1e-6)
    root, _ = bundle
    config = jax_train.JaxTrainConfig(
        run_dir=str(tmp_path / "run"), scale=(3.0,), model=SMALL, minutes=0.03, batch_size=8,
        precision="float32", steps_per_call=4, val_every_minutes=0.005, learning_rate=1e-3,
        ema_decay=0.9)
    jax_train.train(config, str(root / "images.npz"))
    run = runs.RunDir(config.run_dir)
    assert all(np.isfinite(e["val_psnr_raw"]) for e in run.metrics()[1:])
    best, best_info = weights.read_weights(run.checkpoint("best"))
    last, _ = weights.read_weights(run.checkpoint("latest"))
    assert not np.allclose(best[0][0], last[0][0])
    assert best_info["chain"][-1]["ema_decay"] == 0.9


def test_a_run_continued_from_a_run_s_weights_keeps_the_chain(bundle, tmp_path):
    """Where TensorFlow is absent (no make jax-bundle), the saved weights carry the chain."""
    root, _ = bundle
    init = {"model": chains.architecture(vars(SMALL)), "scale": 3, "label": "srcnn_x3/7",
            "chain": [{"model": "srcnn_x3/7", "steps": 10, "minutes": 1.0, "init_from": None}]}
    weights.write_weights(str(tmp_path / "init.npz"), _params(build_srcnn(SMALL, seed=4)), init)
    config = jax_train.JaxTrainConfig(
        run_dir=str(tmp_path / "first"), scale=(3.0,), model=SMALL, minutes=0.03, batch_size=8,
        precision="float32", steps_per_call=4, val_every_minutes=0.005, learning_rate=1e-3)
    jax_train.train(config, str(root / "images.npz"), str(tmp_path / "init.npz"))
    best = runs.RunDir(config.run_dir).checkpoint("best")
    second = dataclasses.replace(config, run_dir=str(tmp_path / "second"))
    jax_train.train(second, str(root / "images.npz"), config.run_dir)  # its best weights
    meta = runs.read_json(os.path.join(
        export.export_run(second.run_dir, str(tmp_path / "models"), name="srcnn_x3"),
        "metadata.json"))
    chain = meta["training_chain"]
    assert [s["model"] for s in chain] == ["srcnn_x3/7", "first", "second"]
    assert chain[1]["steps"] == runs.RunDir.step_of(best) and chain[2]["init_from"] == "first"
    assert chain[1]["val_psnr"] == runs.RunDir(config.run_dir).event_at(chain[1]["steps"])[
        "val_psnr"]
    assert plots.plot_training(second.run_dir, str(tmp_path / "curves.png"))  # make figures


def test_multiscale_run_starts_from_single_scale_weights(bundle, tmp_path):
    root, _ = bundle
    model = build_srcnn(SMALL, seed=5, dtype="float32")
    weights.write_weights(str(tmp_path / "init.npz"), _params(model), {})
    ms = ModelConfig(n1=8, n2=4, scale_input=True)
    params, _ = jax_model.start_params(ms, str(tmp_path / "init.npz"), 0)
    assert params[0][0].shape == (9, 9, 3, 8) and not params[0][0][:, :, 1:].any()
    config = jax_train.JaxTrainConfig(
        run_dir=str(tmp_path / "ms"), scale=(2.0, 3.0), model=ms, minutes=0.01, batch_size=8,
        precision="float32", steps_per_call=2, blind_fraction=0.2)
    jax_train.train(config, str(root / "images.npz"), str(tmp_path / "init.npz"))
    last = runs.RunDir(config.run_dir).metrics()[-1]
    assert {"val_psnr_x2", "val_psnr_x3"} <= set(last)
    assert runs.load_model(config.run_dir)[1].scale_input


def test_the_trainer_imports_without_tensorflow_or_crc32c():
    """What an accelerator machine with JAX alone needs (no TensorFlow, no google-crc32c)."""
    code = ("import sys; sys.modules['tensorflow'] = sys.modules['google_crc32c'] = None; "
            "import pipelines.train_jax, srcnn_tf.jax_train, srcnn_tf.packs")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_wrong_weights_and_settings_are_named(tmp_path):
    model = build_srcnn(ModelConfig(n1=6, n2=3), dtype="float32")
    weights.write_weights(str(tmp_path / "w.npz"), _params(model), {})
    with pytest.raises(ValueError, match="w.npz: weights of shapes"):
        jax_model.start_params(SMALL, str(tmp_path / "w.npz"), 0)
    with pytest.raises(FileNotFoundError, match="holds no best/weights-<step>.npz"):
        jax_model.start_params(SMALL, str(tmp_path), 0)
    (tmp_path / "x.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match="x.npz: not a weights file"):
        weights.read_weights(str(tmp_path / "x.npz"))
    with pytest.raises(ValueError, match="several factors need a scale_input model"):
        jax_train.JaxTrainConfig(run_dir="r", scale=(2.0, 3.0)).validate()
    with pytest.raises(ValueError, match="batch_size"):
        jax_train.JaxTrainConfig(run_dir="r", scale=(3.0,), batch_size=0).validate()


@pytest.mark.parametrize("flags, message", [
    (["--scale=5"], "--scale"), (["--pack=missing.npz"], "--pack"),
    (["--init=missing.npz"], "--init"), (["--init=tests"], "init: tests holds no best"),
    (["--model=9-4-5"], "--model")])
def test_pipeline_bad_flags(bundle, tmp_path, flags, message):
    root, _ = bundle
    args = [f"--pack={root / 'images.npz'}", f"--run_dir={tmp_path / 'r'}", *flags]
    r = subprocess.run([sys.executable, "-m", "pipelines.train_jax", *args], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr


def test_bundle_pipeline_writes_the_pack_and_the_warm_start(bundle, tmp_path):
    root, record_dir = bundle
    model = build_srcnn(SMALL, seed=6, dtype="float32")
    source = export.export_saved_model(model, SMALL, 3, str(tmp_path / "models"), {},
                                       name="srcnn_x3")
    r = subprocess.run([sys.executable, "-m", "pipelines.jax_bundle", f"--records={record_dir}",
                        f"--out_dir={tmp_path / 'b'}", f"--init_from={source}"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(packs.read_pack(str(tmp_path / "b" / "images.npz")).train) == 4
    params, info = weights.read_weights(str(tmp_path / "b" / "srcnn_x3-1.npz"))
    assert info["label"] == "srcnn_x3/1" and info["model"]["n1"] == 8
    for (k, b), (k2, b2) in zip(params, _params(model)):
        np.testing.assert_array_equal(k, k2)
        np.testing.assert_array_equal(b, b2)
    r = subprocess.run([sys.executable, "-m", "pipelines.jax_bundle", "--records=nowhere"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "--records" in r.stderr and "Traceback" not in r.stderr
