"""The TensorFlow-free Example/TFRecord codec agrees with TensorFlow byte for byte."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from srcnn_tf import tfrecord

FEATURES = {"input": b"\x00\x01\xff" * 50, "label": b"", "row": 0, "col": 300, "neg": -5,
            "big": 2**40, "scale": 2.5, "small": -0.125}


def _tf_example(features):
    f = {}
    for k, v in features.items():
        if isinstance(v, bytes):
            f[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
        elif isinstance(v, float):
            f[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
        else:
            f[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
    return tf.train.Example(features=tf.train.Features(feature=f))


def test_encoding_equals_tensorflow_deterministic_bytes():
    ours = tfrecord.encode_example(FEATURES)
    assert ours == _tf_example(FEATURES).SerializeToString(deterministic=True)
    assert tfrecord.decode_example(ours) == FEATURES


def test_decode_reads_tensorflow_serialisation():
    data = _tf_example(FEATURES).SerializeToString()
    assert tfrecord.decode_example(data) == FEATURES


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_tensorflow_reads_our_files_and_we_read_theirs(tmp_path, compression):
    ours = tmp_path / "ours.tfrecord"
    with tfrecord.TFRecordWriter(ours, compression) as w:
        for i in range(5):
            w.write(tfrecord.encode_example({"row": i, "input": bytes([i]) * i}))
    got = [tf.io.parse_single_example(r, {"row": tf.io.FixedLenFeature([], tf.int64)})["row"]
           for r in tf.data.TFRecordDataset(str(ours), compression_type=compression)]
    assert [int(g) for g in got] == list(range(5))

    theirs = tmp_path / "theirs.tfrecord"
    opts = tf.io.TFRecordOptions(compression_type=compression)
    with tf.io.TFRecordWriter(str(theirs), opts) as w:
        for i in range(3):
            w.write(_tf_example({"row": i}).SerializeToString())
    assert [tfrecord.decode_example(r)["row"] for r in
            tfrecord.read_records(theirs, compression)] == [0, 1, 2]


def test_plain_files_are_identical_to_tensorflow_writer(tmp_path):
    records = [tfrecord.encode_example({"x": i, "b": b"z" * i}) for i in range(4)]
    with tfrecord.TFRecordWriter(tmp_path / "a", "") as w:
        for r in records:
            w.write(r)
    with tf.io.TFRecordWriter(str(tmp_path / "b")) as w:
        for r in records:
            w.write(r)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_corruption_is_detected_and_names_the_file(tmp_path):
    path = tmp_path / "shard.tfrecord"
    with tfrecord.TFRecordWriter(path) as w:
        w.write(tfrecord.encode_example({"input": np.zeros(10, np.float32).tobytes()}))
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="shard.tfrecord.*CRC"):
        list(tfrecord.read_records(path))
    path.write_bytes(bytes(data[:30]))
    with pytest.raises(ValueError, match="truncated"):
        list(tfrecord.read_records(path))
