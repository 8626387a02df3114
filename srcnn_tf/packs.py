"""Image packs: the HR images of a records folder in one .npz, for training on a machine the
records cannot travel to (a 291-image patch set is ~1.2 GB of float32 patches; its pack ~25 MB
of uint8 Y, each image lossless WebP, or PNG where WebP cannot hold it). The patches and held-out
images cut from a pack are the records' own: the same split, order, grid, scales and
augmentation (patches.image_patches). No TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, NamedTuple

import cv2
import numpy as np

from srcnn_tf import imaging
from srcnn_tf import patches as patches_lib
from srcnn_tf import records as records_lib
from srcnn_tf import sources as sources_lib

FORMAT = 2  # 1: the uint8 arrays themselves (np.savez_compressed), still read
_WEBP_LOSSLESS = [cv2.IMWRITE_WEBP_QUALITY, 101]  # quality above 100: lossless


class Pack(NamedTuple):
    """train: (source index in the records, uint8 HR image HxWxC); val: the held-out uint8 HR
    images; manifest: the records' manifest fields the patches depend on."""

    train: list[tuple[int, np.ndarray]]
    val: list[np.ndarray]
    manifest: dict[str, Any]


def _records_config(manifest: dict[str, Any]) -> records_lib.RecordsConfig:
    fields = {f.name for f in dataclasses.fields(records_lib.RecordsConfig)}
    cfg = {k: tuple(v) if isinstance(v, list) else v
           for k, v in manifest["config"].items() if k in fields}
    return records_lib.RecordsConfig(**cfg)


def encode_image(image: np.ndarray) -> np.ndarray:
    """uint8 HxWxC (C 1 or 3) -> lossless WebP bytes (as a uint8 array), or PNG when WebP
    cannot hold the image exactly (sides over 16,383 pixels); 28 % smaller than deflate on
    T91 + BSD200 + General100."""
    ok, data = cv2.imencode(".webp", image, _WEBP_LOSSLESS)
    if ok and np.array_equal(decode_image(data, image.shape[-1]), image):
        return data
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ValueError(f"an image of shape {image.shape} cannot be encoded as PNG")
    return data


def decode_image(data: np.ndarray, channels: int) -> np.ndarray:
    """encode_image's bytes -> uint8 HxWx`channels`; ValueError when they are not an image."""
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ValueError("not an encoded image")
    if image.ndim == 2:
        image = image[..., None]
    return np.ascontiguousarray(image[..., :channels])  # WebP stores gray as 3 equal channels


def write_pack(record_dir: str, out_path: str) -> dict[str, Any]:
    """Reads the source images of the records in `record_dir` again and writes them as a pack.

    Raises ValueError naming the image when one is missing or differs from what the records
    were built from (its sha256). Returns {"train": n, "val": n, "bytes": size of the file}.
    """
    manifest = records_lib.load_manifest(record_dir)
    config = _records_config(manifest)
    train, val, _ = sources_lib.collect_sources(config.source_spec())
    entries = {e["id"]: e for e in manifest["sources"]}
    arrays: dict[str, np.ndarray] = {}
    for split, sources in (("train", train), ("val", val)):
        for i, (source, data) in enumerate(
                sources_lib.iter_encoded(sources, config.source_spec())):
            entry = entries.get(source.id)
            if entry is None or entry.get("sha256") != hashlib.sha256(data).hexdigest():
                raise ValueError(f"{source.id}: not the image the records in {record_dir} were "
                                 f"built from (rebuild them: make records)")
            if entry["status"] == "ok":
                image = imaging.load_image(data, name=source.id, max_pixels=config.max_pixels)
                arrays[f"{split}_{i:05d}"] = patches_lib.prepare_hr(image, config.channels)
    keep = {k: manifest[k] for k in ("fingerprint", "scale", "channels", "patch_size",
                                     "label_size", "config", "train")}
    keep["records"] = records_lib.describe(manifest)
    np.savez(out_path, manifest=np.array(json.dumps({"format": FORMAT, **keep})),
             **{k: encode_image(a) for k, a in arrays.items()})
    return {"train": sum(k.startswith("train_") for k in arrays),
            "val": sum(k.startswith("val_") for k in arrays), "bytes": os.path.getsize(out_path)}


def read_pack(path: str) -> Pack:
    """A pack written by write_pack (ValueError naming `path` when it is not one)."""
    try:
        with np.load(path) as z:
            manifest = json.loads(str(z["manifest"]))
            images = {k: z[k] for k in z.files if k != "manifest"}
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not an image pack ({e})") from None
    if manifest.get("format") not in (1, FORMAT):
        raise ValueError(f"{path}: pack format {manifest.get('format')}, expected 1 or {FORMAT}")
    for key in images if manifest["format"] == FORMAT else ():
        try:
            images[key] = decode_image(images[key], manifest["channels"])
        except ValueError as e:
            raise ValueError(f"{path}: {key}: {e}") from None
    return Pack([(int(k[6:]), images[k]) for k in sorted(images) if k.startswith("train_")],
                [images[k] for k in sorted(images) if k.startswith("val_")], manifest)


def pack_scales(pack: Pack, scales: tuple[float, ...] | None) -> tuple[float, ...]:
    """`scales`, or the factors of the records the pack was written from."""
    return tuple(scales) if scales else _records_config(pack.manifest).scales


def patch_bank(pack: Pack, scales: tuple[float, ...] | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every training patch of the records (or of records at other `scales`, the same images
    and geometry) -> (inputs (N, P, P, C) float32, labels (N, L, L, C) float32, scales (N,)
    float32), in records order."""
    cfg = _records_config(pack.manifest)
    factors = pack_scales(pack, scales)
    inputs, labels, scales = [], [], []
    for index, hr in pack.train:
        for _, _, _, scale, pi, pl in patches_lib.image_patches(
                hr, index, factors, cfg.patch_size, cfg.label_size, cfg.stride,
                cfg.blur_sigma, cfg.augment, cfg.downscale_copies, cfg.edge_pad):
            inputs.append(pi)
            labels.append(pl)
            scales.append(scale)
    if not inputs:
        raise ValueError(f"no image of the pack is large enough for a {cfg.patch_size}-pixel "
                         f"patch at x{imaging.scale_name(factors)}")
    return np.stack(inputs), np.stack(labels), np.asarray(scales, np.float32)


def val_images(pack: Pack, scales: tuple[float, ...] | None = None
               ) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """The records' held-out whole images -> (scale, bicubic input HxWxC float32, HR HxWxC
    uint8), each image at every scale it is large enough for (patches.val_pairs)."""
    cfg = _records_config(pack.manifest)
    return [(s, inp, imaging.to_uint8(label)) for hr in pack.val
            for s, inp, label in patches_lib.val_pairs(hr, pack_scales(pack, scales),
                                                       cfg.blur_sigma)]
