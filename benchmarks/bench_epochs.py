"""`make bench-epochs`: what an epoch boundary costs the trainer.

Trains the default 9-5-5 x3 recipe (the real `Trainer`, its `train_step` and loader) across one
epoch boundary two ways, alternated round by round: the trainer's own single iterator over
`TrainData.stream`, and a new iterator per `TrainData.epoch` (how its loop used to run). With
the 291-image records (1,526 batches an epoch) a finished per-epoch iterator stalled for tens of
seconds; with T91 (163) the stall is small, so the default records are T91 + BSD200 +
General100 when present.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from typing import Iterable

from benchmarks.common import SHARED_DATA, median_ratio, save

SOURCES = ("T91", "BSD200", "General100")


def default_records(tmp: str) -> str:
    from srcnn_tf import records

    dirs = tuple(str(SHARED_DATA / s) for s in SOURCES if (SHARED_DATA / s).is_dir())
    cfg = records.RecordsConfig(input_dirs=dirs, out_dir=tmp, progress=False)
    records.build_records(cfg)
    return cfg.record_dir


def per_epoch(data) -> Iterable:
    """The old loop's batches: a new iterator for every epoch."""
    for epoch in itertools.count():
        yield from data.epoch(epoch)


def step_seconds(record_dir: str, run_dir: str, mode: str, after: int) -> list[float]:
    """Seconds of each of the first `steps_per_epoch + after` steps of a fresh Trainer."""
    import keras

    from srcnn_tf import train
    from srcnn_tf.devices import resolve_precision

    precision = resolve_precision("auto")
    keras.mixed_precision.set_global_policy(precision or "float32")
    trainer = train.Trainer(train.make_config(record_dir, run_dir, augment=True, progress=False),
                            precision)
    total = trainer.data.steps_per_epoch + after
    batches = trainer.data.stream() if mode == "stream" else per_epoch(trainer.data)
    out, last = [], time.perf_counter()
    for batch in batches:
        float(trainer.train_step(batch))
        now = time.perf_counter()
        out.append(now - last)
        last = now
        if len(out) == total:
            return out
    raise AssertionError("unreachable: both sources have no end")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--after", type=int, default=100,
                        help="steps timed past the boundary")
    parser.add_argument("--records", default=None,
                        help="x3 records (default: built from T91 + BSD200 + General100)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    record_dir = args.records or default_records(f"{tmp}/records")
    modes = ("stream", "per-epoch iterators")
    steps: dict[str, list[list[float]]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for m in (modes if r % 2 == 0 else modes[::-1]):
            steps[m].append(step_seconds(record_dir, f"{tmp}/run_{r}_{m[:6]}", m, args.after))
    spe = len(steps["stream"][0]) - args.after
    # the boundary: the last step of epoch 0 and the first of epoch 1
    boundary = {m: [s[spe - 1] + s[spe] for s in steps[m]] for m in modes}
    wall = {m: [sum(s[1:]) for s in steps[m]] for m in modes}  # without the first (tracing)
    result = {
        "records": record_dir, "steps_per_epoch": spe, "rounds": args.rounds,
        "median_step_s": {m: statistics.median(x for s in steps[m] for x in s[1:]) for m in modes},
        "boundary_s_median": {m: statistics.median(boundary[m]) for m in modes},
        "wall_s_median": {m: statistics.median(wall[m]) for m in modes},
        "speedup_median_ratio": median_ratio(wall["per-epoch iterators"], wall["stream"]),
    }
    save("epochs", result)


if __name__ == "__main__":
    main()
