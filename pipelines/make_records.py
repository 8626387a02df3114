"""Builds the patch TFRecords: `make records SCALE=3 DATA=path/to/images`.

python -m pipelines.make_records --scale=3 --input_dir=../shared/data/T91 --out_dir=tfrecords
"""

from __future__ import annotations

import os
import time

from absl import app, flags, logging

from .common import fail, parse_scales
from srcnn_tf import imaging, records, workers

_D = records.RecordsConfig()  # the paper's values, one source of truth for the defaults

_SCALE = flags.DEFINE_list(
    "scale", [str(_D.scale)], "Upscaling factor, or several for a multi-scale set (1.5,2,2.5,3: "
    "patch positions take them in turn, each patch stores its own; folder x1.5,2,2.5,3). "
    "Fractional factors p/q crop images to multiples of p.")
_INPUT_DIR = flags.DEFINE_list(
    "input_dir", None, "Folder(s) of training images, comma-separated (recursive: png, jpg, "
    "bmp, tif, webp). Neither this nor --tfds_name: scikit-image's bundled photographs.")
_TFDS_NAME = flags.DEFINE_string("tfds_name", None, "TFDS image dataset, e.g. div2k/bicubic_x2.")
_TFDS_SPLIT = flags.DEFINE_string("tfds_split", _D.tfds_split, "TFDS split.")
_TFDS_IMAGE_KEY = flags.DEFINE_string("tfds_image_key", _D.tfds_image_key,
                                      "TFDS feature holding the HR image (div2k: hr).")
_OUT_DIR = flags.DEFINE_string("out_dir", _D.out_dir, "Records root; writes <out_dir>/x<scale>/.")
_CHANNELS = flags.DEFINE_enum("channels", str(_D.channels), ["1", "3"], "1: Y (paper); 3: RGB.")
_PATCH_SIZE = flags.DEFINE_integer("patch_size", _D.patch_size, "Input patch size.", lower_bound=1)
_LABEL_SIZE = flags.DEFINE_integer(
    "label_size", _D.label_size, "Centred label size (= patch_size for 'same' padding).",
    lower_bound=1)
_STRIDE = flags.DEFINE_integer("stride", _D.stride, "Patch stride.", lower_bound=1)
_BLUR = flags.DEFINE_float("blur_sigma", _D.blur_sigma,
                           "Gaussian blur sigma before downscaling (0: none, as published).",
                           lower_bound=0.0)
_AUGMENT = flags.DEFINE_bool("augment", _D.augment,
                             "Add rot90/flip and 0.9..0.6 downscaled copies of each image.")
_DOWNSCALE = flags.DEFINE_bool("downscale_copies", _D.downscale_copies,
                               "Add the 0.9..0.6 downscaled copies only (make train's default "
                               "recipe adds the flips/rotations on the fly).")
_EDGE_PAD = flags.DEFINE_integer(
    "edge_pad", _D.edge_pad, "Edge-replicate each training image by this many pixels a side "
    "before cutting patches, so patches also reach past its edges as the model's own edge "
    "padding does at inference (the model's border: 8 for 9-5-5, 6 for 9-1-5).", lower_bound=0)
_VAL_FRACTION = flags.DEFINE_float("val_fraction", _D.val_fraction,
                                   "Fraction of images held out as whole-image validation.",
                                   lower_bound=0.0, upper_bound=0.9)
_VAL_DIR = flags.DEFINE_string("val_dir", None, "Validation images (instead of a held-out part).")
_NUM_SHARDS = flags.DEFINE_integer("num_shards", _D.num_shards, "Training shards.", lower_bound=1)
_COMPRESSION = flags.DEFINE_enum("compression", "none", ["none", "gzip"], "Shard compression.")
_MAX_PIXELS = flags.DEFINE_integer(
    "max_pixels", records.RecordsConfig.max_pixels, "Images that declare more pixels (width x "
    "height) are skipped and counted (an error with --strict); nothing is decoded first.",
    lower_bound=1)
_WORKERS = flags.DEFINE_integer("workers", 0, "Processes (0: all cores).", lower_bound=0)
_STRICT = flags.DEFINE_bool("strict", False, "Bad input images are errors, not warnings.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Rebuild even when up to date.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")


@flags.multi_flags_validator(["patch_size", "label_size"],
                             message="--label_size must be <= --patch_size and differ by an even "
                             "number (the label is centred)")
def _check_geometry(f: dict) -> bool:
    return f["label_size"] <= f["patch_size"] and (f["patch_size"] - f["label_size"]) % 2 == 0


@flags.multi_flags_validator(["input_dir", "tfds_name"],
                             message="give --input_dir or --tfds_name, not both")
def _check_source(f: dict) -> bool:
    return not (f["input_dir"] and f["tfds_name"])


def _is_dir_or_none(path: str | None) -> bool:
    return path is None or os.path.isdir(path)


@flags.validator("input_dir", message="--input_dir: every folder must exist, each given once")
def _check_input_dirs(value: list[str] | None) -> bool:
    if not value:
        return True
    missing = [v for v in value if not os.path.isdir(v)]
    if missing:
        raise flags.ValidationError(f"--input_dir: not a directory: {', '.join(missing)}")
    if len({os.path.realpath(v) for v in value}) != len(value):
        raise flags.ValidationError(f"--input_dir: a folder is given twice: {','.join(value)}")
    return True


@flags.validator("scale")
def _check_scale(value: list[str]) -> bool:
    parse_scales(value, "scale")
    return True


flags.register_validator("val_dir", _is_dir_or_none, message="--val_dir is not a directory")


def config_from_flags() -> records.RecordsConfig:
    return records.RecordsConfig(
        scale=imaging.scale_json(parse_scales(_SCALE.value, "scale")), out_dir=_OUT_DIR.value,
        input_dirs=tuple(_INPUT_DIR.value or ()),
        tfds_name=_TFDS_NAME.value, tfds_split=_TFDS_SPLIT.value,
        tfds_image_key=_TFDS_IMAGE_KEY.value, channels=int(_CHANNELS.value),
        patch_size=_PATCH_SIZE.value, label_size=_LABEL_SIZE.value, stride=_STRIDE.value,
        blur_sigma=_BLUR.value, augment=_AUGMENT.value,
        downscale_copies=_DOWNSCALE.value, edge_pad=_EDGE_PAD.value,
        val_fraction=_VAL_FRACTION.value,
        val_dir=_VAL_DIR.value, num_shards=_NUM_SHARDS.value,
        compression="" if _COMPRESSION.value == "none" else "GZIP",
        max_pixels=_MAX_PIXELS.value, workers=_WORKERS.value,
        strict=_STRICT.value, overwrite=_OVERWRITE.value, progress=_PROGRESS.value,
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = config_from_flags()
    start = time.perf_counter()
    try:
        manifest = records.build_records(config)
    except (ValueError, FileNotFoundError, workers.WorkerError) as e:
        fail(e)
    seconds = time.perf_counter() - start
    state = "up to date, nothing written" if manifest.get("up_to_date") else "written"
    logging.info("%s: %s [%s, %.1f s]", config.record_dir, records.summary(manifest), state,
                 seconds)


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
