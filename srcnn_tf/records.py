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
import hashlib
import json
import logging
import multiprocessing
import os
import queue as queue_lib
from typing import Any, Iterator, Sequence

import numpy as np

from srcnn_tf import imaging, tfrecord

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
VAL_FILE = "val.tfrecord"
# Example keys. input/label: float32 raw bytes, row-major HxWxC, values in ~[0, 1].
FEATURES = ("input", "label", "source", "row", "col", "aug", "height", "width")

DEFAULT_IMAGES = (
    "astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
    "motorcycle_left.png", "moon.png", "brick.png", "grass.png", "gravel.png",
    "hubble_deep_field.jpg",
)  # fmt: skip
AUG_SCALES = (1.0, 0.9, 0.8, 0.7, 0.6)  # FSRCNN's downscaled copies
AUG_ROTATIONS = 4  # rot90 k = 0..3; with a flip: 8 dihedral variants

log = logging.getLogger("srcnn_tf.records")


@dataclasses.dataclass(frozen=True)
class RecordsConfig:
    """Everything that decides the records' content (the paper's values as defaults)."""

    scale: int = 3
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
    augment: bool = False
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
        if self.scale < 2:
            raise ValueError(f"scale must be >= 2, got {self.scale}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.label_size > self.patch_size:
            raise ValueError(f"label_size {self.label_size} > patch_size {self.patch_size}")
        if (self.patch_size - self.label_size) % 2:
            raise ValueError(
                f"patch_size - label_size must be even (centred label), got "
                f"{self.patch_size} - {self.label_size}"
            )
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")
        if self.num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {self.num_shards}")
        if self.compression not in ("", "GZIP"):
            raise ValueError(f"compression must be '' or 'GZIP', got {self.compression!r}")
        if self.input_dirs and self.tfds_name:
            raise ValueError("give input_dirs or tfds_name, not both")
        if isinstance(self.input_dirs, str):
            raise ValueError(f"input_dirs must be a sequence of folders, got the string "
                             f"{self.input_dirs!r}")
        for folder in self.input_dirs:
            if not os.path.isdir(folder):
                raise ValueError(f"input_dirs: {folder!r} is not a directory")
        if len({os.path.realpath(f) for f in self.input_dirs}) != len(self.input_dirs):
            raise ValueError(f"input_dirs: a folder is given twice in {list(self.input_dirs)}")
        if self.val_dir is not None and not os.path.isdir(self.val_dir):
            raise ValueError(f"val_dir: {self.val_dir!r} is not a directory")

    @property
    def record_dir(self) -> str:
        return os.path.join(self.out_dir, f"x{self.scale}")

    def content_fields(self) -> dict[str, Any]:
        """The fields that decide the bytes written (not workers/strict/overwrite/progress)."""
        d = dataclasses.asdict(self)
        for k in ("workers", "strict", "overwrite", "progress", "out_dir"):
            d.pop(k)
        return d


@dataclasses.dataclass(frozen=True)
class Source:
    """One input image: where to read it and how it is named in the manifest and Examples."""

    id: str  # path relative to the input folder, or "<tfds name>/<split>/<index>"
    path: str | None = None  # file sources
    tfds_index: int | None = None  # TFDS sources
    sha256: str | None = None  # of the encoded file (files: known up front)


@dataclasses.dataclass
class ShardTask:
    index: int
    path: str
    sources: list[tuple[int, Source]]  # (manifest index, source)


# ----------------------------------------------------------------------------- sources


def default_image_dir() -> str:
    """The natural photographs that ship inside scikit-image (offline demo data)."""
    import skimage.data

    return os.path.dirname(skimage.data.__file__)


def _file_sources(folder: str, names: Sequence[str] | None = None, prefix: str = "") -> list[Source]:
    paths = (
        [os.path.join(folder, n) for n in names] if names else imaging.list_images(folder)
    )
    out = []
    for p in paths:
        with open(p, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        out.append(Source(id=prefix + os.path.relpath(p, folder), path=p, sha256=digest))
    return out


def folder_prefixes(folders: Sequence[str]) -> list[str]:
    """Source-id prefixes of several input folders: '' for a single folder (ids stay relative
    paths), else each folder's name + '/' (with its position when two names are equal)."""
    if len(folders) <= 1:
        return [""] * len(folders)
    names = [os.path.basename(os.path.normpath(f)) or f"dir{i}" for i, f in enumerate(folders)]
    return [f"{n}/" if names.count(n) == 1 else f"{i}:{n}/" for i, n in enumerate(names)]


def _tfds_sources(name: str, split: str, image_key: str) -> list[Source]:
    import tensorflow_datasets as tfds

    builder = tfds.builder(name)
    builder.download_and_prepare()
    try:
        n = builder.info.splits[split].num_examples
    except KeyError:  # no split metadata: count the (undecoded) examples
        skip = {image_key: tfds.decode.SkipDecoding()}
        n = sum(1 for _ in tfds.load(name, split=split, decoders=skip))
    return [Source(id=f"{name}/{split}/{i}", tfds_index=i) for i in range(n)]


def _iter_encoded(sources: Sequence[Source], config: RecordsConfig) -> Iterator[tuple[Source, bytes]]:
    """Yields (source, encoded image bytes) in the order of `sources`."""
    if config.tfds_name is None:
        for s in sources:
            with open(s.path, "rb") as f:
                yield s, f.read()
        return
    import tensorflow_datasets as tfds

    wanted = {s.tfds_index: s for s in sources}
    ds = tfds.load(
        config.tfds_name,
        split=config.tfds_split,
        decoders={config.tfds_image_key: tfds.decode.SkipDecoding()},
        shuffle_files=False,
    )
    for i, ex in enumerate(tfds.as_numpy(ds)):
        if i in wanted:
            yield wanted[i], bytes(ex[config.tfds_image_key])


# ----------------------------------------------------------------------------- patches


def prepare_hr(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 HxWx{1,3} -> uint8 HxWxC: Y (channels=1) or RGB (channels=3; gray replicated)."""
    if channels == 1:
        return imaging.to_y(image)
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def augment_variants(hr: np.ndarray, augment: bool) -> Iterator[tuple[int, np.ndarray]]:
    """(aug id, uint8 HR) pairs: id = scale_index * 8 + flip * 4 + k (rot90 k times).

    Without augmentation only id 0 (the image itself). With it: FSRCNN's downscaled copies
    (MATLAB bicubic, rounded to uint8) times the 8 flips/rotations.
    """
    if not augment:
        yield 0, hr
        return
    for si, s in enumerate(AUG_SCALES):
        base = hr if s == 1.0 else imaging.imresize(hr, scale=s)
        for flip in (0, 1):
            img = base[:, ::-1] if flip else base
            for k in range(AUG_ROTATIONS):
                yield si * 8 + flip * 4 + k, np.ascontiguousarray(np.rot90(img, k))


def make_pair(hr_uint8: np.ndarray, scale: int, blur_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """uint8 HR HxWxC -> (input, label) float32 HxWxC, modcropped: bicubic-degraded and HR / 255."""
    hr = imaging.modcrop(hr_uint8, scale).astype(np.float64) / 255.0
    return imaging.degrade(hr, scale, blur_sigma).astype(np.float32), hr.astype(np.float32)


def patch_positions(height: int, width: int, patch_size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of the paper's patch grid (MATLAB `1:stride:h-size+1`, 0-based)."""
    return [
        (r, c)
        for r in range(0, height - patch_size + 1, stride)
        for c in range(0, width - patch_size + 1, stride)
    ]


def extract_patches(
    inp: np.ndarray, label: np.ndarray, config: RecordsConfig
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(row, col, input patch PxPxC, centred label patch LxLxC) for every grid position."""
    p, l = config.patch_size, config.label_size
    pad = (p - l) // 2
    for r, c in patch_positions(inp.shape[0], inp.shape[1], p, config.stride):
        yield r, c, inp[r : r + p, c : c + p], label[r + pad : r + pad + l, c + pad : c + pad + l]


def _example(inp: np.ndarray, label: np.ndarray, source: int, row: int, col: int, aug: int) -> bytes:
    return tfrecord.encode_example(
        {
            "input": np.ascontiguousarray(inp, dtype=np.float32).tobytes(),
            "label": np.ascontiguousarray(label, dtype=np.float32).tobytes(),
            "source": source,
            "row": row,
            "col": col,
            "aug": aug,
            "height": int(inp.shape[0]),
            "width": int(inp.shape[1]),
        }
    )


# ----------------------------------------------------------------------------- workers

_progress_queue: Any = None


def _init_worker(q: Any) -> None:
    global _progress_queue
    _progress_queue = q


def _decode(source: Source, data: bytes, channels: int,
            max_pixels: int) -> tuple[dict[str, Any], np.ndarray | None]:
    """The manifest entry so far (sha256, size, or the skip reason) and the uint8 HR image,
    None when the file does not decode or declares more than `max_pixels` pixels."""
    outcome: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest()}
    try:
        hr = prepare_hr(imaging.load_image(data, name=source.id, max_pixels=max_pixels),
                        channels)
    except imaging.ImageError as e:
        outcome.update(status="skipped", reason=str(e), patches=0)
        return outcome, None
    outcome.update(height=int(hr.shape[0]), width=int(hr.shape[1]))
    return outcome, hr


def _process_shard(task: ShardTask, config: RecordsConfig) -> dict[str, Any]:
    """Writes one shard; returns its stats and what happened to each of its sources."""
    tmp = task.path + ".tmp"
    outcomes: dict[int, dict[str, Any]] = {}
    patches = 0
    index_of = {s.id: i for i, s in task.sources}
    with tfrecord.TFRecordWriter(tmp, config.compression) as writer:
        for source, data in _iter_encoded([s for _, s in task.sources], config):
            index = index_of[source.id]
            outcome, hr = _decode(source, data, config.channels, config.max_pixels)
            if hr is not None:
                n = 0
                for aug, variant in augment_variants(hr, config.augment):
                    if min(variant.shape[:2]) // config.scale * config.scale < config.patch_size:
                        continue  # too small for one patch (and for the bicubic degradation)
                    inp, label = make_pair(variant, config.scale, config.blur_sigma)
                    for r, c, pi, pl in extract_patches(inp, label, config):
                        writer.write(_example(pi, pl, index, r, c, aug))
                        n += 1
                if n == 0:
                    outcome.update(
                        status="skipped",
                        reason=f"{source.id}: too small ({hr.shape[1]}x{hr.shape[0]}) for "
                        f"{config.patch_size}x{config.patch_size} patches at scale {config.scale}",
                        patches=0,
                    )
                else:
                    outcome.update(status="ok", patches=n)
                patches += n
            outcomes[index] = outcome
            if _progress_queue is not None:
                _progress_queue.put(outcome.get("patches", 0))
    os.replace(tmp, task.path)
    return {"index": task.index, "patches": patches, "outcomes": outcomes,
            "sha256": writer.sha256()}


def file_sha256(path: str) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------- driver


def _split_val(sources: list[Source], fraction: float) -> tuple[list[Source], list[Source]]:
    """Deterministic, evenly spread choice of max(1, round(fraction * n)) validation images."""
    if fraction <= 0 or len(sources) < 2:
        return sources, []
    n_val = min(len(sources) - 1, max(1, round(fraction * len(sources))))
    picks = {int((i + 0.5) * len(sources) / n_val) for i in range(n_val)}
    return [s for i, s in enumerate(sources) if i not in picks], [
        s for i, s in enumerate(sources) if i in picks
    ]


def _dedupe(sources: list[Source]) -> tuple[list[Source], list[dict[str, Any]]]:
    seen: dict[str, str] = {}
    kept, dups = [], []
    for s in sources:
        if s.sha256 is not None and s.sha256 in seen:
            log.warning("%s: identical to %s, skipped as a duplicate", s.id, seen[s.sha256])
            dups.append({"id": s.id, "sha256": s.sha256, "split": None, "status": "duplicate",
                         "reason": f"identical to {seen[s.sha256]}", "patches": 0})
            continue
        if s.sha256 is not None:
            seen[s.sha256] = s.id
        kept.append(s)
    return kept, dups


def collect_sources(config: RecordsConfig) -> tuple[list[Source], list[Source], list[dict]]:
    """(train sources, val sources, duplicate entries) for the config's input."""
    if config.tfds_name:
        sources = _tfds_sources(config.tfds_name, config.tfds_split, config.tfds_image_key)
    elif config.input_dirs:
        sources = []
        for folder, prefix in zip(config.input_dirs, folder_prefixes(config.input_dirs)):
            found = _file_sources(folder, prefix=prefix)
            if not found:
                raise ValueError(f"input_dirs: no images found in {folder!r} "
                                 f"(extensions {imaging.IMAGE_EXTENSIONS})")
            sources += found
    else:
        sources = _file_sources(default_image_dir(), DEFAULT_IMAGES)
    if not sources:
        raise ValueError(f"no images found in {config.tfds_name!r}")
    sources, dups = _dedupe(sources)
    if config.val_dir:
        val = _file_sources(config.val_dir)
        if not val:
            raise ValueError(f"val_dir: no images found in {config.val_dir!r}")
        val = [dataclasses.replace(v, id="val/" + v.id) for v in val]
        return sources, val, dups
    train, val = _split_val(sources, config.val_fraction)
    return train, val, dups


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
        raise ValueError(
            f"{path}: schema version {manifest.get('schema_version')}, this code reads "
            f"{SCHEMA_VERSION}: rebuild with --overwrite"
        )
    return manifest


def _up_to_date(record_dir: str, fingerprint: str) -> bool:
    try:
        manifest = load_manifest(record_dir)
    except (FileNotFoundError, ValueError, json.JSONDecodeError):
        return False
    if manifest.get("fingerprint") != fingerprint:
        return False
    files = [s["file"] for s in manifest["train"]["shards"]]
    hashes = [s["sha256"] for s in manifest["train"]["shards"]]
    if manifest.get("val"):
        files.append(manifest["val"]["file"])
        hashes.append(manifest["val"]["sha256"])
    return all(
        os.path.exists(os.path.join(record_dir, f)) and file_sha256(os.path.join(record_dir, f)) == h
        for f, h in zip(files, hashes)
    )


def _say_what_is_replaced(record_dir: str, config: RecordsConfig) -> None:
    """Logs which existing records a rebuild replaces, and from what (never silently)."""
    try:
        old = load_manifest(record_dir)
    except (FileNotFoundError, ValueError, json.JSONDecodeError):
        return
    before = ", ".join(describe(old)["sources"])
    after = ", ".join(describe({"config": dataclasses.asdict(config), "train": old["train"],
                                "fingerprint": ""})["sources"])
    changed = sorted(k for k, v in config.content_fields().items()
                     if old.get("config", {}).get(k) != v and k != "input_dirs")
    log.warning("%s: replacing records built from %s with records from %s%s", record_dir,
                before, after, f" (changed: {', '.join(changed)})" if changed else "")


def _write_val(
    val: list[Source], first_index: int, config: RecordsConfig, path: str
) -> tuple[list[dict], str]:
    entries = []
    tmp = path + ".tmp"
    with tfrecord.TFRecordWriter(tmp, config.compression) as writer:
        for k, (source, data) in enumerate(_iter_encoded(val, config)):
            outcome, hr = _decode(source, data, config.channels, config.max_pixels)
            entry: dict[str, Any] = {"id": source.id, "split": "val", **outcome}
            if hr is not None:
                if min(hr.shape[:2]) < 2 * config.scale + 12:
                    entry.update(status="skipped", patches=0,
                                 reason=f"{source.id}: too small for validation")
                else:
                    inp, label = make_pair(hr, config.scale, config.blur_sigma)
                    writer.write(_example(inp, label, first_index + k, 0, 0, 0))
                    entry.update(status="ok", patches=1)
            entries.append(entry)
    os.replace(tmp, path)
    return entries, writer.sha256()


def build_records(config: RecordsConfig) -> dict[str, Any]:
    """Writes the records for `config` (or finds them up to date) and returns the manifest.

    Bad images are skipped with a warning naming each (errors with `strict`), and counted.
    """
    config.validate()
    train, val, dups = collect_sources(config)
    record_dir = config.record_dir
    fingerprint = _fingerprint(config, train, val)
    if not config.overwrite and _up_to_date(record_dir, fingerprint):
        log.info("%s: up to date (%d shards), nothing written", record_dir, config.num_shards)
        manifest = load_manifest(record_dir)
        manifest["up_to_date"] = True
        return manifest

    _say_what_is_replaced(record_dir, config)
    os.makedirs(record_dir, exist_ok=True)
    for name in os.listdir(record_dir):  # stale shards, temporaries, an old manifest
        if name.startswith(("train-", "val.", MANIFEST)):
            os.remove(os.path.join(record_dir, name))

    m = config.num_shards
    tasks = [
        ShardTask(
            index=k,
            path=os.path.join(record_dir, f"train-{k:05d}-of-{m:05d}.tfrecord"),
            sources=[(i, s) for i, s in enumerate(train) if i % m == k],
        )
        for k in range(m)
    ]
    workers = min(config.workers or os.cpu_count() or 1, m)
    results = _run_tasks(tasks, config, workers, total_images=len(train))

    entries: list[dict[str, Any]] = []
    outcomes = {i: o for r in results for i, o in r["outcomes"].items()}
    for i, s in enumerate(train):
        entries.append({"id": s.id, "split": "train", **outcomes[i]})
    val_info = None
    if val:
        val_path = os.path.join(record_dir, VAL_FILE)
        val_entries, val_sha = _write_val(val, len(train), config, val_path)
        entries.extend(val_entries)
        val_info = {
            "file": VAL_FILE,
            "images": sum(e["status"] == "ok" for e in val_entries),
            "sha256": val_sha,
        }
    entries.extend(dups)

    skipped = [e for e in entries if e["status"] == "skipped"]
    for e in skipped:
        log.warning("skipped %s", e["reason"])
    if skipped and config.strict:
        raise ValueError(f"{len(skipped)} bad input image(s) (strict): " +
                         "; ".join(e["reason"] for e in skipped))
    shards = [
        {"file": os.path.basename(t.path), "patches": r["patches"], "sha256": r["sha256"]}
        for t, r in zip(tasks, sorted(results, key=lambda r: r["index"]))
    ]
    total = sum(s["patches"] for s in shards)
    if total == 0:
        raise ValueError("no training patches were produced: every image was skipped or too small")
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "fingerprint": fingerprint,
        "config": dataclasses.asdict(config),
        "scale": config.scale,
        "channels": config.channels,
        "patch_size": config.patch_size,
        "label_size": config.label_size,
        "compression": config.compression,
        "features": list(FEATURES),
        "sources": entries,
        "train": {"shards": shards, "patches": total,
                  "images": sum(e["status"] == "ok" for e in entries if e["split"] == "train")},
        "val": val_info,
        "skipped": len(skipped),
        "duplicates": len(dups),
        "folders": _folder_counts(config.input_dirs, entries),
    }
    tmp = os.path.join(record_dir, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(record_dir, MANIFEST))
    return manifest


def _folder_counts(folders: Sequence[str], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per input folder: its path as given, the id prefix, images used (train/val) and patches."""
    out = []
    for folder, prefix in zip(folders, folder_prefixes(folders)):
        mine = [e for e in entries if e["id"].startswith(prefix)]
        out.append({"path": folder, "prefix": prefix,
                    "train_images": sum(e["status"] == "ok" and e["split"] == "train"
                                        for e in mine),
                    "val_images": sum(e["status"] == "ok" and e["split"] == "val" for e in mine),
                    "patches": sum(e["patches"] for e in mine if e["split"] == "train")})
    return out


def _run_tasks(
    tasks: list[ShardTask], config: RecordsConfig, workers: int, total_images: int
) -> list[dict[str, Any]]:
    bar = _progress_bar(total_images, config.progress)
    try:
        if workers <= 1:
            q: Any = _ListQueue(bar)
            _init_worker(q)
            try:
                return [_process_shard(t, config) for t in tasks]
            finally:
                _init_worker(None)
        ctx = multiprocessing.get_context("spawn")  # safe even when TensorFlow is loaded
        q = ctx.Queue()
        with ctx.Pool(workers, initializer=_init_worker, initargs=(q,)) as pool:
            pending = [pool.apply_async(_process_shard, (t, config)) for t in tasks]
            while not all(p.ready() for p in pending):
                try:
                    bar.update(q.get(timeout=0.1))
                except queue_lib.Empty:
                    pass
            while True:
                try:
                    bar.update(q.get_nowait())
                except queue_lib.Empty:
                    break
            return [p.get() for p in pending]
    finally:
        bar.close()


class _ListQueue:
    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def put(self, n: int) -> None:
        self._bar.update(n)


class _progress_bar:  # noqa: N801 - a tiny wrapper around tqdm that counts images and patches
    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="img", disable=not enabled, dynamic_ncols=True)
        self._patches = 0

    def update(self, patches: int) -> None:
        self._patches += patches
        self._bar.set_postfix(patches=self._patches, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


# ----------------------------------------------------------------------------- reader


def read_patches(record_dir: str, split: str = "train") -> Iterator[dict[str, Any]]:
    """Iterates the records in file order: dicts with
    "input", "label" (float32 numpy HxWxC, values ~[0, 1]), "source" (the image's path relative
    to the input folder, or its TFDS id), "row", "col", "aug" (ints).
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
    for name in files:
        for data in tfrecord.read_records(os.path.join(record_dir, name), manifest["compression"]):
            ex = tfrecord.decode_example(data)
            h, w = ex["height"], ex["width"]
            lh, lw = (h, w) if split == "val" else (manifest["label_size"],) * 2
            yield {
                "input": np.frombuffer(ex["input"], np.float32).reshape(h, w, c),
                "label": np.frombuffer(ex["label"], np.float32).reshape(lh, lw, c),
                "source": ids[ex["source"]],
                "row": ex["row"],
                "col": ex["col"],
                "aug": ex["aug"],
            }


def describe(manifest: dict[str, Any]) -> dict[str, Any]:
    """A machine-independent account of what records hold: source folder names (or the TFDS
    name, or the bundled photographs), patches, training images and the fingerprint."""
    config = manifest["config"]
    if config.get("tfds_name"):
        sources = [f"tfds:{config['tfds_name']}/{config.get('tfds_split', 'train')}"]
    elif config.get("input_dirs"):
        sources = [os.path.basename(os.path.normpath(d)) for d in config["input_dirs"]]
    else:
        sources = ["scikit-image photographs"]
    return {"sources": sources, "patches": manifest["train"]["patches"],
            "images": manifest["train"]["images"], "fingerprint": manifest["fingerprint"]}


def summary(manifest: dict[str, Any]) -> str:
    """One line for the console."""
    val = manifest.get("val") or {"images": 0}
    folders = manifest.get("folders") or []
    per_folder = "" if len(folders) < 2 else " (" + ", ".join(
        f"{f['prefix'].rstrip('/')}: {f['patches']}" for f in folders) + ")"
    return (
        f"x{manifest['scale']}: {manifest['train']['patches']} patches{per_folder} from "
        f"{manifest['train']['images']} images in {len(manifest['train']['shards'])} shards, "
        f"{val['images']} val images, {manifest['skipped']} skipped, "
        f"{manifest['duplicates']} duplicates"
    )

