"""Small meters the pipeline's stages keep: mean busy time per frame, frames per second over the last second."""

from __future__ import annotations

import time


class StageClock:
    """Busy seconds of a stage (or latencies): their count and mean."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, seconds: float) -> None:
        self.total += seconds
        self.count += 1

    @property
    def mean_ms(self) -> float:
        return 1000.0 * self.total / self.count if self.count else 0.0


class FrameRate:
    """Frames per second over the last second or so (for the HUD)."""

    def __init__(self) -> None:
        self._times: list[float] = []

    def tick(self) -> None:
        now = time.monotonic()
        self._times.append(now)
        while len(self._times) > 2 and now - self._times[0] > 1.0:
            self._times.pop(0)

    @property
    def fps(self) -> float | None:
        if len(self._times) < 2:
            return None
        return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-6)


__all__ = ["StageClock", "FrameRate"]
