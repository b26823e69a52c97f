"""The grammars of the values a user lists: learning rates and initial-condition indices, one each, for
every command and config file.

A learning-rate grid is a list (TOML list, or ``"1,2.5,5"``), ``"START:STOP:N"`` (N values evenly
spaced, ``numpy.linspace``) or ``"log:START:STOP:N"`` (N values evenly spaced in log eta,
``numpy.geomspace``); every learning rate must be a finite number > 0. ``gdchaos run --etas auto[:N]``
asks for N learning rates centred on a find-lr onset (:func:`parse_auto`; resolved by the command,
not here). Indices are a list,
``"0,3,7"``, ranges ``"A:B"`` (A..B-1) or ``"all"``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gdchaos.checks import check_int, check_positive, is_number
from gdchaos.errors import GdchaosError

SYNTAX = "a list such as 1,2.5,5, START:STOP:N or log:START:STOP:N"
MAX_LEARNING_RATES = 100_000  # a grid larger than this is a typo, not a sweep
AUTO_COUNT = 16  # learning rates of ``auto`` without N (the paper's grid has 16)


def parse_etas(value: Any, field: str = "etas") -> tuple[float, ...]:
    """Learning rates from a list, a number, ``"a,b,c"``, ``"START:STOP:N"`` or ``"log:START:STOP:N"``.

    ``field`` names the value in error messages (``etas``, ``--etas``).
    """
    if parse_auto(value, field) is not None:
        raise GdchaosError(f"{field}: auto[:N] is resolved by `gdchaos run --etas auto[:N]` from a find-lr result; "
                           f"here give {SYNTAX}")
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif is_number(value):
        items = [value]
    elif isinstance(value, str):
        items = _parse_text(value.strip(), field)
    else:
        raise GdchaosError(f"{field}: must be {SYNTAX}; got {value!r}")
    if not items:
        raise GdchaosError(f"{field}: must be {SYNTAX}; got {value!r}")
    if len(items) > MAX_LEARNING_RATES:
        raise GdchaosError(f"{field}: at most {MAX_LEARNING_RATES:,} learning rates; got {len(items):,}")
    etas = []
    for item in items:
        if isinstance(item, str):
            try:
                item = float(item)
            except ValueError:
                raise GdchaosError(f"{field}: every learning rate must be a number; got {value!r}") from None
        etas.append(check_positive(field, item))
    return tuple(etas)


def parse_auto(value: Any, field: str = "etas") -> int | None:
    """N of ``"auto"`` (N = AUTO_COUNT) or ``"auto:N"`` (N >= 2): learning rates centred on a find-lr
    onset (docs/find-lr.md); None for any other value."""
    if not isinstance(value, str) or not value.strip().lower().startswith("auto"):
        return None
    head, colon, count = value.strip().partition(":")
    if head.lower() != "auto" or (colon and not count.strip().isdigit()):
        raise GdchaosError(f"{field}: must be auto or auto:N with an integer N >= 2; got {value!r}")
    return check_int(field, int(count), 2, MAX_LEARNING_RATES) if colon else AUTO_COUNT


def _parse_text(text: str, field: str) -> list[Any]:
    """The items of a comma list, or the values of a START:STOP:N / log:START:STOP:N range."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        return [item.strip() for item in text.split(",") if item.strip()]
    logarithmic = len(parts) == 4
    if logarithmic and parts.pop(0).strip().lower() != "log":
        raise GdchaosError(f"{field}: unknown spacing in {text!r}; use START:STOP:N or log:START:STOP:N")
    try:
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise GdchaosError(f"{field}: cannot read {text!r}; use START:STOP:N or log:START:STOP:N") from None
    if not 1 <= count <= MAX_LEARNING_RATES:
        raise GdchaosError(f"{field}: N must be an integer in [1, {MAX_LEARNING_RATES:,}] in {text!r}")
    if logarithmic:
        if not (start > 0 and stop > 0):
            raise GdchaosError(f"{field}: log spacing needs START > 0 and STOP > 0; got {text!r}")
        return list(np.geomspace(start, stop, count))
    return list(np.linspace(start, stop, count))


INDEX_SYNTAX = "indices such as 0,3,7, ranges A:B (A..B-1) or all"


def parse_indices(value: Any, field: str, count: int | None = None) -> tuple[int, ...]:
    """Indices from a list, ``"0,3,7"``, ``"A:B"`` ranges (A..B-1; A omitted: 0, B omitted: ``count``) or
    ``"all"`` / ``""`` (every index: ``()`` while ``count`` is unknown). With ``count``, each index must
    lie in [0, count)."""
    if isinstance(value, str) and value.strip().lower() in ("", "all"):
        return () if count is None else tuple(range(count))
    items: list[Any] = []
    if isinstance(value, str):
        try:
            for token in (token.strip() for token in value.split(",") if token.strip()):
                low, colon, high = token.partition(":")
                if not colon:
                    items.append(int(token))
                elif high.strip() or count is not None:
                    items.extend(range(int(low or 0), int(high) if high.strip() else count))
                else:
                    raise ValueError
        except ValueError:
            raise GdchaosError(f"{field}: must be {INDEX_SYNTAX}; got {value!r}") from None
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    high = None if count is None else count - 1
    return tuple(check_int(field, item, 0, high) for item in items)
