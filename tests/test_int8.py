"""Full-integer int8: weights rounded for the output, channels equalized, the int8 graph
computed in float exactly as the TFLite file computes it, and distillation that keeps the
best held-out result."""

from __future__ import annotations

import contextlib
import os
import tempfile

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from srcnn_tf import imaging, int8, predictors
from srcnn_tf import data as data_lib
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers, pad_for_valid, with_scale

from conftest import natural_like, tiny_records
from test_tflite import CONFIG, PHONE_OPS, _calibration


def test_int8_rounding_lands_on_the_grid_and_beats_nearest_rounding():
    calibration = _calibration()
    model = build_srcnn(CONFIG, seed=5, dtype="float32")
    before = [layer.get_weights()[0] for layer in conv_layers(model)]
    last_in = tf.keras.Model(model.input, conv_layers(model)[2].input)
    inputs = np.concatenate([last_in(x).numpy() for x in calibration])
    int8.round_for_int8(model, calibration)
    for layer, w0 in zip(conv_layers(model), before):
        w = layer.get_weights()[0]
        scale = np.abs(w).max(axis=(0, 1, 2)) / 127.0  # TFLite's per-channel symmetric scale
        np.testing.assert_allclose(scale, np.abs(w0).max(axis=(0, 1, 2)) / 127.0, rtol=1e-6)
        q = w / scale
        np.testing.assert_allclose(q, np.round(q), atol=1e-3)  # exactly on the int8 grid
        assert np.all(np.abs(np.round(q)) <= 127)
    # The last layer's output error on the calibration inputs is no worse than nearest rounding.
    w0, w = before[2], conv_layers(model)[2].get_weights()[0]
    nearest = np.round(w0 / (np.abs(w0).max() / 127.0)) * (np.abs(w0).max() / 127.0)

    def err(kernel):
        return float(np.mean(tf.nn.conv2d(inputs, kernel - w0, 1, "VALID").numpy() ** 2))

    assert err(w) < 0.8 * err(nearest)


def test_equalization_keeps_the_function_and_evens_out_channel_ranges():
    calibration = _calibration()
    model = build_srcnn(CONFIG, seed=7, dtype="float32")
    x = calibration[0]
    before = model(x).numpy()
    first = tf.keras.Model(model.input, conv_layers(model)[0].output)
    def spread() -> float:  # log-range of the channels' maxima (channels that never fire aside)
        top = np.max([first(c).numpy().max(axis=(0, 1, 2)) for c in calibration], axis=0)
        return float(np.ptp(np.log(top[alive])))

    alive = np.max([first(c).numpy().max(axis=(0, 1, 2)) for c in calibration], axis=0) > 1e-6
    was = spread()
    int8.equalize_activations(model, calibration, bound=1e6)
    np.testing.assert_allclose(model(x).numpy(), before, atol=1e-5)
    assert spread() < 1e-3 < was  # every channel now reaches the same maximum


def test_the_tflite_file_computes_the_fake_quant_graph():
    model = build_srcnn(CONFIG, seed=11, dtype="float32")
    plan = int8.prepare(model, CONFIG, _calibration())
    assert len(plan.act_max) == 2 and plan.border == CONFIG.border
    hr = natural_like(36, 45, c=1, seed=21).astype(np.float64) / 255.0
    y = imaging.degrade(hr, 3).astype(np.float32)
    sim = int8.fake_quant_forward(plan.layers, plan.act_max, tf.constant(y[None]),
                                  plan.border)[0].numpy()
    flat = int8.convert(plan)
    ops = {d["op_name"] for d in Interpreter(model_content=flat)._get_ops_details()}
    assert "CONV_2D" in ops and ops <= PHONE_OPS, ops
    interpreter = Interpreter(model_content=flat)
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    convs = [op for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
    assert len(convs) == 3 and all(dtypes[op["inputs"][i]] == np.int8 and
                                   dtypes[op["outputs"][0]] == np.int8
                                   for op in convs for i in (0, 1)), "every convolution in int8"
    with _written(flat) as path:
        got = predictors.TFLiteY(path)(y)
    assert got.shape == y.shape
    # Same int8 levels (1/255 apart) but for accumulator rounding ties.
    levels = np.abs(got - sim) * 255
    assert levels.max() <= 1.01 and np.mean(levels > 0.5) < 0.01, (levels.max(),
                                                                  np.mean(levels > 0.5))
    float_out = int8.fake_quant_forward(plan.layers, plan.act_max, tf.constant(y[None]),
                                        plan.border, quantize=False)[0].numpy()
    assert 0 < np.abs(sim - float_out).mean() < 0.02  # quantized, and close to float


@contextlib.contextmanager
def _written(content: bytes):
    fd, path = tempfile.mkstemp(suffix=".tflite")
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    try:
        yield path
    finally:
        os.remove(path)


def test_finetune_returns_the_best_held_out_int8_graph(tmp_path):
    record_dir = tiny_records(tmp_path, 3, (80, 84), seed=40, val_fraction=0.34)
    config = ModelConfig(n1=8, n2=4)
    model = build_srcnn(config, seed=2, dtype="float32")
    start = int8.prepare(model, config, _calibration())
    teacher = [tuple(w for w in layer.get_weights()) for layer in conv_layers(model)]
    val = data_lib.val_images(record_dir)
    tuned = int8.finetune(start, teacher, record_dir, steps=30, learning_rate=1e-3,
                          check_every=10)
    before, after = int8._val_psnr(start, val), int8._val_psnr(tuned, val)
    assert after >= before
    changed = any(not np.array_equal(a[0], b[0]) for a, b in zip(start.layers, tuned.layers))
    assert changed == (after > before)
    assert tuned.act_max == start.act_max and tuned.border == start.border


def test_a_multi_scale_model_reads_the_factor_as_an_int8_plane():
    config = ModelConfig(n1=8, n2=4, scale_input=True)
    model = build_srcnn(config, seed=13, dtype="float32")
    hr = natural_like(36, 45, c=1, seed=22).astype(np.float64) / 255.0
    y = imaging.degrade(hr, 3).astype(np.float32)
    first, last = conv_layers(model)[0], conv_layers(model)[-1]
    kernel, bias = first.get_weights()
    first.set_weights([kernel * np.array([1.0, 1.0, 0.05])[:, None], bias])
    kernel, bias = last.get_weights()  # outputs inside (0, 1), where the clip hides nothing
    raw = model(pad_for_valid(with_scale(y[None], 2.5), config.border)).numpy()
    gain = 0.1 / raw.std()
    last.set_weights([kernel * gain, bias * gain + 0.5 - raw.mean() * gain])
    want = {s: model(pad_for_valid(with_scale(y[None], s), config.border)).numpy()[0]
            for s in (1.5, 3.5)}
    assert all(np.mean((w > 0.02) & (w < 0.98)) > 0.9 for w in want.values())
    calibration = [with_scale(x, s).numpy() for x in _calibration() for s in (1.5, 3.5)]
    plan = int8.prepare(model, config, calibration)
    assert plan.scale_input
    with _written(int8.convert(plan)) as path:
        for s in (1.5, 3.5):
            x = int8.with_factor(tf.constant(y[None]), s)
            # the known plane folded into the bias, the factor plane rescaled: the same function
            # up to the weights' int8 rounding
            plain = int8.fake_quant_forward(plan.layers, plan.act_max, x, plan.border,
                                            quantize=False)[0].numpy()
            assert np.abs(plain - np.clip(want[s], 0, 1)).mean() < 5e-3
            sim = int8.fake_quant_forward(plan.layers, plan.act_max, x, plan.border)[0].numpy()
            levels = np.abs(predictors.TFLiteY(path, scale=s)(y) - sim) * 255
            assert levels.max() <= 1.01 and np.mean(levels > 0.5) < 0.05  # requantization ties
