"""Numbers as short strings for narrow table cells and labels (durations: :func:`gdchaos.text.duration`)."""
from __future__ import annotations

import math

from gdchaos.text import number as num

__all__ = ["fixed", "num", "pm"]


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
