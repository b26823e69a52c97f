"""The file ``gdchaos cubic -o FILE.h5`` writes (format ``gdchaos-cubic``, version 1) and its reader.

Datasets ``eta`` (n,), ``lyapunov`` (n,), ``escaped`` (n,) and ``bifurcation`` (n, iterates); the run's
parameters (seed, w0_std, transient, iterates, orbit) and the map's constants are root attributes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from gdchaos import __version__
from gdchaos.errors import GdchaosError

FORMAT_KIND = "gdchaos-cubic"
FORMAT_VERSION = 1
DATASETS = ("eta", "lyapunov", "escaped", "bifurcation")


@dataclass
class CubicFile:
    """The content of a ``gdchaos cubic -o`` file."""

    path: Path
    eta: np.ndarray
    lyapunov: np.ndarray
    escaped: np.ndarray
    bifurcation: np.ndarray


def write_cubic(path: Path, eta: np.ndarray, lyapunov: np.ndarray, escaped: np.ndarray, bifurcation: np.ndarray,
                attrs: dict) -> None:
    """Write the results through a temporary file, then rename (a reader never sees half a file)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise GdchaosError(f"-o: directory {str(path.parent)!r} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as h5:
            for name, values in zip(DATASETS, (eta, lyapunov, escaped, bifurcation)):
                h5.create_dataset(name, data=values)
            h5.attrs.update(kind=FORMAT_KIND, format_version=FORMAT_VERSION, gdchaos_version=__version__, **attrs)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GdchaosError(f"-o: cannot write {str(path)!r}: {exc.strerror or exc}") from None


def is_cubic(handle: h5py.File) -> bool:
    """Whether an open HDF5 file is a ``gdchaos cubic`` file."""
    return handle.attrs.get("kind") == FORMAT_KIND


def read_cubic(handle: h5py.File, path: Path) -> CubicFile:
    """The content of an open ``gdchaos cubic`` file."""
    return CubicFile(Path(path), *(handle[name][()] for name in DATASETS))
