"""The records writer's process pool: results in order, errors that say what happened."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from srcnn_tf import workers


def test_results_come_back_in_task_order():
    assert workers.run_tasks(abs, [-3, 1, -2, 5], 2, 4, progress=False) == [3, 1, 2, 5]
    assert workers.run_tasks(abs, [-3, 1], 1, 2, progress=False) == [3, 1]


def test_a_task_error_is_raised_as_itself():
    with pytest.raises(ValueError, match="invalid literal"):
        workers.run_tasks(int, ["7", "x"], 2, 2, progress=False)


def test_a_dead_worker_is_an_error_not_a_hang():
    with pytest.raises(workers.WorkerError, match="workers=1"):
        workers.run_tasks(os._exit, [3], 2, 1, progress=False)


def test_a_program_read_from_stdin_gets_the_error():
    """Spawned workers re-import the caller's main module, which `python -` does not have."""
    script = ("from srcnn_tf import workers\n"
              "print(workers.run_tasks(abs, [-1, -2], 2, 2, progress=False))\n")
    out = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True,
                         timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode != 0
    assert "WorkerError" in out.stderr and "python -" in out.stderr
