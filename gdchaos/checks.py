"""The one set of validation helpers. Every bad value becomes one line for people, in one format:

    FIELD: must be REQUIREMENT; got VALUE

(a :class:`~gdchaos.errors.GdchaosError`), e.g. ``model.l2: must be a finite number >= 0; got -1.0``.
The field is named as the user wrote it (``ics``, ``model.layers[2].kernel``, ``--seed``), so the
command line and the TUI can point at it.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any, NoReturn

import numpy as np

from gdchaos.errors import GdchaosError


def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a boolean."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An integer or a float (Python or NumPy), not a boolean."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def fail(field: str, requirement: str, value: Any) -> NoReturn:
    """Raise the one-line error ``FIELD: must be REQUIREMENT; got VALUE``."""
    raise GdchaosError(f"{field}: must be {requirement}; got {value!r}")


def check_bool(field: str, value: Any) -> bool:
    """``value`` when it is a boolean (TOML ``true``/``false``; not "no", 0 or 1)."""
    if not isinstance(value, (bool, np.bool_)):
        fail(field, "true or false", value)
    return bool(value)


def check_text(field: str, value: Any, *, optional: bool = False) -> str | None:
    """``value`` when it is a string (or None, when ``optional``)."""
    if not (isinstance(value, str) or (optional and value is None)):
        fail(field, "a string" + (" or absent" if optional else ""), value)
    return value


def check_choice(field: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` when it is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        fail(field, "one of " + ", ".join(str(item) for item in allowed), value)
    return value


def _interval(low: float | None, high: float | None, open_low: bool, open_high: bool) -> str:
    low_text, high_text = _bound(low), _bound(high)
    if high is None:
        return "" if low is None else f" {'>' if open_low else '>='} {low_text}"
    if low is None:
        return f" {'<' if open_high else '<='} {high_text}"
    return f" in {'(' if open_low else '['}{low_text}, {high_text}{')' if open_high else ']'}"


def _bound(value: float | None) -> str:
    """Integers in full (a seed's bound is 2^63 - 1), other numbers short."""
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_int(field: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` when it is an integer in [low, high] (either bound may be None)."""
    if not is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        fail(field, "an integer" + _interval(low, high, False, False), value)
    return int(value)


def check_number(field: str, value: Any, low: float | None = None, high: float | None = None, *,
                 open_low: bool = False, open_high: bool = False) -> float:
    """``value`` when it is a finite number within the bounds (``open_*``: the bound itself is excluded)."""
    bad = not is_number(value) or not math.isfinite(value)
    if not bad and low is not None:
        bad = value <= low if open_low else value < low
    if not bad and high is not None:
        bad = value >= high if open_high else value > high
    if bad:
        fail(field, "a finite number" + _interval(low, high, open_low, open_high), value)
    return float(value)


def check_positive(field: str, value: Any) -> float:
    """``value`` when it is a finite number > 0."""
    return check_number(field, value, 0, open_low=True)


def check_keys(field: str, values: Iterable[str], known: Iterable[str]) -> None:
    """Raise on the first key of ``values`` that is not ``known``, listing the known ones."""
    known = tuple(known)
    for key in values:
        if key not in known:
            raise GdchaosError(f"{field}: unknown key {key!r}; allowed: {', '.join(known)}")


def floats_where_declared(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` for the dataclass ``cls`` with integers given for its ``float`` fields made floats
    (``target = 1`` in TOML), so that the numbers reach the kernels with one type."""
    declared = {f.name for f in dataclasses.fields(cls) if f.type in ("float", float)}
    return {key: float(value) if key in declared and is_int(value) else value for key, value in values.items()}
