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
from gdchaos.store.recover import clear_status_flags, open_for_write, stored_end_of_file
from gdchaos.store.verify import DamagedFile, UntrustedFile, check_size, check_structure, readable
from gdchaos.store.writer import Writer

UNIT_ARRAYS = ("distances", "layer_distances", "loss", "train_accuracy", "test_accuracy", "reached_epoch",
               "diverged_epoch", "sharpness", "sharpness_iterations", "tangent_log_distance",
               "lyapunov_spectrum", "tangent_condition")  # per (eta, IC), written by write_unit


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
            lost = []
            for path in paths:
                handle, cut = _open_shard(path, Path(scratch))
                handles.append(handle)
                lost.append(cut)
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
                    if not _copy_intact(handles[owner], paths[owner], lost[owner], writer, unit):
                        owners[unit.index] = None
                        damaged.append(f"{paths[owner]}: unit {unit.index}")
                writer.write_analysis(analyse_file(writer.file, config.fit_params(), refit=True))
        finally:
            for handle in handles:
                handle.close()
    copied = sum(owner is not None for owner in owners)
    return Merged(output, copied, len(units), damaged)


def _open_shard(path: Path, scratch: Path) -> tuple[h5py.File, dict[str, list[tuple[tuple, tuple]]] | None]:
    """An input, checked like any untrusted file; a truncated one through a padded copy.

    Returns the open file and, for a truncated input, the chunks lost to the cut (:func:`_past`).
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
        path = _copy_aside(path, scratch)
        os.truncate(path, stored_end_of_file(name))  # the missing bytes read as zeros
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
        cut = None if length is None else _past(handle, length)
        if cut is not None and any(cut.get(table) for table in ("eta", "units", "unit_done", "unit_epochs")):
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
    return handle, cut


def _copy_aside(path: Path, scratch: Path) -> Path:
    """A copy of ``path`` in ``scratch``, under a name no other input's copy takes."""
    copy = scratch / f"{len(list(scratch.iterdir()))}-{path.name}"
    shutil.copyfile(path, copy)
    return copy


def _open_plain(path: Path, scratch: Path) -> h5py.File:
    """Open read-only without SWMR: on damaged metadata a SWMR reader retries for minutes, a plain one fails.

    A file still flagged "open for write" (its writer was killed, or is running) is read through a
    copy whose flags are cleared: the units it had finished when copied.
    """
    if open_for_write(path):
        path = _copy_aside(path, scratch)
        clear_status_flags(path)
    return h5py.File(path, "r", libver="latest", locking=False)


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


def _copy_intact(source: h5py.File, path: Path, lost: dict[str, list[tuple[tuple, tuple]]] | None, writer: Writer,
                 unit: Unit) -> bool:
    """Copy ``unit`` if every chunk of it lies within the input's real bytes and reads back; else False.

    A unit that fails half-way may have written some of its arrays: it is not marked done, so the
    run that computes it later overwrites them.
    """
    if lost is not None and not _within(lost, unit):
        return False
    try:
        with readable(path):
            _copy_unit(source, writer, unit)
    except DamagedFile:
        return False
    return True


def _past(source: h5py.File, length: int) -> dict[str, list[tuple[tuple, tuple]]]:
    """Each dataset's chunks (offset, shape) that end past byte ``length`` of a truncated input.

    The padding reads as zeros, and a chunk of zeros passes its Fletcher-32 checksum (the checksum
    of zeros is zero): a truncated input's chunks are trusted only where they end before the cut.
    """
    lost = {}
    for item in source.values():
        for dataset in item.values() if isinstance(item, h5py.Group) else [item]:
            chunks = (dataset.id.get_chunk_info(index) for index in range(dataset.id.get_num_chunks()))
            lost[dataset.name.lstrip("/")] = [(chunk.chunk_offset, dataset.chunks) for chunk in chunks
                                              if chunk.byte_offset + chunk.size > length]
    return lost


def _within(lost: dict[str, list[tuple[tuple, tuple]]], unit: Unit) -> bool:
    """Whether none of the unit's rows lies in a chunk lost to the cut (:func:`_past`)."""
    for name in (*UNIT_ARRAYS, "initial_params", "trajectories", *UNIT_ORIGIN):
        if name == "initial_params":
            rows = ((unit.ic_start, unit.ic_stop),)
        elif name in UNIT_ORIGIN:
            rows = ((unit.index, unit.index + 1),)
        else:
            rows = ((unit.eta_start, unit.eta_stop), (unit.ic_start, unit.ic_stop))
        for offset, shape in lost.get(name, ()):
            if all(first < stop and first + size > start
                   for (start, stop), first, size in zip(rows, offset, shape)):
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
