"""A training loop's instruments: its wall clock (kept across resumes) and its progress bar."""

from __future__ import annotations

import time


class Clock:
    """Training wall time: what earlier sessions of the run accumulated plus this one's."""

    def __init__(self, earlier_seconds: float) -> None:
        self.earlier, self.start = earlier_seconds, time.perf_counter()

    def seconds(self) -> float:
        return self.earlier + time.perf_counter() - self.start

    def minutes(self) -> float:
        return self.seconds() / 60.0


class Progress:
    """Console progress bar with patches/s and ETA (tqdm), silent when disabled."""

    def __init__(self, total: int, initial: int, enabled: bool, batch: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, initial=initial, disable=not enabled, unit="step",
                         dynamic_ncols=True)
        self._batch = batch
        self._post: dict[str, str] = {}

    def update(self, loss: float) -> None:
        self._post["loss"] = f"{loss:.2e}"
        rate = self._bar.format_dict.get("rate") or 0
        self._post["patch/s"] = f"{rate * self._batch:.0f}"
        self._bar.set_postfix(self._post, refresh=False)
        self._bar.update(1)

    def set(self, val_psnr: float) -> None:
        self._post["val"] = f"{val_psnr:.2f}dB"

    def close(self) -> None:
        self._bar.close()
