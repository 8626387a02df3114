"""`make bench-records`: T91 x3 records with 1 and 2 workers vs a naive per-patch loop.

The naive path is what the popular SRCNN repositories do: one process, a Python loop appending
every patch to a list held in RAM, then a single HDF5 file. It uses the same (MATLAB-exact)
degradation so the comparison is about the pipeline, not the interpolation.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import h5py
import numpy as np

from benchmarks.common import SHARED_DATA, alternate, median_ratio, save
from srcnn_tf import imaging, records


def naive(folder: str, out_file: str, scale: int = 3, size: int = 33, label: int = 21,
          stride: int = 14) -> int:
    inputs, labels = [], []
    pad = (size - label) // 2
    for path in imaging.list_images(folder):
        y = imaging.modcrop(imaging.to_y(imaging.load_image(path)), scale)[..., 0] / 255.0
        bic = imaging.degrade(y, scale)
        for r in range(0, y.shape[0] - size + 1, stride):
            for c in range(0, y.shape[1] - size + 1, stride):
                inputs.append(bic[r : r + size, c : c + size].astype(np.float32).copy())
                labels.append(y[r + pad : r + pad + label, c + pad : c + pad + label]
                              .astype(np.float32).copy())
    with h5py.File(out_file, "w") as f:
        f.create_dataset("data", data=np.stack(inputs)[:, None])
        f.create_dataset("label", data=np.stack(labels)[:, None])
    return len(inputs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", default=str(SHARED_DATA / "T91"))
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    counts = {}

    def ours(workers: int):
        def run():
            m = records.build_records(records.RecordsConfig(
                input_dirs=(args.data,), out_dir=f"{tmp}/w{workers}", workers=workers,
                overwrite=True, progress=False))
            counts[f"workers{workers}"] = m["train"]["patches"]
        return run

    def run_naive():
        counts["naive"] = naive(args.data, f"{tmp}/naive.h5")

    times = alternate({"workers1": ours(1), "workers2": ours(2), "naive": run_naive},
                      args.rounds)
    result = {
        "data": args.data,
        "rounds": args.rounds,
        "patches": counts,
        "median_seconds": {k: statistics.median(v) for k, v in times.items()},
        "median_patches_per_s": {k: counts[k] / statistics.median(v) for k, v in times.items()},
        "speedup_vs_naive_median_ratio": {
            "workers1": median_ratio(times["naive"], times["workers1"]),
            "workers2": median_ratio(times["naive"], times["workers2"]),
        },
    }
    save("records", result)


if __name__ == "__main__":
    main()
