"""A process pool for the records writer, with one progress bar fed by the workers.

Tasks run in spawned processes (safe even when TensorFlow is loaded in the parent); each calls
`report(patches)` once per image it finishes, which the parent turns into progress.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_lib
from concurrent import futures
from typing import Any, Callable, Sequence

_progress_queue: Any = None


class WorkerError(RuntimeError):
    """A worker process stopped before finishing its tasks."""


def _init_worker(q: Any) -> None:
    global _progress_queue
    _progress_queue = q


def report(patches: int) -> None:
    """Called by a task for each image done (a no-op outside run_tasks)."""
    if _progress_queue is not None:
        _progress_queue.put(patches)


def run_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int, total_images: int,
              progress: bool) -> list[Any]:
    """fn(task) for every task, in `workers` processes (in this one for workers <= 1); results
    in task order. fn must be picklable (a module-level function or a partial of one)."""
    bar = _ProgressBar(total_images, progress)
    try:
        if workers <= 1:
            _init_worker(bar)
            try:
                return [fn(t) for t in tasks]
            finally:
                _init_worker(None)
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        with futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                         initargs=(q,)) as pool:
            pending = [pool.submit(fn, t) for t in tasks]
            while not all(p.done() for p in pending):
                try:
                    bar.put(q.get(timeout=0.1))
                except queue_lib.Empty:
                    pass
            while True:
                try:
                    bar.put(q.get_nowait())
                except queue_lib.Empty:
                    break
            try:
                return [p.result() for p in pending]
            except futures.process.BrokenProcessPool:
                raise WorkerError(
                    f"a worker process (of {workers}) stopped before finishing: killed (out of "
                    f"memory?), or it could not start because the calling program is not a file "
                    f"(spawned workers re-import it; e.g. `python -`): use workers=1") from None
    finally:
        bar.close()


class _ProgressBar:
    """tqdm counting images, with the running patch count as postfix."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="img", disable=not enabled, dynamic_ncols=True)
        self._patches = 0

    def put(self, patches: int) -> None:
        self._patches += patches
        self._bar.set_postfix(patches=self._patches, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
