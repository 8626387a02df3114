"""Packs what a JAX training needs on a machine without TensorFlow: `make jax-bundle`.

python -m pipelines.jax_bundle --records=tfrecords/291g/x3 --out_dir=bundle \
    --init_from=saved_models/srcnn_x3/6,saved_models/srcnn_x2/5

Writes <out_dir>/images.npz (the records' source images as uint8 Y, ~30 MB for 340 images; the
JAX trainer cuts the records' own patches from it at any factor) and, per --init_from, a
weights file <model>-<version>.npz with the training chain it continues.
"""

from __future__ import annotations

import os

from absl import app, flags

from .common import fail, require_records_folder
from srcnn_tf import packs, runs, weights
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers

_RECORDS = flags.DEFINE_string("records", None, "Records folder whose images to pack.",
                               required=True)
_OUT_DIR = flags.DEFINE_string("out_dir", "bundle", "Folder to write into (created).")
_INIT_FROM = flags.DEFINE_list("init_from", [], "Exported version folders or run directories "
                               "whose weights the JAX runs start from.")

require_records_folder("records")


def bundle_weights(source: str, out_dir: str) -> str:
    """Writes the weights of `source` (runs.describe_init) as <label>.npz; returns the path."""
    info = runs.describe_init(source)
    model = build_srcnn(ModelConfig(**info["model"]), dtype="float32")
    runs.restore_weights(model, info.pop("checkpoint"))
    return weights.write_warm_start(out_dir, [layer.get_weights() for layer in conv_layers(model)],
                                    info)


def main(argv: list[str]) -> None:
    del argv
    try:
        os.makedirs(_OUT_DIR.value, exist_ok=True)
        out = os.path.join(_OUT_DIR.value, "images.npz")
        info = packs.write_pack(_RECORDS.value, out)
        print(f"{out}: {info['train']} training + {info['val']} held-out images, "
              f"{info['bytes'] / 2**20:.1f} MiB")
        for source in _INIT_FROM.value:
            print(f"{bundle_weights(source, _OUT_DIR.value)}: the weights of {source}")
    except (ValueError, FileNotFoundError) as e:
        fail(e)


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
