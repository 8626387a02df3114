"""Plain weights files: a JAX run's newest weights are found by their step."""

from __future__ import annotations

from srcnn_tf import weights


def test_the_newest_run_weights_by_step_other_files_ignored(tmp_path):
    assert weights.latest_weights(str(tmp_path / "missing")) is None
    for name in ("weights-900.npz", "weights-1200.npz", "weights-final.npz", "notes.txt",
                 "weights-50.npz.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert weights.latest_weights(str(tmp_path)) == str(tmp_path / weights.run_file(1200))
    assert weights.run_file(1200) == "weights-1200.npz"
