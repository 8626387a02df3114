"""Helpers for benchmarks: alternate what is compared, round by round, and report medians."""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import time
from typing import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("SRCNN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Runs every case once per round, in rotating order; returns seconds per case per round."""
    names = list(cases)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            out[n].append(timed(cases[n]))
    return out


def median_ratio(num: list[float], den: list[float]) -> float:
    """Median over rounds of num[i] / den[i] (side-by-side ratios, robust to host drift)."""
    return statistics.median(a / b for a, b in zip(num, den))


def save(name: str, result: dict) -> None:
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
