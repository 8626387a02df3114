"""`make bench-infer`: megapixels/s on a 512x512 Y image for the Keras model, the SavedModel and
each TFLite variant (9-1-5 and 9-5-5), with the share of the measured fp32 peak.

Speed does not depend on the weights, so freshly initialised models are used (int8 is
prepared on bicubic patches of the bundled photographs, without the distillation, which changes
weights only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np

from benchmarks.bench_train import layer_flops, peak_gflops
from benchmarks.common import alternate, save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="calls per timing")
    args = parser.parse_args()

    import tensorflow as tf

    from srcnn_tf import export, predictors, records
    from srcnn_tf import tflite as tflite_lib
    from srcnn_tf.model import ModelConfig, build_srcnn

    tmp = tempfile.mkdtemp()
    rec = records.RecordsConfig(out_dir=os.path.join(tmp, "rec"), progress=False, stride=28)
    records.build_records(rec)
    x = np.random.default_rng(0).uniform(size=(args.size, args.size, 1)).astype(np.float32)
    cases, flops = {}, {}
    for preset in ("9-1-5", "9-5-5"):
        cfg = ModelConfig(preset=preset)
        model = build_srcnn(cfg, seed=0)
        path = export.export_saved_model(model, cfg, 3, os.path.join(tmp, preset))
        cases[f"{preset} keras"] = predictors.keras_predictor(model, cfg)
        cases[f"{preset} savedmodel"] = predictors.saved_model_y_predictor(path)
        result = tflite_lib.export_tflite(path, rec.record_dir, None, 3, rounds=1, latency_size=32,
                                          finetune_steps=0)  # the same graph either way
        for variant in tflite_lib.VARIANTS:
            cases[f"{preset} tflite {variant}"] = predictors.TFLiteY(
                os.path.join(result["dir"], f"srcnn_x3_{variant}.tflite"))
        fl = sum(layer_flops(cfg, args.size + 2 * cfg.border, 1))
        for name in list(cases):
            if name.startswith(preset):
                flops[name] = fl
    for fn in cases.values():
        fn(x)

    def timed_case(fn):
        return lambda: [fn(x) for _ in range(args.repeats)]

    peaks = []
    runs = {n: timed_case(fn) for n, fn in cases.items()}
    runs["peak"] = lambda: peaks.append(peak_gflops(0.5))
    times = alternate(runs, args.rounds)
    peak = statistics.median(peaks)
    mp = args.size * args.size / 1e6
    out = {"size": args.size, "rounds": args.rounds, "threads": os.cpu_count(),
           "fp32_peak_gflops_median": peak, "cases": {}}
    for n in cases:
        per_call = [t / args.repeats for t in times[n]]
        out["cases"][n] = {
            "megapixels_per_s": mp / statistics.median(per_call),
            "gflops": flops[n] / statistics.median(per_call) / 1e9,
            "share_of_fp32_peak": statistics.median(flops[n] / s / 1e9 / p
                                                    for s, p in zip(per_call, peaks)),
        }
    save("infer", out)
    del tf


if __name__ == "__main__":
    main()
