"""TFRecord files of `tf.train.Example`s, written and read without importing TensorFlow.

Record workers are plain processes: importing TensorFlow costs each ~3.5 s and ~300 MB, more than
patching all of T91. The encoding is the deterministic protobuf wire format (map keys sorted), so
the bytes equal `tf.train.Example(...).SerializeToString(deterministic=True)`; the framing is
TFRecord's (length, masked CRC32C, data, masked CRC32C). Tests check both against TensorFlow.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
from typing import Any, BinaryIO, Callable, Iterator, Mapping, Union

Feature = Union[bytes, int, float]


_SMALL_VARINTS = tuple(bytes((i,)) for i in range(128))


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


@functools.lru_cache(maxsize=1024)
def _key_field(key: str) -> bytes:
    return _field(1, key.encode())


@functools.lru_cache(maxsize=1 << 16)
def _int_entry(key: str, value: int) -> bytes:
    """Features.feature map entry {key: Feature.int64_list (packed)}; cached: values repeat."""
    return _field(1, _key_field(key) + _field(2, _field(3, _field(1, _varint(value)))))


def _bytes_entry(key: str, value: bytes) -> bytes:
    """Map entry {key: Feature.bytes_list.value = [value]}, built with one copy of `value`."""
    keyf = _key_field(key)
    n = _varint(len(value))
    bl_len = 1 + len(n) + len(value)
    bl = _varint(bl_len)
    feat_len = 1 + len(bl) + bl_len
    feat = _varint(feat_len)
    entry_len = len(keyf) + 1 + len(feat) + feat_len
    return b"".join((b"\x0a", _varint(entry_len), keyf, b"\x12", feat, b"\x0a", bl, b"\x0a", n,
                     value))


def _float_entry(key: str, value: float) -> bytes:
    """Map entry {key: Feature.float_list (packed float32)}."""
    return _field(1, _key_field(key) + _field(2, _field(2, _field(1, struct.pack("<f", value)))))


def encode_example(features: Mapping[str, Feature]) -> bytes:
    """Serialises {key: bytes | int | float} as a tf.train.Example (one value per feature;
    floats as float32)."""
    entries = []
    for key in sorted(features):
        value = features[key]
        if isinstance(value, (bytes, bytearray)):
            entries.append(_bytes_entry(key, bytes(value)))
        elif isinstance(value, (bool, int)):
            entries.append(_int_entry(key, int(value)))
        elif isinstance(value, float):
            entries.append(_float_entry(key, value))
        else:
            raise TypeError(f"feature {key!r}: expected bytes, int or float, got "
                            f"{type(value).__name__}")
    body = b"".join(entries)
    return b"\x0a" + _varint(len(body)) + body


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 2:
            length, pos = _read_varint(buf, pos)
            yield number, wire, buf[pos : pos + length]
            pos += length
        elif wire == 0:
            value, pos = _read_varint(buf, pos)
            yield number, wire, value
        elif wire == 5:  # fixed32 (an unpacked float)
            yield number, wire, buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def decode_example(data: bytes) -> dict[str, Feature]:
    """Inverse of `encode_example` for single-valued bytes/int64/float features (floats come
    back as Python floats of their float32 value)."""
    out: dict[str, Feature] = {}
    for _, _, features in _fields(data):
        for _, _, entry in _fields(features):
            key, value = None, None
            for number, _, payload in _fields(entry):
                if number == 1:
                    key = payload.decode()
                else:
                    value = payload
            for kind, _, lst in _fields(value or b""):
                for _, wire, item in _fields(lst):
                    if kind == 1:
                        out[key] = bytes(item)
                    elif kind == 3 and wire == 2:  # packed int64
                        v, _ = _read_varint(item, 0)
                        out[key] = v - (1 << 64) if v >= 1 << 63 else v
                    elif kind == 3:
                        out[key] = item - (1 << 64) if item >= 1 << 63 else item
                    elif kind == 2:  # float32, packed (wire 2) or not (wire 5)
                        out[key] = struct.unpack("<f", item[:4])[0]
    return out


@functools.cache
def _crc32c() -> Callable[[bytes], int]:
    """google_crc32c.value, imported on first use: the JAX trainer imports this module (through
    records) on accelerator machines that need no checksums and may lack the package."""
    import google_crc32c

    return google_crc32c.value


def _masked_crc(data: bytes) -> int:
    crc = _crc32c()(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class _HashingFile:
    """A write-only file that hashes what passes through it."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class TFRecordWriter:
    """Appends records to `path` (GZIP when `compression == "GZIP"`, gzip mtime 0: reproducible)."""

    def __init__(self, path: str | os.PathLike, compression: str = "") -> None:
        if compression not in ("", "GZIP"):
            raise ValueError(f"compression must be '' or 'GZIP', got {compression!r}")
        self._raw = _HashingFile(open(path, "wb"))
        self._file: Any = (
            gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0, filename="")
            if compression
            else self._raw
        )

    def write(self, record: bytes) -> None:
        header = struct.pack("<Q", len(record))
        self._file.write(header + struct.pack("<I", _masked_crc(header)))
        self._file.write(record + struct.pack("<I", _masked_crc(record)))

    def close(self) -> None:
        if self._file is not self._raw:
            self._file.close()
        self._raw.close()

    def sha256(self) -> str:
        """Digest of the bytes on disk; valid after `close` (hashing as we write saves a
        re-read)."""
        return self._raw.digest.hexdigest()

    def __enter__(self) -> "TFRecordWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(path: str | os.PathLike, compression: str = "") -> Iterator[bytes]:
    """Yields each record's bytes, checking both CRCs; a damaged file raises ValueError naming
    it."""
    with open(path, "rb") as raw:
        f: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if compression else raw
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise ValueError(f"{path}: truncated record header")
            (length,) = struct.unpack("<Q", header[:8])
            if struct.unpack("<I", header[8:])[0] != _masked_crc(header[:8]):
                raise ValueError(f"{path}: corrupt record length (CRC mismatch)")
            body = f.read(length + 4)
            if len(body) < length + 4:
                raise ValueError(f"{path}: truncated record")
            data = body[:length]
            if struct.unpack("<I", body[length:])[0] != _masked_crc(data):
                raise ValueError(f"{path}: corrupt record data (CRC mismatch)")
            yield data


__all__ = ["encode_example", "decode_example", "TFRecordWriter", "read_records"]


def file_sha256(path: str) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
