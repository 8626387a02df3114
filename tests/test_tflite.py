"""TFLite for phones: a graph of only padding, convolutions and activations; int8 weights
rounded for the output, not to the nearest grid point."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from srcnn_tf import export, imaging
from srcnn_tf import tflite as tflite_lib
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers

from conftest import natural_like

CONFIG = ModelConfig(n1=8, n2=4)
PHONE_OPS = {"CONV_2D", "CONCATENATION", "STRIDED_SLICE", "TILE", "RELU", "MINIMUM", "MAXIMUM",
             "QUANTIZE", "DEQUANTIZE"}


def _calibration(n: int = 12) -> list[np.ndarray]:
    out = []
    for i in range(n):
        hr = natural_like(33, 33, c=1, seed=100 + i).astype(np.float64) / 255.0
        out.append(imaging.degrade(hr, 3).astype(np.float32)[None])
    return out


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    return export.export_saved_model(build_srcnn(CONFIG, seed=3), CONFIG, 3,
                                     str(tmp_path_factory.mktemp("sm")))


def _ops(flatbuffer: bytes) -> set[str]:
    from ai_edge_litert.interpreter import Interpreter

    return {d["op_name"] for d in Interpreter(model_content=flatbuffer)._get_ops_details()}


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_graph_holds_only_what_a_phone_needs(tiny_export, variant):
    ops = _ops(tflite_lib.convert_tflite(tiny_export, variant, _calibration()))
    assert "CONV_2D" in ops and ops <= PHONE_OPS, ops  # no RANGE, GATHER or shape arithmetic


def test_16x8_quantization_converts(tiny_export):
    """It failed on the RANGE op of the former index-based edge padding."""
    loaded = tf.saved_model.load(tiny_export)
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [convert_variables_to_constants_v2(loaded.signatures["super_resolve_y"])], loaded)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x] for x in _calibration(4))
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    assert "CONV_2D" in _ops(conv.convert())


def test_int8_rounding_lands_on_the_grid_and_beats_nearest_rounding():
    calibration = _calibration()
    model = build_srcnn(CONFIG, seed=5, dtype="float32")
    before = [layer.get_weights()[0] for layer in conv_layers(model)]
    last_in = tf.keras.Model(model.input, conv_layers(model)[2].input)
    inputs = np.concatenate([last_in(x).numpy() for x in calibration])
    tflite_lib.round_for_int8(model, calibration)
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
    tflite_lib.equalize_activations(model, calibration, bound=1e6)
    np.testing.assert_allclose(model(x).numpy(), before, atol=1e-5)
    assert spread() < 1e-3 < was  # every channel now reaches the same maximum
