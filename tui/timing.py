"""Remaining time of a run, from how fast its work gets done while the app watches it.

Two measures of work come from the file: ``done``, the share in finished units, and ``fraction``,
which adds the epochs written by units in flight. Once units finish, the rate of ``done`` is used,
counting down between completions: ``fraction`` counts the tau phase (references training towards
the target) against its whole budget, and most units end it early. Before any unit finishes,
``fraction`` is used.
"""
from __future__ import annotations

import time
from collections.abc import Callable


class EtaClock:
    """Measures from what it sees, so time before it started watching or while stopped does not count."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Forget the rates (a run was stopped or restarted)."""
        self._start: tuple[float, float, float] | None = None  # (time, fraction, done) when watching began
        self._moved: tuple[float, float] | None = None  # (time, fraction) at the first change seen
        self._finished: list[tuple[float, float]] = []  # (time, done) whenever units finished

    def update(self, fraction: float, done: float) -> float | None:
        """Seconds left; None while no rate is known."""
        now = self._clock()
        if self._start is not None and (fraction < self._start[1] or done < self._start[2]):
            self.reset()  # another run replaced the file
        if self._start is None:
            self._start = (now, fraction, done)
            return None
        if fraction >= 1:
            return 0.0
        if self._moved is None and fraction > self._start[1]:
            self._moved = (now, fraction)
        last_done = self._finished[-1][1] if self._finished else self._start[2]
        if done > last_done:
            self._finished.append((now, done))
        if self._finished:
            t0, d0 = self._finished[0] if len(self._finished) > 1 else (self._start[0], self._start[2])
            t1, d1 = self._finished[-1]
            if d1 > d0 and t1 > t0:
                left = (1 - d1) * (t1 - t0) / (d1 - d0) - (now - t1)
                return left if left > 0 else None  # overdue: the rate no longer tells
        if self._moved is not None and fraction > self._moved[1]:
            t0, f0 = self._moved
            return (1 - fraction) * (now - t0) / (fraction - f0)
        return None
