"""Numbers and durations as short strings for narrow table cells and labels."""
from __future__ import annotations

import math


def num(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits; "-" when unknown."""
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) >= 10 ** digits:  # no exponent for counts of epochs
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def fixed(value: float | None, decimals: int = 3) -> str:
    """``value`` with ``decimals`` decimals (exponents in [0, 1] read best aligned); "-" when unknown."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{decimals}f}"


def pm(mean: float, std: float, digits: int = 3) -> str:
    """"mean ± std", or just the mean when the spread is unknown."""
    if not math.isfinite(mean):
        return "-"
    return num(mean, digits) if not math.isfinite(std) else f"{num(mean, digits)} ± {num(std, 2)}"


def duration(seconds: float | None) -> str:
    """H:MM:SS (or days for very long runs); "--" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    if seconds >= 3 * 86400:
        return f"{seconds / 86400:.1f} days"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
