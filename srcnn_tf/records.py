"""Training images -> degraded/bicubic patch pairs -> sharded TFRecords + manifest; the reader.

Layout under `<out_dir>/x<scale>/`:
  train-NNNNN-of-MMMMM.tfrecord   patch Examples (see FEATURES), source image i goes to shard i % M
  val.tfrecord                    held-out whole images, same keys (label = HR / 255)
  manifest.json                   schema version, config, sources (sha256, split, status), shards

Shard bytes depend only on the inputs and the config, never on the worker count: each shard is
written by one process from its own images in order, under a temporary name renamed when complete,
and the manifest is written last. A rerun whose manifest fingerprint matches does nothing.
Workers never import TensorFlow (see tfrecord.py).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
from typing import Any, Iterator

import numpy as np

from srcnn_tf import imaging, tfrecord
from srcnn_tf import patches as patches_lib
from srcnn_tf import sources as sources_lib
from srcnn_tf import workers as workers_lib
from srcnn_tf.sources import Source

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
VAL_FILE = "val.tfrecord"


log = logging.getLogger("srcnn_tf.records")


@dataclasses.dataclass(frozen=True)
class RecordsConfig:
    """Everything that decides the records' content (the paper's values as defaults)."""

    # One upscaling factor, or several (a multi-scale set: the patch positions of each image
    # take the factors in turn, and each patch stores its own; validation has every image at
    # every factor). Fractional factors p/q crop HR to multiples of p (imaging.modcrop).
    scale: float | tuple[float, ...] = 3
    out_dir: str = "tfrecords"
    input_dirs: tuple[str, ...] = ()  # image folders, read recursively, in this order
    tfds_name: str | None = None
    tfds_split: str = "train"
    tfds_image_key: str = "image"
    channels: int = 1  # 1: Y of BT.601 YCbCr; 3: RGB
    patch_size: int = 33
    label_size: int = 21
    stride: int = 14
    blur_sigma: float = 0.0
    augment: bool = False  # FSRCNN: 5 downscaled copies x 8 flips/rotations of each image
    downscale_copies: bool = False  # the 5 downscaled copies only
    edge_pad: int = 0  # pixels edge-replicated around each pair before the grid (patches.py)
    val_fraction: float = 0.05
    val_dir: str | None = None
    num_shards: int = 8
    compression: str = ""  # "" or "GZIP"
    max_pixels: int = imaging.MAX_PIXELS  # larger images (declared size) are skipped, counted
    # How the work is done; does not change the output.
    workers: int = 0  # 0: all cores
    strict: bool = False
    overwrite: bool = False
    progress: bool = True

    def validate(self) -> None:
        """Raises ValueError naming the field for inconsistent settings."""
        scales = self.scales
        for s in scales:
            imaging.scale_ratio(s)  # ValueError naming the value
        problems = [  # (bad, message), checked in this order
            (len(set(scales)) != len(scales),
             f"scale: {imaging.scale_name(scales)} lists a factor twice"),
            (self.channels not in (1, 3), f"channels must be 1 or 3, got {self.channels}"),
            (self.label_size > self.patch_size,
             f"label_size {self.label_size} > patch_size {self.patch_size}"),
            ((self.patch_size - self.label_size) % 2, f"patch_size - label_size must be even "
             f"(centred label), got {self.patch_size} - {self.label_size}"),
            (self.augment and self.downscale_copies, "downscale_copies: augment already writes "
             "the downscaled copies (with their flips/rotations); give one of them"),
            (self.stride < 1, f"stride must be >= 1, got {self.stride}"),
            (self.edge_pad < 0, f"edge_pad must be >= 0, got {self.edge_pad}"),
            (self.max_pixels < 1, f"max_pixels must be >= 1, got {self.max_pixels}"),
            (self.num_shards < 1, f"num_shards must be >= 1, got {self.num_shards}"),
            (self.compression not in ("", "GZIP"),
             f"compression must be '' or 'GZIP', got {self.compression!r}"),
        ]
        for bad, message in problems:
            if bad:
                raise ValueError(message)
        self.source_spec().validate()

    def source_spec(self) -> sources_lib.SourceSpec:
        return sources_lib.SourceSpec(self.input_dirs, self.tfds_name, self.tfds_split,
                                      self.tfds_image_key, self.val_dir, self.val_fraction)

    @property
    def scales(self) -> tuple[float, ...]:
        return imaging.scale_list(self.scale)

    @property
    def multiscale(self) -> bool:
        return len(self.scales) > 1

    @property
    def record_dir(self) -> str:
        return os.path.join(self.out_dir, f"x{imaging.scale_name(self.scale)}")

    def content_fields(self) -> dict[str, Any]:
        """The fields that decide the bytes written (not workers/strict/overwrite/progress)."""
        d = dataclasses.asdict(self)
        d["scale"] = imaging.scale_json(self.scale)  # 3 and 3.0, (3,) and 3: the same records
        for k in ("workers", "strict", "overwrite", "progress", "out_dir"):
            d.pop(k)
        # Fields added later are left out when off: older records keep their fingerprint.
        return {k: v for k, v in d.items() if v or k not in ("downscale_copies", "edge_pad")}


@dataclasses.dataclass
class ShardTask:
    index: int
    path: str
    sources: list[tuple[int, Source]]  # (manifest index, source)


# ----------------------------------------------------------------------------- workers

def _decode(source: Source, data: bytes, channels: int,
            max_pixels: int) -> tuple[dict[str, Any], np.ndarray | None]:
    """The manifest entry so far (sha256, size, or the skip reason) and the uint8 HR image,
    None when the file does not decode or declares more than `max_pixels` pixels."""
    outcome: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest()}
    try:
        hr = patches_lib.prepare_hr(
            imaging.load_image(data, name=source.id, max_pixels=max_pixels), channels)
    except imaging.ImageError as e:
        outcome.update(status="skipped", reason=str(e), patches=0)
        return outcome, None
    outcome.update(height=int(hr.shape[0]), width=int(hr.shape[1]))
    return outcome, hr


def _process_shard(task: ShardTask, config: RecordsConfig) -> dict[str, Any]:
    """Writes one shard; returns its stats and what happened to each of its sources."""
    tmp = task.path + ".tmp"
    outcomes: dict[int, dict[str, Any]] = {}
    patches, index_of = 0, {s.id: i for i, s in task.sources}
    with tfrecord.TFRecordWriter(tmp, config.compression) as writer:
        for source, data in sources_lib.iter_encoded([s for _, s in task.sources],
                                                     config.source_spec()):
            index = index_of[source.id]
            outcome, hr = _decode(source, data, config.channels, config.max_pixels)
            if hr is not None:
                n = 0
                for example in patches_lib.image_examples(
                        hr, index, config.scales, config.patch_size, config.label_size,
                        config.stride, config.blur_sigma, config.augment,
                        config.downscale_copies, config.edge_pad):
                    writer.write(example)
                    n += 1
                if n == 0:
                    outcome.update(
                        status="skipped",
                        reason=f"{source.id}: too small ({hr.shape[1]}x{hr.shape[0]}) for "
                        f"{config.patch_size}x{config.patch_size} patches at scale "
                        f"{imaging.scale_name(config.scale)}",
                        patches=0,
                    )
                else:
                    outcome.update(status="ok", patches=n)
                patches += n
            outcomes[index] = outcome
            workers_lib.report(outcome.get("patches", 0))
    os.replace(tmp, task.path)
    return {"index": task.index, "patches": patches, "outcomes": outcomes,
            "sha256": writer.sha256()}


# ----------------------------------------------------------------------------- driver


def _fingerprint(config: RecordsConfig, train: list[Source], val: list[Source]) -> str:
    blob = json.dumps(
        {
            "schema": SCHEMA_VERSION,
            "config": config.content_fields(),
            "train": [(s.id, s.sha256) for s in train],
            "val": [(s.id, s.sha256) for s in val],
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def load_manifest(record_dir: str) -> dict[str, Any]:
    """The manifest of a records folder; a clear error when there is none."""
    path = os.path.join(record_dir, MANIFEST)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: build the records first (make records)")
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema version {manifest.get('schema_version')}, this code "
                         f"reads {SCHEMA_VERSION}: rebuild them (overwrite=True)")
    return manifest


def check_files(record_dir: str, manifest: dict[str, Any]) -> None:
    """Every shard (and the val file) exists with the sha256 the manifest lists; the error
    names the file that does not."""
    files = list(manifest["train"]["shards"]) + ([manifest["val"]] if manifest.get("val") else [])
    for entry in files:
        path = os.path.join(record_dir, entry["file"])
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: listed in the manifest but missing")
        if tfrecord.file_sha256(path) != entry["sha256"]:
            raise ValueError(f"{path}: corrupt (sha256 differs from the manifest): rebuild "
                             f"the records (overwrite=True)")


def _up_to_date(record_dir: str, fingerprint: str) -> bool:
    try:
        manifest = load_manifest(record_dir)
        if manifest.get("fingerprint") != fingerprint:
            return False
        check_files(record_dir, manifest)
    except (FileNotFoundError, ValueError):  # json.JSONDecodeError is a ValueError
        return False
    return True


def _say_what_is_replaced(record_dir: str, config: RecordsConfig) -> None:
    """Logs which existing records a rebuild replaces, and from what (never silently)."""
    try:
        old = load_manifest(record_dir)
    except (FileNotFoundError, ValueError, json.JSONDecodeError):
        return
    before = ", ".join(sources_lib.source_names(old.get("config", {})))
    after = ", ".join(sources_lib.source_names(dataclasses.asdict(config)))
    changed = sorted(k for k, v in config.content_fields().items()
                     if old.get("config", {}).get(k) != v and k != "input_dirs")
    log.warning("%s: replacing records built from %s with records from %s%s", record_dir,
                before, after, f" (changed: {', '.join(changed)})" if changed else "")


def _write_val(val: list[Source], first_index: int, config: RecordsConfig,
               path: str) -> tuple[list[dict], str]:
    entries = []
    tmp = path + ".tmp"
    with tfrecord.TFRecordWriter(tmp, config.compression) as writer:
        for k, (source, data) in enumerate(sources_lib.iter_encoded(val, config.source_spec())):
            outcome, hr = _decode(source, data, config.channels, config.max_pixels)
            entry: dict[str, Any] = {"id": source.id, "split": "val", **outcome}
            if hr is not None:
                examples = patches_lib.val_examples(hr, first_index + k, config.scales,
                                                    config.blur_sigma)
                for example in examples:
                    writer.write(example)
                if examples:
                    entry.update(status="ok", patches=len(examples))
                else:
                    entry.update(status="skipped", patches=0,
                                 reason=f"{source.id}: too small for validation")
            entries.append(entry)
    os.replace(tmp, path)
    return entries, writer.sha256()


def build_records(config: RecordsConfig) -> dict[str, Any]:
    """Writes the records for `config` (or finds them up to date) and returns the manifest.

    Bad images are skipped with a warning naming each (errors with `strict`), and counted.
    """
    config.validate()
    train, val, dups = sources_lib.collect_sources(config.source_spec())
    record_dir = config.record_dir
    fingerprint = _fingerprint(config, train, val)
    if not config.overwrite and _up_to_date(record_dir, fingerprint):
        log.info("%s: up to date (%d shards), nothing written", record_dir, config.num_shards)
        return {**load_manifest(record_dir), "up_to_date": True}
    _say_what_is_replaced(record_dir, config)
    os.makedirs(record_dir, exist_ok=True)
    for name in os.listdir(record_dir):  # stale shards, temporaries, an old manifest
        if name.startswith(("train-", "val.", MANIFEST)):
            os.remove(os.path.join(record_dir, name))
    shards, entries = _write_shards(config, train)
    val_info = None
    if val:
        val_entries, val_sha = _write_val(val, len(train), config,
                                          os.path.join(record_dir, VAL_FILE))
        entries.extend(val_entries)
        val_info = {"file": VAL_FILE, "images": sum(e["status"] == "ok" for e in val_entries),
                    "sha256": val_sha}
    entries.extend(dups)
    skipped = [e for e in entries if e["status"] == "skipped"]
    for e in skipped:
        log.warning("skipped %s", e["reason"])
    if skipped and config.strict:
        raise ValueError(f"{len(skipped)} bad input image(s) (strict): " +
                         "; ".join(e["reason"] for e in skipped))
    return _write_manifest(config, fingerprint, entries, shards, val_info)


def _write_shards(config: RecordsConfig, train: list[Source]) -> tuple[list[dict], list[dict]]:
    """Training shards (image i goes to shard i mod M) -> (shard entries, source entries)."""
    m = config.num_shards
    tasks = [ShardTask(index=k,
                       path=os.path.join(config.record_dir, f"train-{k:05d}-of-{m:05d}.tfrecord"),
                       sources=[(i, s) for i, s in enumerate(train) if i % m == k])
             for k in range(m)]
    workers = min(config.workers or os.cpu_count() or 1, m)
    results = workers_lib.run_tasks(functools.partial(_process_shard, config=config), tasks,
                                    workers, len(train), config.progress)
    outcomes = {i: o for r in results for i, o in r["outcomes"].items()}
    entries = [{"id": s.id, "split": "train", **outcomes[i]} for i, s in enumerate(train)]
    shards = [{"file": os.path.basename(t.path), "patches": r["patches"], "sha256": r["sha256"]}
              for t, r in zip(tasks, sorted(results, key=lambda r: r["index"]))]
    return shards, entries


def _write_manifest(config: RecordsConfig, fingerprint: str, entries: list[dict],
                    shards: list[dict], val_info: dict | None) -> dict[str, Any]:
    """Written last, under a temporary name: records are complete once the manifest exists."""
    total = sum(s["patches"] for s in shards)
    if total == 0:
        raise ValueError("no training patches were produced: every image was skipped or too small")
    manifest = {
        "schema_version": SCHEMA_VERSION, "fingerprint": fingerprint,
        "config": {**dataclasses.asdict(config), "scale": imaging.scale_json(config.scale)},
        "scale": imaging.scale_json(config.scale),
        "channels": config.channels, "patch_size": config.patch_size,
        "label_size": config.label_size, "compression": config.compression,
        "features": list(patches_lib.FEATURES) + ([patches_lib.SCALE] if config.multiscale
                                                  else []),
        "sources": entries,
        "train": {"shards": shards, "patches": total,
                  "images": sum(e["status"] == "ok" for e in entries if e["split"] == "train")},
        "val": val_info,
        "skipped": sum(e["status"] == "skipped" for e in entries),
        "duplicates": sum(e["status"] == "duplicate" for e in entries),
        "folders": sources_lib.folder_counts(config.input_dirs, entries),
    }
    tmp = os.path.join(config.record_dir, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(config.record_dir, MANIFEST))
    return manifest


# ----------------------------------------------------------------------------- reader


def read_patches(record_dir: str, split: str = "train") -> Iterator[dict[str, Any]]:
    """Iterates the records in file order: dicts with
    "input", "label" (float32 numpy HxWxC, values ~[0, 1]), "source" (the image's path relative
    to the input folder, or its TFDS id), "row", "col", "aug" (ints), "scale" (the patch's
    factor: stored per patch in multi-scale records, else the manifest's).
    `split` is "train" (patches) or "val" (whole images).
    """
    manifest = load_manifest(record_dir)
    if split == "train":
        files = [s["file"] for s in manifest["train"]["shards"]]
    elif split == "val":
        files = [manifest["val"]["file"]] if manifest.get("val") else []
    else:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    ids = [s["id"] for s in manifest["sources"]]
    c = manifest["channels"]
    default_scale = manifest["scale"] if not isinstance(manifest["scale"], list) else None
    for name in files:
        for data in tfrecord.read_records(os.path.join(record_dir, name), manifest["compression"]):
            ex = tfrecord.decode_example(data)
            h, w = ex["height"], ex["width"]
            lh, lw = (h, w) if split == "val" else (manifest["label_size"],) * 2
            yield {
                "input": np.frombuffer(ex["input"], np.float32).reshape(h, w, c),
                "label": np.frombuffer(ex["label"], np.float32).reshape(lh, lw, c),
                "source": ids[ex["source"]], "row": ex["row"], "col": ex["col"], "aug": ex["aug"],
                "scale": imaging.scale_list(ex.get(patches_lib.SCALE, default_scale))[0],
            }


def describe(manifest: dict[str, Any]) -> dict[str, Any]:
    """What records hold, on any machine: source names, patches, images, fingerprint, and the
    augmentation and edge padding written into them when there is any."""
    written = {k: manifest["config"][k] for k in ("augment", "downscale_copies", "edge_pad")
               if manifest["config"].get(k)}
    return {"sources": sources_lib.source_names(manifest["config"]),
            "patches": manifest["train"]["patches"], "images": manifest["train"]["images"],
            "fingerprint": manifest["fingerprint"], **written}


def summary(manifest: dict[str, Any]) -> str:
    """One line for the console."""
    val = manifest.get("val") or {"images": 0}
    folders = manifest.get("folders") or []
    per_folder = "" if len(folders) < 2 else " (" + ", ".join(
        f"{f['prefix'].rstrip('/')}: {f['patches']}" for f in folders) + ")"
    train = manifest["train"]
    return (f"x{imaging.scale_name(manifest['scale'])}: {train['patches']} patches{per_folder} "
            f"from {train['images']} images in {len(train['shards'])} shards, {val['images']} "
            f"val images, {manifest['skipped']} skipped, {manifest['duplicates']} duplicates")

