"""tf.data loader: parsing (eager and in tf.data), fit checks, augmentation, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from srcnn_tf import data as data_lib
from srcnn_tf import tfrecord
from srcnn_tf.model import ModelConfig

from conftest import tiny_records

GEOM = data_lib.Geometry(scale=3, channels=1, patch_size=33, label_size=21, compression="")


def _examples(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = rng.uniform(size=(n, 33, 33, 1)).astype(np.float32)
    ys = rng.uniform(size=(n, 21, 21, 1)).astype(np.float32)
    ser = [tfrecord.encode_example({"input": x.tobytes(), "label": y.tobytes(), "source": 0,
                                    "row": 0, "col": 0, "aug": 0, "height": 33, "width": 33})
           for x, y in zip(xs, ys)]
    return xs, ys, ser


def test_parse_eagerly_and_inside_tf_data_agree():
    xs, ys, ser = _examples(6)
    eager = data_lib.parse_batch(tf.constant(ser), GEOM)
    graph = next(iter(tf.data.Dataset.from_tensor_slices(ser).batch(6)
                      .map(lambda s: data_lib.parse_batch(s, GEOM))))
    for a, b, ref in zip(eager, graph, (xs, ys)):
        np.testing.assert_array_equal(a.numpy(), ref)
        np.testing.assert_array_equal(b.numpy(), ref)
    assert graph[0].shape[1:] == (33, 33, 1)


def test_dihedral_is_the_same_for_input_and_label():
    x = tf.random.stateless_uniform([64, 33, 33, 1], seed=[1, 2])
    y = x[:, 6:-6, 6:-6, :]  # a centred label
    ax, ay = data_lib.random_dihedral(x, y, tf.constant([3, 4], tf.int64))
    np.testing.assert_array_equal(ax[:, 6:-6, 6:-6, :].numpy(), ay.numpy())
    changed = np.any(ax.numpy() != x.numpy(), axis=(1, 2, 3))
    assert 0 < changed.sum() < 64  # some examples transformed, some not
    graph = next(iter(tf.data.Dataset.from_tensors((x, y)).map(
        lambda a, b: data_lib.random_dihedral(a, b, tf.constant([3, 4], tf.int64)))))
    np.testing.assert_array_equal(graph[0].numpy(), ax.numpy())


@pytest.mark.parametrize("preset, padding, crop", [
    ("9-1-5", "valid", 0), ("9-3-5", "valid", 1), ("9-5-5", "valid", 2)])
def test_label_crop_for_valid_models(preset, padding, crop):
    assert data_lib.check_fit(GEOM, ModelConfig(preset=preset, padding=padding)) == crop


def test_fit_errors_explain_the_fix():
    with pytest.raises(ValueError, match="label_size=33"):
        data_lib.check_fit(GEOM, ModelConfig(padding="same"))
    with pytest.raises(ValueError, match="x3.*x4"):
        data_lib.check_fit(GEOM, ModelConfig(), scale=4)
    with pytest.raises(ValueError, match="channels=3"):
        data_lib.check_fit(GEOM, ModelConfig(channels=3))
    same = data_lib.Geometry(3, 1, 33, 33, "")
    assert data_lib.check_fit(same, ModelConfig(padding="same")) == 0
    assert data_lib.check_fit(same, ModelConfig(padding="valid")) == 8


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory):
    return tiny_records(tmp_path_factory.mktemp("data"), 4, (80, 90), seed=0, num_shards=3,
                        val_fraction=0.25)


def _collect(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_loader_is_deterministic_when_asked(record_dir):
    kw = dict(label_crop=2, augment=True, seed=7, deterministic=True)
    a = _collect(data_lib.TrainData(record_dir, 16, **kw).epoch(0))
    b = _collect(data_lib.TrainData(record_dir, 16, **kw).epoch(0))
    assert len(a) == data_lib.TrainData(record_dir, 16).steps_per_epoch
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert a[0][1].shape == (16, 17, 17, 1)
    other = _collect(data_lib.TrainData(record_dir, 16, **kw).epoch(1))
    assert not np.array_equal(other[0][0], a[0][0])
    skipped = _collect(data_lib.TrainData(record_dir, 16, **kw).epoch(0, skip_batches=2))
    np.testing.assert_array_equal(skipped[0][0], a[2][0])
    np.testing.assert_array_equal(skipped[0][1], a[2][1])


@pytest.mark.parametrize("cache", [False, True])
def test_stream_is_the_epochs_one_after_another(record_dir, cache):
    """A resumed run's one iterator: the rest of its epoch, then whole epochs in order."""
    kw = dict(label_crop=2, augment=True, seed=7, deterministic=True, cache=cache)
    data = data_lib.TrainData(record_dir, 16, **kw)
    spe = data.steps_per_epoch
    want = _collect(data.epoch(1, skip_batches=2)) + _collect(data.epoch(2)) + _collect(
        data.epoch(3))
    got = _collect(data.stream(1, skip_batches=2).take(len(want)))
    assert len(want) == 3 * spe - 2
    for (xa, ya), (xb, yb) in zip(want, got):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(got[spe - 2][0], got[2 * spe - 2][0])  # epochs are reshuffled


def test_cached_epochs_are_a_permutation_of_all_patches(tmp_path):
    """Records hold each image's patches together; a cached epoch draws every batch from the
    whole set (whatever the shuffle buffer), the streamed one only from the buffer's window."""
    from srcnn_tf import records

    record_dir = tiny_records(tmp_path, 6, (120, 130), seed=20, num_shards=1, val_fraction=0)
    source = {p["input"].tobytes(): p["source"] for p in records.read_patches(record_dir)}

    def images_per_batch(cache):
        data = data_lib.TrainData(record_dir, 16, cache=cache, shuffle_buffer=8, seed=3)
        batches = [x for x, _ in _collect(data.epoch(0))]
        seen = [source[x.tobytes()] for b in batches for x in b]
        return np.median([len(set(seen[i:i + 16])) for i in range(0, len(seen), 16)]), seen

    mixed, seen = images_per_batch(True)
    assert mixed >= 5  # of 6 images (uniform draws of 16: 5.8 on average)
    streamed, _ = images_per_batch(False)
    assert streamed <= 2


def test_cache_and_files_give_the_same_patches(record_dir):
    def multiset(cache):
        batches = _collect(data_lib.TrainData(record_dir, 1, cache=cache, seed=1,
                                              shuffle_buffer=0).epoch(0))
        return sorted(float(x.sum()) for b in batches for x in b[0])
    assert multiset(True) == pytest.approx(multiset(False))


def test_labels_stay_aligned_with_inputs(record_dir):
    """Each label is the HR under the input's centre: bicubic input and HR label correlate
    strongly pixel by pixel, for every example and after augmentation."""
    for x, y in _collect(data_lib.TrainData(record_dir, 32, label_crop=6, augment=True,
                                            seed=3).epoch(0))[:2]:
        centre, lab = x[:, 12:-12, 12:-12, 0], y[..., 0]
        aligned = np.abs(centre - lab).mean(axis=(1, 2))
        transposed = np.abs(centre - lab.transpose(0, 2, 1)).mean(axis=(1, 2))
        corr = [np.corrcoef(c.ravel(), l.ravel())[0, 1] for c, l in zip(centre, lab)]
        assert np.median(corr) > 0.9
        assert np.mean(aligned <= transposed) > 0.9


def test_corrupt_shard_is_named(record_dir, tmp_path):
    import shutil

    copy = tmp_path / "x3"
    shutil.copytree(record_dir, copy)
    shard = sorted(copy.glob("train-*"))[1]
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=shard.name):
        data_lib.TrainData(str(copy), 8)


def test_val_images(record_dir):
    val = data_lib.val_images(record_dir)
    assert len(val) == 1
    name, inp, hr, scale = val[0]
    assert scale == 3
    assert inp.dtype == np.float32 and hr.dtype == np.uint8 and inp.shape == hr.shape
