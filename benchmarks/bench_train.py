"""`make bench-train`: training throughput against the machine's measured fp32 peak.

Per round, in rotating order: TF training steps (9-1-5 / 9-5-5, valid / same, float32 and
mixed_bfloat16) on in-memory tensors; the same fed by the real loader; an equivalent PyTorch
step (same net, batch, threads, channels_last, Adam) when torch is installed; and a large fp32
matmul for the peak. Reports medians, and medians of per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


from benchmarks.common import SHARED_DATA, save


def layer_flops(cfg, size: int, batch: int) -> list[float]:
    """Forward FLOPs (2 x MACs) per layer for a size x size input, valid or same padding."""
    f = cfg.filters
    chans = [(cfg.channels, cfg.n1), (cfg.n1, cfg.n2), (cfg.n2, cfg.channels)]
    out, s = [], size
    for k, (cin, cout) in zip(f, chans):
        s = s - (k - 1) if cfg.padding == "valid" else s
        out.append(2.0 * batch * s * s * k * k * cin * cout)
    return out


def train_flops(cfg, size: int, batch: int) -> float:
    """Forward + weight gradients + input gradients (none for the first layer)."""
    fl = layer_flops(cfg, size, batch)
    return 3 * sum(fl) - fl[0]


def peak_gflops(seconds: float = 1.0) -> float:
    import tensorflow as tf

    n = 2048
    a = tf.random.uniform([n, n])
    b = tf.random.uniform([n, n])
    mm = tf.function(lambda a, b: tf.matmul(a, b))
    mm(a, b).numpy()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        mm(a, b).numpy()
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def tf_case(preset: str, padding: str, batch: int, precision: str, record_dir: str | None):
    """Returns (run(steps) -> seconds, flops per step, loader run or None)."""
    import keras
    import tensorflow as tf

    from srcnn_tf import data as data_lib
    from srcnn_tf import records
    from srcnn_tf.model import ModelConfig, build_srcnn

    keras.mixed_precision.set_global_policy(precision)
    cfg = ModelConfig(preset=preset, padding=padding)
    model = build_srcnn(cfg, seed=0)
    keras.mixed_precision.set_global_policy("float32")
    opt = keras.optimizers.Adam(1e-4)
    out = cfg.output_size(33)
    x = tf.random.uniform([batch, 33, 33, 1])
    y = tf.random.uniform([batch, out, out, 1])

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(model(x, training=True), tf.float32) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply(grads, model.trainable_variables)
        return loss

    step(x, y).numpy()

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss = step(x, y)
        loss.numpy()
        return time.perf_counter() - start

    if not record_dir:
        return run, train_flops(cfg, 33, batch), None
    geometry = data_lib.Geometry.from_manifest(records.load_manifest(record_dir))
    crop = data_lib.check_fit(geometry, cfg)
    data = data_lib.TrainData(record_dir, batch, label_crop=crop, cache=True, verify=False)
    iterator = iter(data.stream())
    for _ in range(3):
        step(*next(iterator))

    def loader_run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss = step(*next(iterator))
        loss.numpy()
        return time.perf_counter() - start

    return run, train_flops(cfg, 33, batch), loader_run


def torch_case(preset: str, padding: str, batch: int, threads: int):
    try:
        import torch
    except ImportError:
        return None
    from srcnn_tf.model import parse_preset

    torch.set_num_threads(threads)
    f1, f2, f3 = parse_preset(preset)
    pad = padding == "same"
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 64, f1, padding=f1 // 2 if pad else 0), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 32, f2, padding=f2 // 2 if pad else 0), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 1, f3, padding=f3 // 2 if pad else 0),
    ).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    out = 33 if pad else 33 - (f1 + f2 + f3 - 3)
    x = torch.rand(batch, 1, 33, 33).to(memory_format=torch.channels_last)
    y = torch.rand(batch, 1, out, out)

    def one():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        opt.step()
        return loss

    one()

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss = one()
        loss.item()
        return time.perf_counter() - start

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--records", default=None,
                        help="records for the loader comparison (default: built from T91 x3)")
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    record_dir = args.records
    if record_dir is None:
        from srcnn_tf import records

        t91 = SHARED_DATA / "T91"
        cfg = records.RecordsConfig(input_dirs=(str(t91),) if t91.is_dir() else (),
                                    out_dir=tempfile.mkdtemp(), progress=False)
        records.build_records(cfg)
        record_dir = cfg.record_dir

    cases = {}
    flops = {}
    for preset in ("9-1-5", "9-5-5"):
        for padding in ("valid", "same"):
            for precision in ("float32", "mixed_bfloat16"):
                name = f"tf {preset} {padding} {precision}"
                with_loader = padding == "valid"
                run, fl, loader = tf_case(preset, padding, args.batch, precision,
                                          record_dir if with_loader else None)
                cases[name] = run
                flops[name] = fl
                if loader:
                    cases[name + " loader"] = loader
                    flops[name + " loader"] = fl
            t = torch_case(preset, padding, args.batch, threads)
            if t:
                cases[f"torch {preset} {padding} float32"] = t
                flops[f"torch {preset} {padding} float32"] = flops[f"tf {preset} {padding} float32"]
    peak: list[float] = []
    times: dict[str, list[float]] = {n: [] for n in cases}
    names = list(cases)
    for r in range(args.rounds):
        peak.append(peak_gflops())
        for n in names[r % len(names):] + names[: r % len(names)]:
            times[n].append(cases[n](args.steps))
    peak_median = statistics.median(peak)
    result = {"threads": threads, "batch": args.batch, "rounds": args.rounds,
              "steps_per_round": args.steps, "fp32_peak_gflops_median": peak_median,
              "cases": {}, "ratios": {}}
    for n in names:
        step_s = [t / args.steps for t in times[n]]
        gflops = [flops[n] / s / 1e9 for s in step_s]
        result["cases"][n] = {
            "patches_per_s": args.batch / statistics.median(step_s),
            "gflops": statistics.median(gflops),
            "share_of_fp32_peak": statistics.median(g / p for g, p in zip(gflops, peak)),
        }

    def ratio(a: str, b: str) -> float | None:
        if a not in times or b not in times:
            return None
        return statistics.median(tb / ta for ta, tb in zip(times[a], times[b]))

    for preset in ("9-1-5", "9-5-5"):
        for precision in ("float32", "mixed_bfloat16"):
            base = f"tf {preset} valid {precision}"
            result["ratios"][f"{base}: loader / in-memory step rate"] = ratio(base + " loader",
                                                                               base)
        for padding in ("valid", "same"):
            tf32 = f"tf {preset} {padding} float32"
            result["ratios"][f"{tf32}: TF / PyTorch speed"] = ratio(tf32, f"torch {preset} "
                                                                            f"{padding} float32")
            result["ratios"][f"tf {preset} {padding}: bfloat16 / float32 speed"] = ratio(
                f"tf {preset} {padding} mixed_bfloat16", tf32)
    save("train", result)


if __name__ == "__main__":
    main()
