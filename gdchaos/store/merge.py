"""Merge the files of a sharded sweep (``gdchaos run --shard K/N``) into one results file.

Every input must be a gdchaos results file of the same sweep: the same ``identity``, dataset
``fingerprint`` and unit plan. Each done unit is copied with the writer's own calls (its arrays,
initial parameters, trajectories and origin), so the merged file holds the bits a single run
writes; a unit done in two inputs is refused (shards are disjoint), a unit done in none stays pending
(rerunning ``gdchaos run`` on the merged file computes it). The analysis is then recomputed.

Merging also salvages a damaged file (``gdchaos merge damaged.h5 -o new.h5``): a truncated input
is read through a copy padded back to its recorded length, and a done unit whose chunks fail their
checksum, or lie past the end of a truncated file, is left pending instead of copied.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from gdchaos.config import from_dict
from gdchaos.engine.units import Unit
from gdchaos.errors import GdchaosError
from gdchaos.store.analysis import analyse_file, stored_config
from gdchaos.store.format import FORMAT, UNIT_ORIGIN
from gdchaos.store.recover import clear_status_flags, stored_end_of_file
from gdchaos.store.verify import DamagedFile, UntrustedFile, check_size, check_structure, readable
from gdchaos.store.writer import Writer

UNIT_ARRAYS = ("distances", "layer_distances", "loss", "train_accuracy", "test_accuracy", "reached_epoch",
               "diverged_epoch", "sharpness", "sharpness_iterations")  # per (eta, IC), written by write_unit


@dataclass
class Merged:
    """What :func:`merge` wrote."""

    path: Path
    units_copied: int
    units_total: int
    damaged: list[str] = field(default_factory=list)  # "FILE: unit K" left pending because they do not read back

    @property
    def complete(self) -> bool:
        return self.units_copied == self.units_total


def merge(inputs: list[str | Path], output: str | Path, *, overwrite: bool = False) -> Merged:
    """Copy the done units of the shard files ``inputs`` into a new results file ``output``, then analyse it."""
    paths = [Path(path) for path in inputs]
    output = Path(output)
    if not paths:
        raise GdchaosError("merge: give the shard files to merge")
    if output.exists() and not overwrite:
        raise GdchaosError(f"output: {output} exists; use --overwrite to replace it or -o for another file")
    if any(path.resolve() == output.resolve() for path in paths if path.exists()):
        raise GdchaosError(f"output: {output} is also an input; write the merged file elsewhere")
    handles: list[h5py.File] = []
    output.resolve().parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".gdchaos-merge-", dir=output.resolve().parent) as scratch:
        try:
            lengths = []
            for path in paths:
                handle, length = _open_shard(path, Path(scratch))
                handles.append(handle)
                lengths.append(length)
            owners = _check_same_sweep(paths, handles)
            first = handles[0]
            config = from_dict({"output": str(output)}, stored_config(first))
            units = [Unit(index, *map(int, row)) for index, row in enumerate(first["units"][:])]
            damaged = []
            with Writer.create_or_resume(output, config, units, n_params=int(first.attrs["n_params"]),
                                         layout=json.loads(first.attrs["layout"]),
                                         fingerprint=str(first.attrs["dataset_fingerprint"]),
                                         overwrite=True) as writer:
                for unit, owner in zip(units, owners):
                    if owner is None:
                        continue
                    if not _copy_intact(handles[owner], paths[owner], lengths[owner], writer, unit):
                        owners[unit.index] = None
                        damaged.append(f"{paths[owner]}: unit {unit.index}")
                writer.write_analysis(analyse_file(writer.file, config.fit_params(), refit=True))
        finally:
            for handle in handles:
                handle.close()
    copied = sum(owner is not None for owner in owners)
    return Merged(output, copied, len(units), damaged)


def _open_shard(path: Path, scratch: Path) -> tuple[h5py.File, int | None]:
    """An input, checked like any untrusted file; a truncated one through a padded copy.

    Returns the open file and, for a truncated input, how many of its bytes are real.
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        raise GdchaosError(f"merge: {path} does not exist") from None
    if not stat.S_ISREG(mode):
        raise GdchaosError(f"merge: {path} is not a regular file")
    length, name = None, path
    try:
        check_size(path)
    except DamagedFile:
        length = path.stat().st_size
        padded = scratch / f"{len(list(scratch.iterdir()))}-{path.name}"
        shutil.copyfile(path, padded)
        os.truncate(padded, stored_end_of_file(path))  # the missing bytes read as zeros
        path = padded
    try:
        handle = _open_plain(path, scratch)
    except (OSError, ValueError):
        if length is not None:
            raise GdchaosError(f"merge: {name} is truncated within its own description; nothing in it can be "
                               "salvaged") from None
        raise GdchaosError(f"merge: {name} is not a gdchaos results file (not HDF5)") from None
    try:
        if handle.attrs.get("format") != FORMAT or "unit_done" not in handle:
            if length is not None:
                raise DamagedFile(f"{name}: truncated")
            raise GdchaosError(f"merge: {name} is not a gdchaos results file")
        check_structure(handle, name)
        tables = ("eta", "units", "unit_done", "unit_epochs")
        if length is not None and not all(_chunks_before(handle[table], length) for table in tables):
            raise DamagedFile(f"{name}: truncated")
        with readable(name):
            handle["unit_done"][()]
    except (DamagedFile, UntrustedFile) as exc:
        handle.close()
        what = "truncated" if length is not None else "damaged"
        raise GdchaosError(f"merge: {name} is {what} within its own description (config, layout or unit "
                           f"table: {str(exc).removeprefix(f'{name}: ')}); nothing in it can be salvaged") from None
    except BaseException:
        handle.close()
        raise
    return handle, length


def _open_plain(path: Path, scratch: Path) -> h5py.File:
    """Open read-only without SWMR: on damaged metadata a SWMR reader retries for minutes, a plain one fails.

    A file still flagged "open for write" (its writer was killed, or is running) is read through a
    copy whose flags are cleared: the units it had finished when copied.
    """
    try:
        return h5py.File(path, "r", libver="latest", locking=False)
    except OSError as exc:
        if "open for write" not in str(exc) and "consistency flags" not in str(exc):
            raise
    copy = scratch / f"{len(list(scratch.iterdir()))}-{path.name}"
    shutil.copyfile(path, copy)
    clear_status_flags(copy)
    return h5py.File(copy, "r", libver="latest", locking=False)


def _check_same_sweep(paths: list[Path], handles: list[h5py.File]) -> list[int | None]:
    """Which input holds each done unit; refuses other sweeps, other data and overlapping shards."""
    first, base = handles[0], paths[0]
    identity = json.loads(first.attrs["identity"])
    owners: list[int | None] = [None] * first["unit_done"].shape[0]
    for number, (path, handle) in enumerate(zip(paths, handles)):
        other = json.loads(handle.attrs["identity"])
        if other != identity:
            differing = sorted(key for key in set(other) | set(identity) if other.get(key) != identity.get(key))
            raise GdchaosError(f"merge: {path} is another sweep than {base} ({', '.join(differing)} differ)")
        if handle.attrs["dataset_fingerprint"] != first.attrs["dataset_fingerprint"]:
            raise GdchaosError(f"merge: {path} was computed on other data than {base} (dataset fingerprints "
                               f"{handle.attrs['dataset_fingerprint']} and {first.attrs['dataset_fingerprint']})")
        if not np.array_equal(handle["units"][:], first["units"][:]):
            raise GdchaosError(f"merge: {path} splits the sweep into other units than {base}")
        for index in np.flatnonzero(handle["unit_done"][:]):
            if owners[index] is not None:
                raise GdchaosError(f"merge: {paths[owners[index]]} and {path} both hold unit {index}; shards must "
                                   "be disjoint (the same N in every --shard K/N, each K once)")
            owners[index] = number
    return owners


def _copy_intact(source: h5py.File, path: Path, length: int | None, writer: Writer, unit: Unit) -> bool:
    """Copy ``unit`` if every chunk of it lies within the input's real bytes and reads back; else False.

    A unit that fails half-way may have written some of its arrays: it is not marked done, so the
    run that computes it later overwrites them.
    """
    if length is not None and not _within(source, unit, length):
        return False
    try:
        with readable(path):
            _copy_unit(source, writer, unit)
    except DamagedFile:
        return False
    return True


def _within(source: h5py.File, unit: Unit, length: int) -> bool:
    """Whether every chunk of the unit's rows ends before byte ``length``.

    Needed for truncated inputs: the padding reads as zeros, and a chunk of zeros passes its
    Fletcher-32 checksum (the checksum of zeros is zero).
    """
    names = [*UNIT_ARRAYS, "initial_params", "trajectories", *UNIT_ORIGIN]
    for name in (name for name in names if name in source):
        if name == "initial_params":
            rows = (slice(unit.ic_start, unit.ic_stop),)
        elif name in UNIT_ORIGIN:
            rows = (slice(unit.index, unit.index + 1),)
        else:
            rows = (slice(unit.eta_start, unit.eta_stop), slice(unit.ic_start, unit.ic_stop))
        if not _chunks_before(source[name], length, rows):
            return False
    return True


def _chunks_before(dataset: h5py.Dataset, length: int, rows: tuple[slice, ...] = ()) -> bool:
    """Whether the chunks of ``dataset`` that meet ``rows`` (leading axes; all: every chunk) end before ``length``."""
    for index in range(dataset.id.get_num_chunks()):
        info = dataset.id.get_chunk_info(index)
        meets = all(start < axis.stop and start + size > axis.start
                    for start, size, axis in zip(info.chunk_offset, dataset.chunks, rows))
        if meets and info.byte_offset + info.size > length:
            return False
    return True


def _copy_unit(source: h5py.File, writer: Writer, unit: Unit) -> None:
    """One done unit from ``source`` into ``writer``, in the order a run writes it (done flag last)."""
    es, ic = slice(unit.eta_start, unit.eta_stop), slice(unit.ic_start, unit.ic_stop)
    writer.write_initial_params(unit.ic_start, source["initial_params"][ic])
    if "trajectories" in source:
        saved = source["trajectory_ics"][:]
        keep = np.flatnonzero((saved >= unit.ic_start) & (saved < unit.ic_stop))
        if keep.size:
            # write_trajectory takes every IC of the unit; those not stored are never read
            stored = source["trajectories"]  # (n_eta, n_saved, M+1, n_epochs, P)
            _, _, ball, n_epochs, n_params = stored.shape
            for column in range(n_epochs):
                theta = np.zeros((unit.eta_stop - unit.eta_start, unit.ic_stop - unit.ic_start, ball, n_params),
                                 dtype=stored.dtype)
                theta[:, saved[keep] - unit.ic_start] = stored[es, keep[0]:keep[-1] + 1, :, column, :]
                writer.write_trajectory(unit, column, theta)
    origin = [source[name][unit.index].decode() if name in source else "" for name in UNIT_ORIGIN]
    writer.write_unit_origin(unit, *origin)
    arrays = {name: source[name][es, ic] for name in UNIT_ARRAYS if name in source}
    writer.write_unit(unit, arrays, int(source["unit_epochs"][unit.index]), done=True)
