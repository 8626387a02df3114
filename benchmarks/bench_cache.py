"""`make bench-cache`: what `TrainData(cache=True)` costs to load, in seconds and resident memory.

The trainer's cache (one string tensor of every serialised patch, built by tf.data in one batch)
against the way it was built before: a Python list of the records' bytes turned into a tensor.
Each load runs in a fresh process (resident memory is per process), alternated round by round;
default records: T91 + BSD200 + General100 x3 when present.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from benchmarks.bench_epochs import default_records
from benchmarks.common import median_ratio, save

_CHILD = """
import json, resource, sys, time
import tensorflow as tf
from srcnn_tf import data

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

record_dir, mode = sys.argv[1], sys.argv[2]
base, start = rss_mb(), time.perf_counter()
if mode == "tf.data batch":
    cached = data.TrainData(record_dir, 128, cache=True, verify=False)._cached
else:
    d = data.TrainData(record_dir, 128, verify=False)
    raw = tf.data.TFRecordDataset(d.files, compression_type=d.geometry.compression)
    cached = tf.constant(list(raw.as_numpy_iterator()))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "resident_mb": rss_mb() - base,
                  "records_mb": float(tf.reduce_sum(tf.strings.length(cached))) / 2**20,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base}))
"""

MODES = ("tf.data batch", "python list")


def load(record_dir: str, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, record_dir, mode], capture_output=True,
                         text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", default=None,
                        help="records folder (default: x3 from T91 + BSD200 + General100)")
    args = parser.parse_args()
    record_dir = args.records or default_records(f"{tempfile.mkdtemp()}/records")
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    for r in range(args.rounds):
        for m in (MODES if r % 2 == 0 else MODES[::-1]):
            runs[m].append(load(record_dir, m))
    med = {m: {k: statistics.median(x[k] for x in runs[m]) for k in runs[m][0]} for m in MODES}
    result = {
        "records": record_dir, "rounds": args.rounds, "median": med,
        "load_speedup_median_ratio": median_ratio([x["seconds"] for x in runs["python list"]],
                                                  [x["seconds"] for x in runs["tf.data batch"]]),
        "resident_ratio_median": median_ratio([x["resident_mb"] for x in runs["python list"]],
                                              [x["resident_mb"] for x in runs["tf.data batch"]]),
    }
    save("cache", result)


if __name__ == "__main__":
    main()
