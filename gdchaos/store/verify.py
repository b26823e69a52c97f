"""A results file is untrusted input: check it before anything reads or writes its data.

- :func:`check_size`: a file shorter than its superblock's end-of-file address was truncated (a copy
  or download that stopped early); HDF5 would read the missing bytes as zeros.
- :func:`check_structure`: only plain chunked datasets stored inside the file, with the shapes and
  dtypes the file's own config implies (:func:`gdchaos.store.format.datasets`); external storage,
  virtual datasets, external or soft links could make a writer write, or a reader read, elsewhere.
- :func:`readable`: turns a chunk that fails its checksum into one line naming the file.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from gdchaos.engine.units import Unit
from gdchaos.errors import GdchaosError
from gdchaos.store.analysis import stored_config
from gdchaos.store.format import FORMAT, UNIT_ORIGIN, Spec, datasets
from gdchaos.store.recover import stored_end_of_file

REQUIRED = ("identity", "config", "n_params", "layout")  # root attributes a complete file has
LATER = ("summary/", "fit/", *UNIT_ORIGIN)  # datasets added after version 0.1: older files may lack them
TABLES = ("units", "unit_done")  # datasets a complete file has; without them its creation was interrupted


class DamagedFile(GdchaosError):
    """A results file whose bytes are not all what its writer wrote (truncated, checksum mismatch)."""


class UntrustedFile(GdchaosError):
    """A results file whose structure no gdchaos writes (links, external storage, other shapes or dtypes)."""


def check_size(path: Path) -> None:
    """Raise :class:`DamagedFile` when ``path`` is shorter than its superblock says."""
    stored = stored_end_of_file(path)
    real = os.stat(path).st_size
    if stored is not None and real < stored:
        raise DamagedFile(f"{path}: truncated: {real:,} of its {stored:,} bytes are on disk "
                          "(an interrupted copy or download?)")


def is_complete(handle: h5py.File) -> bool:
    """Whether the file has the attributes and unit table every finished creation writes."""
    return all(name in handle.attrs for name in REQUIRED) and all(name in handle for name in TABLES)


def check_structure(handle: h5py.File, path: Path, *, complete: bool = True) -> dict[str, Spec]:
    """Check every object of an open gdchaos file against the layout its config implies.

    Every dataset present must have its layout's shape and dtype. ``complete``: the datasets every
    gdchaos version writes must be there (files of older versions may lack those in :data:`LATER`, and
    those added by a later format version, ``Spec.since``).
    Returns the layout.
    """
    try:
        return _check_structure(handle, path, complete)
    except (OSError, RuntimeError, KeyError) as exc:  # how h5py reports metadata that fails its checksum
        raise DamagedFile(f"{path}: damaged metadata ({reason_of(exc)})") from None


def check_chunk_indexes(handle: h5py.File, path: Path) -> None:
    """Read the chunk index of every chunked dataset, verifying its checksums, before a writer turns on
    SWMR: with SWMR on, HDF5 retries metadata that fails its checksum up to 100 times, doubling a sleep
    each time (from 1 ns: effectively forever, and deaf to SIGTERM), so damage found later hangs the
    writer; opened without SWMR it fails at once. Raises :class:`DamagedFile`."""
    chunked = []
    try:
        handle.visititems(lambda name, item: chunked.append(item) if isinstance(item, h5py.Dataset)
                          and item.chunks else None)
        for dataset in chunked:
            dataset.id.get_num_chunks()  # walks the whole index
    except (OSError, RuntimeError, KeyError) as exc:
        raise DamagedFile(f"{path}: damaged metadata ({reason_of(exc)})") from None


def _check_structure(handle: h5py.File, path: Path, complete: bool) -> dict[str, Spec]:
    if handle.attrs.get("format") != FORMAT:
        raise GdchaosError(f"{path}: not a gdchaos results file")
    _check_links(handle, path, "")
    try:
        config = stored_config(handle)
        rows = np.asarray(handle["units"][()])
        layout = json.loads(handle.attrs["layout"])
        n_params = int(handle.attrs["n_params"])
        if rows.ndim != 2 or rows.shape[1] != 4:
            raise ValueError("units")
        units = [Unit(i, *map(int, row)) for i, row in enumerate(rows)]
        specs = datasets(config, units, n_params, len(layout))
    except (KeyError, ValueError, TypeError, OSError, GdchaosError) as exc:
        raise UntrustedFile(f"{path}: its config, unit table or layout cannot be read ({reason_of(exc)})") from None
    version = int(handle.attrs.get("format_version", 0))
    for name, spec in specs.items():
        if name not in handle:
            if complete and not name.startswith(LATER) and spec.since <= version:
                raise UntrustedFile(f"{path}: dataset {name} is missing")
            continue
        _check_dataset(handle[name], spec, name, path)
    _check_units(units, specs["eta"].shape[0], config.ics, path)
    return specs


def _check_links(group: h5py.Group, path: Path, prefix: str) -> None:
    for name in group:
        link = group.get(name, getlink=True)
        full = f"{prefix}{name}"
        if not isinstance(link, h5py.HardLink):
            raise UntrustedFile(f"{path}: {full} is a link to elsewhere ({type(link).__name__}); refused")
        item = group[name]
        if isinstance(item, h5py.Group):
            _check_links(item, path, full + "/")
        elif isinstance(item, h5py.Dataset):
            if item.is_virtual or item.id.get_create_plist().get_external_count() > 0:
                raise UntrustedFile(f"{path}: {full} stores its data outside the file; refused")


def _check_dataset(dataset: h5py.Dataset, spec: Spec, name: str, path: Path) -> None:
    if dataset.shape != spec.shape or dataset.dtype != np.dtype(spec.dtype):
        raise UntrustedFile(f"{path}: dataset {name} is {dataset.dtype}{list(dataset.shape)}; its config "
                          f"implies {np.dtype(spec.dtype)}{list(spec.shape)}")


def _check_units(units: list[Unit], n_eta: int, q: int, path: Path) -> None:
    for unit in units:
        if not (0 <= unit.eta_start < unit.eta_stop <= n_eta and 0 <= unit.ic_start < unit.ic_stop <= q):
            raise UntrustedFile(f"{path}: unit {unit.index} covers etas [{unit.eta_start}, {unit.eta_stop}) x "
                              f"ICs [{unit.ic_start}, {unit.ic_stop}), outside the sweep")


@contextmanager
def readable(path: Path) -> Iterator[None]:
    """Reading data: a chunk that fails its checksum (or any HDF5 read error) becomes :class:`DamagedFile`."""
    try:
        yield
    except (OSError, RuntimeError, KeyError) as exc:  # h5py's ways of saying a checksum failed
        reason = "a chunk fails its checksum" if "filter returned failure" in str(exc) else reason_of(exc)
        raise DamagedFile(f"{path}: damaged data ({reason}); `gdchaos merge {path.name} -o NEW.h5` "
                          "keeps the units that read back intact") from None


def reason_of(exc: BaseException) -> str:
    """The first line of an h5py error, for a one-line message."""
    text = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    return text.rstrip(".")
