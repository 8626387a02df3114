"""The exported graph: the functions behind the SavedModel signatures (export.py writes them).

SRModule is a single-scale model with its whole colour pipeline; MultiScaleModule takes the
factor as an input. Both check what TF Serving feeds them (it does not enforce signature shapes)
and answer a bad request with InvalidArgument and a clear message.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from srcnn_tf import imaging, tf_imaging
from srcnn_tf.model import ModelConfig, conv_layers, pad_for_valid


def _as_fed(x: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """`x` with its static shape hidden (a serialize/parse round trip), so that checks and
    reshapes of what was actually fed are not folded away by the graph optimiser: TF Serving
    does not enforce signature shapes."""
    return tf.io.parse_tensor(tf.io.serialize_tensor(x), dtype)


def _checked(x: tf.Tensor, dtype: tf.DType, channels: int | None, name: str, max_pixels: int,
             scale: int) -> tf.Tensor:
    """`x`, once its rank, channels and output size are checked (InvalidArgument with a clear
    message otherwise, before any computation)."""
    fed = _as_fed(x, dtype)
    rank_ok = tf.debugging.assert_equal(tf.rank(fed), 4, message=(
        f"{name} must have rank 4: [batch, height, width, {channels}]"))
    with tf.control_dependencies([rank_ok]):
        shape = tf.shape(fed)
    out_pixels = (tf.cast(shape[0], tf.int64) * tf.cast(shape[1], tf.int64)
                  * tf.cast(shape[2], tf.int64) * scale * scale)
    checks = [] if channels is None else [
        tf.debugging.assert_equal(shape[3], channels, message=(
            f"{name} must have {channels} channel(s) in the last dimension"))]
    checks += [
        tf.debugging.assert_less_equal(out_pixels, tf.constant(max_pixels, tf.int64), message=(
            f"output too large: batch * height * width after upscaling exceeds the cap of "
            f"{max_pixels} pixels set at export; send smaller images or tiles")),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(x)


def _header_int(data: tf.Tensor, offset: int, size: int, big_endian: bool) -> tf.Tensor:
    """An unsigned integer of `size` bytes at `offset` of a (zero-padded) string, as int64."""
    b = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, size), tf.uint8), tf.int64)
    weights = [256 ** (size - 1 - i) if big_endian else 256 ** i for i in range(size)]
    return tf.reduce_sum(b * tf.constant(weights, tf.int64))


def declared_size(data: tf.Tensor) -> tf.Tensor:
    """(height, width) int64 that an encoded PNG, JPEG, GIF or BMP declares in its header, read
    without decoding a pixel; (0, 0) for other formats (the decoder then rejects them)."""
    padded = tf.strings.join([data, tf.constant(b"\0" * 32)])
    magic = tf.strings.substr(padded, 0, 8)

    def bmp() -> tf.Tensor:  # height is signed: negative means top-down rows
        h = _header_int(padded, 22, 4, False)
        return tf.stack([tf.where(h >= 2**31, 2**32 - h, h), _header_int(padded, 18, 4, False)])

    return tf.case([
        (tf.equal(magic, b"\x89PNG\r\n\x1a\n"),
         lambda: tf.stack([_header_int(padded, 20, 4, True), _header_int(padded, 16, 4, True)])),
        (tf.io.is_jpeg(data), lambda: tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)),
        (tf.equal(tf.strings.substr(padded, 0, 4), b"GIF8"),
         lambda: tf.stack([_header_int(padded, 8, 2, False), _header_int(padded, 6, 2, False)])),
        (tf.equal(tf.strings.substr(padded, 0, 2), b"BM"), bmp),
    ], default=lambda: tf.zeros([2], tf.int64))


class SRModule(tf.Module):
    """The exported graph: SRCNN on Y with the whole colour pipeline around it.

    The weights are copied into plain `tf.Variable`s and the three convolutions are written
    with `tf.nn` ops: Keras 3 variables end up in a SavedModel in a form that TF Serving's
    session-based loader (and `saved_model_cli run`) cannot restore, plain variables restore
    through every loader.
    """

    def __init__(self, model: tf.keras.Model, config: ModelConfig, scale: int,
                 max_pixels: int) -> None:
        super().__init__()
        self.config = config
        self.scale = scale  # an int; MultiScaleModule takes the factor as an input instead
        self.max_pixels = max_pixels
        self.kernels, self.biases = [], []
        for layer in conv_layers(model):
            kernel, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
            self.kernels.append(tf.Variable(kernel, trainable=False, name=f"{layer.name}/kernel"))
            self.biases.append(tf.Variable(bias, trainable=False, name=f"{layer.name}/bias"))

    def _sr_y(self, y: tf.Tensor, scale: tf.Tensor | None = None) -> tf.Tensor:
        """Bicubic-upscaled Y (B, H, W, 1) float32 [0, 1] -> SR Y, same shape, clipped to
        [0, 1]; the same numbers as model.super_resolve (told `scale`, a float scalar, when
        the model has scale_input; blind when None)."""
        b = self.config.border
        x = pad_for_valid(y, b)
        last = len(self.kernels) - 1
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            if i == 0 and self.config.scale_input:
                kernel, bias = self._first_layer(kernel, bias, scale)
            x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, self.config.padding.upper()), bias)
            x = x if i == last else tf.nn.relu(x)
        if self.config.padding == "same" and b:
            x = x[:, b:-b, b:-b, :]
        return tf.clip_by_value(x, 0.0, 1.0)

    def _first_layer(self, kernel: tf.Tensor, bias: tf.Tensor,
                     scale: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor]:
        """A scale_input model's first convolution on the image channels alone: the scale
        planes are constant (1, scale) or (0, 0) over the edge-padded input, so their part of
        the convolution is a bias, known + scale times the kernel sums (exact; and no planes
        to build, so TFLite graphs stay three convolutions)."""
        c = self.config.channels
        if scale is None:
            return kernel[:, :, :c], bias
        plane = tf.reduce_sum(kernel[:, :, c:], axis=[0, 1])  # (2, n1)
        return kernel[:, :, :c], bias + plane[0] + tf.cast(scale, tf.float32) * plane[1]

    def _sr_rgb(self, rgb: tf.Tensor) -> tf.Tensor:
        """LR RGB float [0, 1] (B, H, W, 3) -> SR RGB uint8 (B, S*H, S*W, 3)."""
        ycc = tf_imaging.rgb_to_ycbcr(tf_imaging.upscale_bicubic(rgb, self.scale))
        ycc = tf.concat([self._sr_y(ycc[..., :1]), ycc[..., 1:]], axis=-1)
        return tf_imaging.to_uint8(tf_imaging.ycbcr_to_rgb(ycc))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="y")])
    def super_resolve_y(self, y: tf.Tensor) -> dict[str, tf.Tensor]:
        y = _checked(y, tf.float32, 1, "y", self.max_pixels, 1)
        return {"y": self._sr_y(y)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")])
    def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        image = _checked(image, tf.uint8, 3, "image", self.max_pixels, self.scale)
        return {"image": self._sr_rgb(tf.cast(image, tf.float32) / 255.0)}

    @tf.function(input_signature=[tf.TensorSpec([1], tf.string, name="image_bytes")])
    def upscale_encoded(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        """PNG/JPEG/GIF/BMP bytes -> PNG bytes (alpha kept, upscaled by the bicubic). The size
        the header declares is checked against max_pixels before decoding. TensorFlow's
        decoders ignore EXIF orientation: send phone photos upright (the serving client does)."""
        # reshape: TF Serving feeds a scalar for {"b64": ...} and [1] for [{"b64": ...}].
        data = tf.reshape(_as_fed(image_bytes, tf.string), [-1])[0]
        hw = declared_size(data)
        fits = tf.debugging.assert_less_equal(
            hw[0] * hw[1] * self.scale * self.scale, tf.constant(self.max_pixels, tf.int64),
            message=(f"output too large: the image's declared height * width after upscaling "
                     f"exceeds the cap of {self.max_pixels} pixels set at export"))
        with tf.control_dependencies([fits]):
            data = tf.identity(data)
        img = tf.io.decode_image(data, expand_animations=False)  # uint8 (H, W, C)
        img = tf.ensure_shape(img, [None, None, None])[None]
        img = _checked(img, tf.uint8, None, "decoded image", self.max_pixels, self.scale)
        png = _encode_sr(img, lambda x: tf_imaging.upscale_bicubic(x, self.scale), self._sr_y,
                         self._sr_rgb)
        return {"image_bytes": tf.reshape(png, [1])}


def _encode_sr(img: tf.Tensor, resize: Callable[[tf.Tensor], tf.Tensor],
               sr_y: Callable[[tf.Tensor], tf.Tensor],
               sr_rgb: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """PNG bytes (scalar string) of the SR of a decoded uint8 (1, H, W, C) image: C = 1 gray
    (its own Y), 3 RGB, 2 / 4 the same with alpha, which is upscaled by `resize` (the bicubic)
    alone. resize/sr_y: float [0, 1] (1, h, w, 1) -> (1, S*h, S*w, 1); sr_rgb: float RGB
    (1, h, w, 3) -> uint8 (1, S*h, S*w, 3)."""
    channels = tf.shape(img)[-1]

    def as_float(x: tf.Tensor) -> tf.Tensor:
        return tf.cast(x, tf.float32) / 255.0

    def encode(sr: tf.Tensor, c: int) -> tf.Tensor:
        def with_alpha() -> tf.Tensor:
            alpha = tf_imaging.to_uint8(resize(as_float(img[..., c:c + 1])))[0]
            return tf.io.encode_png(tf.concat([sr, alpha], axis=-1))
        return tf.cond(channels > c, with_alpha, lambda: tf.io.encode_png(sr))

    def gray() -> tf.Tensor:
        return encode(tf_imaging.to_uint8(sr_y(resize(as_float(img[..., :1]))))[0], 1)

    def colour() -> tf.Tensor:
        return encode(sr_rgb(tf.ensure_shape(as_float(img[..., :3]), [1, None, None, 3]))[0], 3)

    return tf.cond(channels < 3, gray, colour)


def _scale_input(scale: tf.Tensor) -> tf.Tensor:
    """The fed `scale` (any shape with one element) as a float32 scalar, once it is checked: a
    finite number in (1, imaging.MAX_SCALE] (InvalidArgument naming the value). The checks read
    what was fed (_as_fed); the value itself comes straight from the input, so a TFLite
    conversion of the same function keeps only float32 arithmetic."""
    fed = tf.reshape(_as_fed(scale, tf.float32), [-1])
    one = tf.debugging.assert_equal(tf.size(fed), 1, message="scale must be one number")
    with tf.control_dependencies([one]):
        seen = fed[0]
    in_range = tf.logical_and(tf.math.is_finite(seen), tf.logical_and(
        seen > 1.0, seen <= imaging.MAX_SCALE))
    check = tf.debugging.Assert(in_range, [
        f"scale must be a number in (1, {imaging.MAX_SCALE:g}]; got", seen], summarize=1)
    with tf.control_dependencies([check]):
        return tf.identity(tf.reshape(scale, [-1])[0])


class MultiScaleModule(SRModule):
    """The exported graph of a model trained on several factors: any factor in (1, 4] given
    with the image. Bicubic by tf_imaging.resize_bicubic (output ceil(scale * side))."""

    def _checked_size(self, shape: tf.Tensor, scale: tf.Tensor, what: str) -> tf.Tensor:
        """An assertion that batch * ceil(scale * H) * ceil(scale * W) fits max_pixels."""
        out = (tf.cast(shape[0], tf.int64)
               * tf.cast(tf_imaging.output_length(shape[1], scale), tf.int64)
               * tf.cast(tf_imaging.output_length(shape[2], scale), tf.int64))
        return tf.debugging.assert_less_equal(out, tf.constant(self.max_pixels, tf.int64), message=(
            f"output too large: {what} after upscaling exceeds the cap of {self.max_pixels} "
            f"pixels set at export; send smaller images, tiles or a smaller scale"))

    def _sr_rgb_at(self, rgb: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
        ycc = tf_imaging.rgb_to_ycbcr(tf_imaging.resize_bicubic(rgb, scale))
        ycc = tf.concat([self._sr_y(ycc[..., :1], scale), ycc[..., 1:]], axis=-1)
        return tf_imaging.to_uint8(tf_imaging.ycbcr_to_rgb(ycc))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"),
                                  tf.TensorSpec([], tf.float32, name="scale")])
    def serve_at(self, image: tf.Tensor, scale: tf.Tensor) -> dict[str, tf.Tensor]:
        s = tf_imaging.exact_scale(_scale_input(scale))
        image = _checked(image, tf.uint8, 3, "image", self.max_pixels, 1)
        with tf.control_dependencies([self._checked_size(tf.shape(image), s,
                                                         "batch * height * width")]):
            rgb = tf.cast(image, tf.float32) / 255.0
        return {"image": self._sr_rgb_at(rgb, s)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="y"),
                                  tf.TensorSpec([], tf.float32, name="scale")])
    def super_resolve_y_at(self, y: tf.Tensor, scale: tf.Tensor) -> dict[str, tf.Tensor]:
        """super_resolve_y told the factor the input was upscaled by (a scale_input model
        uses it; a blind one answers as super_resolve_y)."""
        s = _scale_input(scale)  # float32: only the first layer's bias depends on it
        y = _checked(y, tf.float32, 1, "y", self.max_pixels, 1)
        return {"y": self._sr_y(y, s)}

    @tf.function(input_signature=[tf.TensorSpec([1], tf.string, name="image_bytes"),
                                  tf.TensorSpec([], tf.float32, name="scale")])
    def upscale_encoded_at(self, image_bytes: tf.Tensor,
                           scale: tf.Tensor) -> dict[str, tf.Tensor]:
        """As SRModule.upscale_encoded, at the factor given."""
        s = tf_imaging.exact_scale(_scale_input(scale))
        data = tf.reshape(_as_fed(image_bytes, tf.string), [-1])[0]
        hw = tf.cast(declared_size(data), tf.int32)
        fits = self._checked_size(tf.stack([1, hw[0], hw[1]]), s,
                                  "the image's declared height * width")
        with tf.control_dependencies([fits]):
            data = tf.identity(data)
        img = tf.io.decode_image(data, expand_animations=False)
        img = tf.ensure_shape(img, [None, None, None])[None]
        img = _checked(img, tf.uint8, None, "decoded image", self.max_pixels, 1)
        with tf.control_dependencies([self._checked_size(tf.shape(img), s, "the decoded image")]):
            img = tf.identity(img)
        png = _encode_sr(img, lambda x: tf_imaging.resize_bicubic(x, s),
                         lambda y: self._sr_y(y, s), lambda rgb: self._sr_rgb_at(rgb, s))
        return {"image_bytes": tf.reshape(png, [1])}
