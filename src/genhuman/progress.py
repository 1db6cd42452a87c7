"""Progress reporting shared by the CLI (tqdm bar), the API and the server (job progress).

A ``ProgressFn`` is called as ``progress(fraction, message)`` with fraction in [0, 1].
A ``CancelFn`` returns True when the caller wants the work to stop; long loops call
:func:`check_cancel` between units of work.
"""

from __future__ import annotations

from typing import Callable, Optional

from genhuman.errors import Cancelled

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]


def report(progress: Optional[ProgressFn], fraction: float, message: str = "") -> None:
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


def check_cancel(should_cancel: Optional[CancelFn]) -> None:
    if should_cancel is not None and should_cancel():
        raise Cancelled("cancelled")


class Stage:
    """Maps a sub-task's own 0..1 progress into a [start, end] slice of the whole."""

    def __init__(self, progress: Optional[ProgressFn], start: float, end: float):
        self.progress, self.start, self.end = progress, start, end

    def __call__(self, fraction: float, message: str = "") -> None:
        report(self.progress, self.start + (self.end - self.start) * fraction, message)


class Laps:
    """Wall time per stage: ``laps("decode")`` records the time since the previous lap."""

    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self._clock = self._now()
        self.timings: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        now = self._now()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._clock
        self._clock = now
