"""Notes on a finished results file: a JSON text attribute at the root that a later step adds
(``find_lr``: the learning-rate probe's rows and suggestions, docs/find-lr.md).

A note is written under the file's lock, with no writer in SWMR mode (HDF5 adds no attribute then),
so a run never sees a half-written file; readers read it like any other attribute.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py

from gdchaos.errors import GdchaosError
from gdchaos.store.format import FORMAT
from gdchaos.store.lock import Lock
from gdchaos.store.reader import open_handle
from gdchaos.store.verify import reason_of

NOTE_PREFIX = "note_"  # attribute names of notes, apart from the run's own attributes


def write_note(path: str | Path, name: str, values: dict[str, Any]) -> None:
    """Store ``values`` (JSON types) as note ``name`` of the results file ``path``, replacing an older one."""
    path = Path(path)
    lock = Lock.acquire(path)
    try:
        with h5py.File(path, "r+", libver="latest", locking=False) as handle:
            if handle.attrs.get("format") != FORMAT:
                raise GdchaosError(f"{path}: not a gdchaos results file")
            handle.attrs[NOTE_PREFIX + name] = json.dumps(values, sort_keys=True)
    except OSError as exc:
        raise GdchaosError(f"output: cannot write a note into {path}: {reason_of(exc)}") from None
    finally:
        lock.release()


def read_note(path: str | Path, name: str) -> dict[str, Any] | None:
    """Note ``name`` of the results file ``path`` (None when it has none)."""
    path = Path(path)
    try:
        with open_handle(path) as handle:
            if handle.attrs.get("format") != FORMAT:
                raise GdchaosError(f"{path}: not a gdchaos results file")
            text = handle.attrs.get(NOTE_PREFIX + name)
    except OSError:
        raise GdchaosError(f"{path}: not a readable HDF5 file") from None
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise GdchaosError(f"{path}: its {name} note is not JSON") from None
