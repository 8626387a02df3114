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
