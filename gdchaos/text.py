"""Numbers and durations as short text for people: tables, log lines, the TUI."""
from __future__ import annotations

import math


def number(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits; "-" when unknown (None, NaN, inf)."""
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) >= 10 ** digits:  # no exponent for counts of epochs
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def duration(seconds: float | None) -> str:
    """M:SS or H:MM:SS, days for very long runs; "--:--" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    if seconds >= 3 * 86400:
        return f"{seconds / 86400:.1f} days"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
