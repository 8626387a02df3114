"""Where training images come from: folders (one or several), a TFDS dataset, or the
photographs bundled with scikit-image; deduplication and the held-out validation split."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from typing import Any, Iterator, Sequence

from srcnn_tf import imaging

DEFAULT_IMAGES = (
    "astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
    "motorcycle_left.png", "moon.png", "brick.png", "grass.png", "gravel.png",
    "hubble_deep_field.jpg",
)  # fmt: skip

log = logging.getLogger("srcnn_tf.sources")


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """Which images: `input_dirs` (in order), or `tfds_name`, or (neither) the bundled photos;
    validation from `val_dir` or an evenly spread `val_fraction` of them."""

    input_dirs: tuple[str, ...] = ()
    tfds_name: str | None = None
    tfds_split: str = "train"
    tfds_image_key: str = "image"
    val_dir: str | None = None
    val_fraction: float = 0.05

    def validate(self) -> None:
        """Raises ValueError naming the field."""
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
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclasses.dataclass(frozen=True)
class Source:
    """One input image: where to read it and how it is named in the manifest and Examples."""

    id: str  # path relative to the input folder, or "<tfds name>/<split>/<index>"
    path: str | None = None  # file sources
    tfds_index: int | None = None  # TFDS sources
    sha256: str | None = None  # of the encoded file (files: known up front)


def default_image_dir() -> str:
    """The natural photographs that ship inside scikit-image (offline demo data)."""
    import skimage.data

    return os.path.dirname(skimage.data.__file__)


def file_sources(folder: str, names: Sequence[str] | None = None, prefix: str = "") -> list[Source]:
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


def tfds_sources(name: str, split: str, image_key: str) -> list[Source]:
    """One Source per example of TFDS dataset `name`'s `split`, downloaded and prepared first.
    Raises ValueError naming `name` when there is no such dataset or it cannot be prepared."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name)
    except tfds.core.registered.DatasetNotFoundError as e:  # its message lists every dataset
        raise ValueError(f"tfds_name {name!r}: {str(e).splitlines()[0]}") from None
    try:
        builder.download_and_prepare()
    except Exception as e:  # network, disk, checksum, manual-download errors: all the user's to fix
        raise ValueError(f"tfds_name {name!r}: could not be downloaded and prepared "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    try:
        n = builder.info.splits[split].num_examples
    except KeyError:  # no split metadata: count the (undecoded) examples
        skip = {image_key: tfds.decode.SkipDecoding()}
        n = sum(1 for _ in tfds.load(name, split=split, decoders=skip))
    return [Source(id=f"{name}/{split}/{i}", tfds_index=i) for i in range(n)]


def iter_encoded(sources: Sequence[Source], config: SourceSpec) -> Iterator[tuple[Source, bytes]]:
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



def split_val(sources: list[Source], fraction: float) -> tuple[list[Source], list[Source]]:
    """Deterministic, evenly spread choice of max(1, round(fraction * n)) validation images."""
    if fraction <= 0 or len(sources) < 2:
        return sources, []
    n_val = min(len(sources) - 1, max(1, round(fraction * len(sources))))
    picks = {int((i + 0.5) * len(sources) / n_val) for i in range(n_val)}
    return [s for i, s in enumerate(sources) if i not in picks], [
        s for i, s in enumerate(sources) if i in picks
    ]


def dedupe(sources: list[Source]) -> tuple[list[Source], list[dict[str, Any]]]:
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


def collect_sources(config: SourceSpec) -> tuple[list[Source], list[Source], list[dict]]:
    """(train sources, val sources, duplicate entries) for the config's input."""
    if config.tfds_name:
        sources = tfds_sources(config.tfds_name, config.tfds_split, config.tfds_image_key)
    elif config.input_dirs:
        sources = []
        for folder, prefix in zip(config.input_dirs, folder_prefixes(config.input_dirs)):
            found = file_sources(folder, prefix=prefix)
            if not found:
                raise ValueError(f"input_dirs: no images found in {folder!r} "
                                 f"(extensions {imaging.IMAGE_EXTENSIONS})")
            sources += found
    else:
        sources = file_sources(default_image_dir(), DEFAULT_IMAGES)
    if not sources:
        raise ValueError(f"no images found in {config.tfds_name!r}")
    sources, dups = dedupe(sources)
    if config.val_dir:
        val = file_sources(config.val_dir)
        if not val:
            raise ValueError(f"val_dir: no images found in {config.val_dir!r}")
        val = [dataclasses.replace(v, id="val/" + v.id) for v in val]
        return sources, val, dups
    train, val = split_val(sources, config.val_fraction)
    return train, val, dups


def folder_counts(folders: Sequence[str], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


def source_names(config: dict[str, Any]) -> list[str]:
    """Source names of a records config: folder names, the TFDS name or the bundled photos."""
    if config.get("tfds_name"):
        return [f"tfds:{config['tfds_name']}/{config.get('tfds_split', 'train')}"]
    if config.get("input_dirs"):
        return [os.path.basename(os.path.normpath(d)) for d in config["input_dirs"]]
    return ["scikit-image photographs"]
