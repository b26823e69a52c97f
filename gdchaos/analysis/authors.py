"""Reader for the authors' published distance files (one HDF5 file per learning rate).

Layout: one dataset ``weights`` shaped (n_eps, n_init, n_pert, T+1) holding the L1 distances d_j(t) of
each replica to its reference, with attributes learning_rate, num_epochs, n_init, num_pert, epsilon.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gdchaos.errors import GdchaosError

DATASET = "weights"
AXES = ("n_eps", "n_init", "n_pert", "T+1")
_SHAPE_ATTRS = {"n_init": 1, "num_pert": 2}  # attribute -> axis of ``weights`` it must match


def _plain(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (numbers, strings, lists)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value


def is_authors_file(path: str | Path) -> bool:
    """True when ``path`` is an HDF5 file with a 4-D ``weights`` dataset and a ``learning_rate`` attribute."""
    try:
        with h5py.File(path, "r") as f:
            ds = f.get(DATASET)
            return (isinstance(ds, h5py.Dataset) and ds.ndim == 4
                    and ("learning_rate" in ds.attrs or "learning_rate" in f.attrs))
    except (OSError, ValueError, TypeError):
        return False


def read_authors_file(path: str | Path) -> tuple[float, np.ndarray, dict[str, Any]]:
    """Read one authors' file: returns (eta, distances of shape (n_eps, q, M, T+1) as float64, attributes).

    Attributes are looked up on the dataset first, then on the file root. Raises GdchaosError with a
    one-line message for anything that is not such a file.
    """
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise GdchaosError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        ds = f.get(DATASET)
        if not isinstance(ds, h5py.Dataset):
            raise GdchaosError(f"{path}: no dataset {DATASET!r} (expected the authors' per-eta distance file)")
        if ds.ndim != 4:
            raise GdchaosError(f"{path}: dataset {DATASET!r} has shape {ds.shape}; expected 4 axes {AXES}")
        if ds.dtype.kind not in "fiu":
            raise GdchaosError(f"{path}: dataset {DATASET!r} has non-numeric type {ds.dtype}")
        attrs = {key: _plain(value) for key, value in f.attrs.items()}
        attrs.update({key: _plain(value) for key, value in ds.attrs.items()})
        distances = np.asarray(ds[()], dtype=np.float64)
    eta = attrs.get("learning_rate")
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta <= 0:
        raise GdchaosError(f"{path}: attribute learning_rate must be a positive number (got {eta!r})")
    for name, axis in _SHAPE_ATTRS.items():
        if name in attrs and attrs[name] != distances.shape[axis]:
            raise GdchaosError(f"{path}: attribute {name} = {attrs[name]!r} does not match "
                               f"{DATASET}.shape[{axis}] = {distances.shape[axis]}")
    if distances.shape[3] < 2 or 0 in distances.shape:
        raise GdchaosError(f"{path}: dataset {DATASET!r} is empty or too short (shape {distances.shape})")
    return float(eta), distances, attrs
