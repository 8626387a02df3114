"""tf.data input pipeline over the records: decode -> parse (train / eval) -> assemble.

Raw Examples are batched before parsing (`parse_example` on a batch is ~5x faster than one by one).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from srcnn_tf import imaging, records
from srcnn_tf.model import SCALE_PLANES, ModelConfig, with_scale

INPUT, LABEL, SCALE = "input", "label", "scale"
_LAST_EPOCH = 2**62  # stream() has no end of its own
_WHOLE = 2**62  # a batch size that takes all the records


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Patch geometry of a records folder, read from its manifest."""

    scale: int | float | list  # imaging.scale_json: a list for multi-scale records
    channels: int
    patch_size: int
    label_size: int
    compression: str

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> "Geometry":
        return cls(manifest["scale"], manifest["channels"], manifest["patch_size"],
                   manifest["label_size"], manifest["compression"])


def check_fit(geometry: Geometry, model: ModelConfig, scale: int | None = None) -> int:
    """Returns the centre crop to apply to labels so they match the model's output.

    Raises ValueError explaining how to rebuild the records when they do not fit.
    """
    if scale is not None and imaging.scale_list(scale) != imaging.scale_list(geometry.scale):
        raise ValueError(f"records are for x{imaging.scale_name(geometry.scale)}, training "
                         f"asked for x{imaging.scale_name(scale)}")
    if geometry.channels != model.channels:
        raise ValueError(f"records have {geometry.channels} channel(s), the model "
                         f"{model.channels}: rebuild them with channels={model.channels}")
    out = model.output_size(geometry.patch_size)
    if out < 1:
        raise ValueError(f"{geometry.patch_size}x{geometry.patch_size} patches are too small "
                         f"for a {model.preset} model with valid padding")
    if geometry.label_size < out or (geometry.label_size - out) % 2:
        hint = (f"label_size={geometry.patch_size}" if model.padding == "same"
                else f"label_size={out} (or train with padding='same')")
        raise ValueError(
            f"records hold {geometry.label_size}x{geometry.label_size} labels but a "
            f"{model.preset} model with {model.padding} padding outputs {out}x{out} from "
            f"{geometry.patch_size}x{geometry.patch_size} inputs: rebuild the records with {hint}")
    return (geometry.label_size - out) // 2


def parse_batch(serialized: tf.Tensor, geometry: Geometry) -> tuple[tf.Tensor, tf.Tensor]:
    """A batch of serialised patch Examples -> (input (B, P, P, C), label (B, L, L, C)) float32."""
    parsed = tf.io.parse_example(serialized, {
        INPUT: tf.io.FixedLenFeature([], tf.string),
        LABEL: tf.io.FixedLenFeature([], tf.string),
    })
    p, l, c = geometry.patch_size, geometry.label_size, geometry.channels
    inp = tf.reshape(tf.io.decode_raw(parsed[INPUT], tf.float32), [-1, p, p, c])
    lab = tf.reshape(tf.io.decode_raw(parsed[LABEL], tf.float32), [-1, l, l, c])
    inp.set_shape([None, p, p, c])
    lab.set_shape([None, l, l, c])
    return inp, lab


def parse_scales(serialized: tf.Tensor, geometry: Geometry) -> tf.Tensor:
    """The factor of each Example of a batch, (B,) float32: stored per patch in multi-scale
    records, the manifest's for single-scale ones."""
    if isinstance(geometry.scale, list):
        return tf.io.parse_example(serialized, {SCALE: tf.io.FixedLenFeature([], tf.float32)})[
            SCALE]
    return tf.fill(tf.shape(serialized)[:1], tf.constant(float(geometry.scale), tf.float32))


def scale_planes(inp: tf.Tensor, scales: tf.Tensor, blind_fraction: float,
                 seed: tf.Tensor) -> tf.Tensor:
    """(B, P, P, C) -> (B, P, P, C + 2) with the planes of model.with_scale: (1, scale) per
    example, or (0, 0) for a random `blind_fraction` of them (so the same model also serves
    callers that do not know the factor). `seed`: a stateless seed of shape (2,)."""
    known = tf.random.stateless_uniform(tf.shape(scales), seed=seed) >= blind_fraction
    known = tf.reshape(tf.cast(known, inp.dtype), [-1, 1, 1, 1])
    planes = with_scale(inp, scales)[..., -SCALE_PLANES:]
    return tf.concat([inp, planes * known], -1)


def random_dihedral(inp: tf.Tensor, lab: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The same random flip/transpose (one of 8 dihedral transforms) per example, for input and
    label alike. Square patches (B, S, S, C); `seed` is a stateless seed of shape (2,)."""
    bits = tf.random.stateless_uniform([3, tf.shape(inp)[0]], seed=seed) < 0.5

    def apply(x: tf.Tensor) -> tf.Tensor:
        mask = lambda b: tf.reshape(b, [-1, 1, 1, 1])  # noqa: E731
        x = tf.where(mask(bits[0]), tf.transpose(x, [0, 2, 1, 3]), x)
        x = tf.where(mask(bits[1]), tf.reverse(x, [1]), x)
        return tf.where(mask(bits[2]), tf.reverse(x, [2]), x)

    return apply(inp), apply(lab)


class TrainData:
    """The training split of a records folder as tf.data pipelines: one epoch, or all in a row.

    Yields (input (B, P, P, C; C + 2 with `scale_input`), label (B, L - 2 * label_crop, ..., C))
    float32 in [0, 1].
    Shard order and shuffling are seeded by (seed, epoch), so with `deterministic` an epoch can
    be replayed exactly and a resumed run skips only the batches it already did in that epoch.
    `cache` keeps the serialised records in memory across epochs (T91 x3: ~130 MB; T91 + BSD200
    + General100 with the downscaled copies: 3.7 GB) and draws each epoch in a random order of
    all its patches; without it, a shuffle buffer mixes the shards as they are read.
    """

    def __init__(self, record_dir: str, batch_size: int, *, label_crop: int = 0,
                 augment: bool = False, shuffle_buffer: int = 16384, seed: int = 0,
                 deterministic: bool = False, cache: bool = False, verify: bool = True,
                 scale_input: bool = False, blind_fraction: float = 0.0) -> None:
        self.manifest = records.load_manifest(record_dir)
        self.geometry = Geometry.from_manifest(self.manifest)
        if verify:
            records.check_files(record_dir, self.manifest)
        self.files = [os.path.join(record_dir, s["file"]) for s in self.manifest["train"]["shards"]]
        self.batch_size = batch_size
        self.label_crop = label_crop
        self.augment = augment
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.deterministic = deterministic
        self.scale_input = scale_input  # inputs get the planes of scale_planes
        self.blind_fraction = blind_fraction
        self.steps_per_epoch = self.manifest["train"]["patches"] // batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"{record_dir}: {self.manifest['train']['patches']} patches, fewer "
                             f"than one batch of {batch_size}")
        self._cached = None
        if cache:
            raw = tf.data.TFRecordDataset(self.files, compression_type=self.geometry.compression)
            # One batch of everything, built in C++: through a list of Python bytes the load
            # took 6.2x as long and the process kept twice the records' size resident
            # (make bench-cache).
            self._cached = raw.batch(_WHOLE).get_single_element()

    def epoch(self, epoch: int, skip_batches: int = 0) -> tf.data.Dataset:
        """One epoch's batches, less its first `skip_batches`."""
        return self._finish(self._batches(epoch, skip_batches))

    def stream(self, first_epoch: int = 0, skip_batches: int = 0) -> tf.data.Dataset:
        """Epochs `first_epoch`, `first_epoch` + 1, ... without end, each exactly as `epoch`
        gives it: one iterator for a whole training, because dropping an iterator that ran to
        its end waits for tf.data's autotuning thread (24-55 s on 1,526-batch epochs)."""
        rest = tf.data.Dataset.range(first_epoch + 1, _LAST_EPOCH).flat_map(self._batches)
        return self._finish(self._batches(first_epoch, skip_batches).concatenate(rest))

    def _finish(self, ds: tf.data.Dataset) -> tf.data.Dataset:
        options = tf.data.Options()
        options.deterministic = self.deterministic
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

    def _permuted(self, epoch_seed: tf.Tensor) -> tf.data.Dataset:
        """Batches of the cached records in a uniform random order of the whole epoch. The
        records hold each image's patches together, so a shuffle buffer over them (16,384
        patches) filled a batch of 128 from a median of 25 of the 323 images of T91 + BSD200 +
        General100 (the most common one 14 % of it); a permutation draws from 101, as uniform
        sampling (the JAX trainer's) does."""
        cached, n = self._cached, int(self._cached.shape[0])
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([epoch_seed, tf.constant(7, tf.int64)]))
        ds = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size, drop_remainder=True)
        return ds.map(lambda idx: tf.gather(cached, idx))

    def _streamed(self, epoch_seed: tf.Tensor) -> tf.data.Dataset:
        """The records read from disk (`cache` off), 8 shards at a time, through a shuffle
        buffer of `shuffle_buffer` patches (a batch of 128 then draws from ~31 images)."""
        files = tf.data.Dataset.from_tensor_slices(self.files).shuffle(len(self.files),
                                                                       seed=epoch_seed)
        ds = files.interleave(
            lambda f: tf.data.TFRecordDataset(f, compression_type=self.geometry.compression),
            cycle_length=min(len(self.files), 8), block_length=16,
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=self.deterministic)
        return ds.shuffle(self.shuffle_buffer, seed=epoch_seed) if self.shuffle_buffer > 1 else ds

    def _batches(self, epoch: int | tf.Tensor, skip_batches: int = 0) -> tf.data.Dataset:
        """The parsed batches of `epoch` (a Python int or an int64 scalar inside flat_map)."""
        epoch_seed = tf.cast(epoch, tf.int64) + self.seed * 1_000_003
        if self._cached is not None:
            ds = self._permuted(epoch_seed)
        else:
            ds = self._streamed(epoch_seed).batch(self.batch_size, drop_remainder=True)
        ds = ds.enumerate()
        if skip_batches:
            ds = ds.skip(skip_batches)
        geometry, crop, augment = self.geometry, self.label_crop, self.augment
        scale_input, blind = self.scale_input, self.blind_fraction

        def parse(i: tf.Tensor, serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            x, y = parse_batch(serialized, geometry)
            if augment:
                x, y = random_dihedral(x, y, tf.stack([epoch_seed, i]))
            if scale_input:
                x = scale_planes(x, parse_scales(serialized, geometry), blind,
                                 tf.stack([epoch_seed + 7, i]))
            if crop:
                y = y[:, crop:-crop, crop:-crop, :]
            return x, y

        return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=self.deterministic)


class ValImage(NamedTuple):
    """A held-out whole image at one scale (multi-scale records hold each image at each)."""

    source: str  # the image's id in the manifest
    input: np.ndarray  # bicubic input float32 (H, W, C)
    hr: np.ndarray  # uint8 (H, W, C)
    scale: float


def val_images(record_dir: str) -> list[ValImage]:
    """The records' held-out whole images, in file order."""
    return [ValImage(v["source"], v["input"], imaging.to_uint8(v["label"]), v["scale"])
            for v in records.read_patches(record_dir, split="val")]
