"""A training loop's clock and progress bar."""

from __future__ import annotations

import time

from srcnn_tf.meters import Clock, Progress


def test_the_clock_adds_this_session_to_the_earlier_ones():
    clock = Clock(90.0)
    time.sleep(0.05)
    assert 90.05 <= clock.seconds() < 100 and 1.5 < clock.minutes() < 1.7


def test_the_progress_bar_counts_steps_and_shows_the_validation(capsys):
    bar = Progress(total=10, initial=2, enabled=True, batch=4)
    bar.update(0.5)
    bar.set(val_psnr=31.25)
    bar.update(0.25)
    assert bar._bar.n == 4 and bar._post["val"] == "31.25dB" and bar._post["loss"] == "2.50e-01"
    bar.close()
    assert "4/10" in capsys.readouterr().err
    silent = Progress(total=10, initial=0, enabled=False, batch=4)
    silent.update(1.0)
    silent.close()
    assert capsys.readouterr().err == ""
