"""Full-integer int8 for TFLite: the weights and activation ranges prepared in float so that the
int8 graph loses the least, and that graph written with its ranges stated.

The int8 graph is the float one with every tensor on a grid: the input on [0, 1] in 255 steps,
each ReLU output on [0, max] in 255 steps, the clipped output on [0, 1] (the uint8 levels, so it
costs nothing beyond the final rounding), each kernel per output channel on max|w| / 127 steps.
`fake_quant_forward` computes exactly that in float with FakeQuant ops, and `convert` hands the
same ops to the TFLite converter, which takes their ranges as the int8 ones: what is measured
in float is what the file computes (to one int8 level; tests/test_int8.py).

The steps, each measured on `srcnn_x2/4` (Set5 / Set14 dB lost against the SavedModel):
equalized channels and optimised rounding with statistics of the padded patches the graph sees
0.098 / 0.058 (unpadded statistics: 0.122 / 0.061); then `finetune`, a distillation of the
float model into the int8 one, 0.081 / 0.049.

A multi-scale model's file takes (y, scale) like its float files and reads the factor as an
int8 input plane (FACTOR_PLANE), so its first layer keeps a constant bias and the same steps
apply.
"""

from __future__ import annotations

import logging
import warnings
from typing import NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from srcnn_tf import data as data_lib
from srcnn_tf import predictors, records
from srcnn_tf.model import ModelConfig, conv_layers, pad_for_valid, with_scale

log = logging.getLogger(__name__)

INPUT_RANGE = (0.0, 1.0)  # the whole Y range: a gray image's Y reaches 0 and 1
# A multi-scale model reads the factor s as a constant plane; in the int8 input tensor (one
# scale for all channels, range [0, 1]) it is s / 5.1, so factors in steps of 0.02 (1.5, 2.5 ...)
# are exact int8 levels, and the first layer's weights on that plane are multiplied by 5.1.
FACTOR_PLANE = 5.1

Layers = list[tuple[np.ndarray, np.ndarray]]  # (kernel (fh, fw, cin, cout), bias (cout,)) float32


class Int8Plan(NamedTuple):
    """What the int8 graph is made of: float weights (put on their int8 grid by the graph),
    the top of each ReLU output's range, the edge padding of the input."""

    layers: Layers
    act_max: tuple[float, ...]
    border: int
    scale_input: bool = False  # a multi-scale model: planes (1, s / FACTOR_PLANE) follow Y


def _optimised_rounding(w: np.ndarray, gram: np.ndarray, sweeps: int = 50) -> np.ndarray:
    """Integers q in [-127, 127] (w's int8 grid, scale max|w| / 127) minimising the output error
    (q s - w)^T G (q s - w) for inputs with Gram matrix G: nearest rounding, then coordinate
    descent over +-1 steps. The largest weight keeps 127, so the converter finds the same scale
    and its own rounding reproduces q exactly."""
    s = np.abs(w).max() / 127.0
    if s == 0:
        return np.zeros_like(w)
    q = np.round(w / s)
    g = gram @ (q * s - w)
    fixed = int(np.argmax(np.abs(w)))
    for _ in range(sweeps):
        changed = False
        for i in range(len(w)):
            for delta in (-1.0, 1.0):
                if i == fixed or abs(q[i] + delta) > 127:
                    continue
                if 2 * delta * s * g[i] + s * s * gram[i, i] < -1e-18:
                    q[i] += delta
                    g += delta * s * gram[:, i]
                    changed = True
                    break
        if not changed:
            break
    return q * s


def equalize_activations(model, representative: list[np.ndarray], bound: float = 16.0) -> None:
    """Rescales each ReLU channel so that all channels of a layer reach the same range on the
    calibration inputs (cross-layer equalization): channel i of a convolution is multiplied by
    c_i = max range / range_i (within [1/bound, bound]) and the next convolution's input
    channel i divided by c_i. ReLU(c x) = c ReLU(x) for c > 0, so the float model computes the
    same function; int8's one scale per activation tensor then serves every channel.
    """
    layers = conv_layers(model)
    for la, lb in zip(layers[:-1], layers[1:]):
        sub = tf.keras.Model(model.input, la.output)
        ranges = np.max([sub(x).numpy().max(axis=(0, 1, 2)) for x in representative], axis=0)
        c = np.clip(ranges.max() / np.maximum(ranges, 1e-8), 1.0 / bound, bound)
        wa, ba = la.get_weights()
        wb, bb = lb.get_weights()
        la.set_weights([wa * c, ba * c])
        lb.set_weights([wb / c[None, None, :, None], bb])


def round_for_int8(model, representative: list[np.ndarray]) -> None:
    """Moves every convolution's weights onto the int8 grid TFLite uses (symmetric, per output
    channel), each weight rounded up or down so that the layer's output on the calibration
    inputs changes least (AdaRound-style, solved on the Gram matrix of the layer's inputs).

    Nearest rounding of the reconstruction layer alone (one output channel, so one scale for
    its 800 weights) costs SRCNN x3 0.23 dB on Set5; this rounding costs 0.00 dB.
    """
    for layer in conv_layers(model):
        sub = tf.keras.Model(model.input, layer.input)
        inputs = np.concatenate([sub(x).numpy() for x in representative])
        kernel, bias = layer.get_weights()
        fh, fw, cin, cout = kernel.shape
        cols = tf.image.extract_patches(inputs, [1, fh, fw, 1], [1, 1, 1, 1], [1, 1, 1, 1],
                                        "VALID").numpy().reshape(-1, fh * fw * cin)
        gram = cols.T.astype(np.float64) @ cols / len(cols)
        flat = kernel.reshape(-1, cout).astype(np.float64)
        rounded = np.stack([_optimised_rounding(flat[:, c], gram) for c in range(cout)], 1)
        layer.set_weights([rounded.reshape(kernel.shape).astype(np.float32), bias])


def _fq_activation(x: tf.Tensor, top: float | tf.Tensor, bottom: float = 0.0) -> tf.Tensor:
    return tf.quantization.fake_quant_with_min_max_vars(x, bottom, top, num_bits=8)


def _fq_kernel(kernel: tf.Tensor) -> tf.Tensor:
    top = tf.stop_gradient(tf.reduce_max(tf.abs(kernel), axis=[0, 1, 2]))
    return tf.quantization.fake_quant_with_min_max_vars_per_channel(kernel, -top, top, num_bits=8,
                                                                    narrow_range=True)


def fake_quant_forward(layers: Sequence[tuple], act_max: Sequence[float], x: tf.Tensor,
                       border: int = 0, quantize: bool = True) -> tf.Tensor:
    """The int8 graph in float: bicubic Y (B, H, W, 1) float32 in [0, 1] (for a multi-scale
    model (B, H, W, 3), `with_factor`) -> SR Y clipped to [0, 1], (B, H, W, 1) when `border`
    edge-pads the input first (whole images), 2 * border smaller when it is 0 (training
    patches). `quantize=False`: the float graph."""
    x = pad_for_valid(x, border)
    if quantize:
        x = _fq_activation(x, INPUT_RANGE[1], INPUT_RANGE[0])
    last = len(layers) - 1
    for i, (kernel, bias) in enumerate(layers):
        x = tf.nn.bias_add(tf.nn.conv2d(x, _fq_kernel(kernel) if quantize else kernel, 1,
                                        "VALID"), bias)
        if i < last:
            x = tf.nn.relu(x)
            x = _fq_activation(x, act_max[i]) if quantize else x
    # FakeQuant on [0, 1] clips as well; on the convolution's own output, so that the
    # converter quantizes that convolution too.
    return _fq_activation(x, 1.0) if quantize else tf.clip_by_value(x, 0.0, 1.0)


def _layers(model) -> Layers:
    return [tuple(w.astype(np.float32) for w in layer.get_weights())
            for layer in conv_layers(model)]


def activation_maxima(layers: Layers, padded: list[np.ndarray]) -> tuple[float, ...]:
    """The top of each ReLU output's range over the calibration inputs (padded patches)."""
    tops = [0.0] * (len(layers) - 1)
    for x in padded:
        h = tf.constant(x)
        for i, (kernel, bias) in enumerate(layers[:-1]):
            h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(h, kernel, 1, "VALID"), bias))
            tops[i] = max(tops[i], float(tf.reduce_max(h)))
    return tuple(tops)


def prepare(model, config: ModelConfig, representative: list[np.ndarray],
            record_dir: str | None = None, finetune_steps: int = 0, learning_rate: float = 2e-5,
            seed: int = 0) -> Int8Plan:
    """The int8 plan of a single-scale float Keras model (changed in place: equalized and
    rounded, the same function up to the rounding). `representative`: unpadded training patches
    (1, P, P, 1); with `finetune_steps`, `finetune` on the patches of `record_dir`."""
    if config.scale_input:  # the same function with int8-friendly plane weights
        first = conv_layers(model)[0]
        kernel, bias = first.get_weights()
        # The planes are constant (edge padding keeps them so): only each filter's sum over
        # a plane matters. The "known" plane (always 1 when told) goes into the bias; the factor
        # plane's sum is spread evenly over the taps, the smallest weights that give it, so
        # that it does not set the channel's int8 scale for the Y weights.
        bias = bias + kernel[:, :, 1, :].sum(axis=(0, 1))
        kernel[:, :, 1, :] = 0.0
        taps = kernel.shape[0] * kernel.shape[1]
        kernel[:, :, 2, :] = kernel[:, :, 2, :].sum(axis=(0, 1)) * FACTOR_PLANE / taps
        first.set_weights([kernel, bias])
        representative = [_factor_plane(x) for x in representative]
    # Statistics of the padded patches the graph sees: unpadded ones let one first-layer channel
    # exceed the common range by half (0.024 dB more lost on x2 Set5).
    padded = [pad_for_valid(x, config.border).numpy() for x in representative]
    equalize_activations(model, padded)
    teacher = _layers(model)
    round_for_int8(model, padded)
    layers = _layers(model)
    plan = Int8Plan(layers, activation_maxima(layers, padded), config.border, config.scale_input)
    if finetune_steps and record_dir:
        plan = finetune(plan, teacher, record_dir, finetune_steps, learning_rate, seed)
    return plan


def _factor_plane(x: np.ndarray | tf.Tensor) -> np.ndarray | tf.Tensor:
    """(..., 3) Y, known, s as the Keras model reads them -> Y, known, s / FACTOR_PLANE."""
    scale = np.array([1.0, 1.0, 1.0 / FACTOR_PLANE], np.float32)
    return x * scale if isinstance(x, tf.Tensor) else (x * scale).astype(np.float32)


def with_factor(y: tf.Tensor, scale: tf.Tensor | float) -> tf.Tensor:
    """Y (B, H, W, 1) -> the int8 graph's input for a multi-scale model, (B, H, W, 3)."""
    return _factor_plane(with_scale(y, scale))


def _val_psnr(plan: Int8Plan, val: list[data_lib.ValImage]) -> float:
    """Mean held-out PSNR of the int8 graph (for several factors, the mean of their means)."""
    run = tf.function(lambda x: fake_quant_forward(plan.layers, plan.act_max, x, plan.border),
                      reduce_retracing=True)

    def predictor_at(s: float) -> predictors.Predictor:
        def predict(x: np.ndarray) -> np.ndarray:
            x = tf.constant(x[None])
            return run(with_factor(x, s) if plan.scale_input else x).numpy()[0]

        return predict

    return float(np.mean(list(predictors.mean_psnr_by_scale(predictor_at, val).values())))


def finetune(plan: Int8Plan, teacher: Layers, record_dir: str, steps: int,
             learning_rate: float = 2e-5, seed: int = 0, check_every: int = 250) -> Int8Plan:
    """Quantization-aware distillation: the int8 graph's weights (straight-through gradients
    of the FakeQuant ops, ranges fixed) learn to match the float `teacher`'s output on the
    training patches of `record_dir` (MSE, Adam with cosine decay, batch 128). The teacher,
    not the HR label, is the target: the float model is already the best fit, and its output
    has none of the labels' noise. Keeps the weights with the best held-out validation PSNR of
    the int8 graph, the starting ones included."""
    patches = records.load_manifest(record_dir)["train"]["patches"]
    batches = data_lib.TrainData(record_dir, min(128, patches), augment=True,
                                 shuffle_buffer=4096, seed=seed, scale_input=plan.scale_input)
    val = data_lib.val_images(record_dir)
    student = [(tf.Variable(k), tf.Variable(b)) for k, b in plan.layers]
    variables = [v for pair in student for v in pair]
    opt = tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.CosineDecay(learning_rate,
                                                                             steps))

    @tf.function
    def step(x: tf.Tensor) -> tf.Tensor:
        x = _factor_plane(x) if plan.scale_input else x
        target = fake_quant_forward(teacher, plan.act_max, x, quantize=False)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(fake_quant_forward(student, plan.act_max, x) - target))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def current() -> Int8Plan:
        return plan._replace(layers=[(k.numpy(), b.numpy()) for k, b in student])

    best = (_val_psnr(plan, val), plan) if val else (-np.inf, plan)
    log.info("int8 fine-tuning from held-out %.4f dB, %d steps", best[0], steps)
    for done, (x, _) in enumerate(batches.stream(), start=1):
        loss = float(step(x))
        if val and (done % check_every == 0 or done == steps):
            psnr = _val_psnr(current(), val)
            log.info("int8 fine-tuning step %d: loss %.3g, held-out %.4f dB", done, loss, psnr)
            if psnr > best[0]:
                best = (psnr, current())
        if done == steps:
            break
    return best[1] if val else current()


def convert(plan: Int8Plan) -> bytes:
    """The TFLite flatbuffer of the plan's int8 graph: float32 input (1, H, W, 1), any H and W,
    int8 inside, float32 output."""
    module = tf.Module()
    layers = [(tf.constant(k), tf.constant(b)) for k, b in plan.layers]
    y_spec = tf.TensorSpec([1, None, None, 1], tf.float32)
    if plan.scale_input:  # inputs y and scale, as the float files of such a model
        @tf.function(input_signature=[y_spec, tf.TensorSpec([], tf.float32)])
        def function(y: tf.Tensor, scale: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": fake_quant_forward(layers, plan.act_max, with_factor(y, scale),
                                            plan.border)}
    else:
        @tf.function(input_signature=[y_spec])
        def function(y: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": fake_quant_forward(layers, plan.act_max, y, plan.border)}

    module.function = function
    conv = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()],
                                                           module)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    with warnings.catch_warnings():  # the input's range is the first FakeQuant's: none missing
        warnings.filterwarnings("ignore", "Statistics for quantized inputs")
        return conv.convert()
