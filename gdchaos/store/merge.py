"""Merge the files of a sharded sweep (``gdchaos run --shard K/N``) into one results file.

Every input must be a gdchaos results file of the same sweep: the same ``identity``, dataset
``fingerprint`` and unit plan. Each done unit is copied with the writer's own calls (its arrays,
initial parameters, trajectories and origin), so the merged file holds the bits a single run
writes; a unit done in two inputs is refused (shards are disjoint), a unit done in none stays pending
(rerunning ``gdchaos run`` on the merged file computes it). The analysis is then recomputed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from gdchaos.config import from_dict
from gdchaos.engine.units import Unit
from gdchaos.errors import GdchaosError
from gdchaos.store.analysis import analyse_file, stored_config
from gdchaos.store.format import FORMAT, UNIT_ORIGIN
from gdchaos.store.reader import open_handle
from gdchaos.store.writer import Writer

UNIT_ARRAYS = ("distances", "layer_distances", "loss", "train_accuracy", "test_accuracy", "reached_epoch",
               "diverged_epoch", "sharpness", "sharpness_iterations")  # per (eta, IC), written by write_unit


@dataclass
class Merged:
    """What :func:`merge` wrote."""

    path: Path
    units_copied: int
    units_total: int

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
    handles = []
    try:
        for path in paths:
            handles.append(_open_shard(path))
        owners = _check_same_sweep(paths, handles)
        first = handles[0]
        config = from_dict({"output": str(output)}, stored_config(first))
        units = [Unit(index, *map(int, row)) for index, row in enumerate(first["units"][:])]
        with Writer.create_or_resume(output, config, units, n_params=int(first.attrs["n_params"]),
                                     layout=json.loads(first.attrs["layout"]),
                                     fingerprint=str(first.attrs["dataset_fingerprint"]), overwrite=True) as writer:
            for unit, owner in zip(units, owners):
                if owner is not None:
                    _copy_unit(handles[owner], writer, unit)
            writer.write_analysis(analyse_file(writer.file, config.fit_params(), refit=True))
    finally:
        for handle in handles:
            handle.close()
    copied = sum(owner is not None for owner in owners)
    return Merged(output, copied, len(units))


def _open_shard(path: Path) -> h5py.File:
    if not path.is_file():
        raise GdchaosError(f"merge: {path} does not exist")
    try:
        handle = open_handle(path)
    except (OSError, ValueError):
        raise GdchaosError(f"merge: {path} is not a gdchaos results file (not HDF5)") from None
    if handle.attrs.get("format") != FORMAT or "unit_done" not in handle:
        handle.close()
        raise GdchaosError(f"merge: {path} is not a gdchaos results file")
    return handle


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
