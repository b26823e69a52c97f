"""A results file for the scientific Python stack: per-eta rows, a pandas DataFrame, an xarray Dataset.

:func:`summary_rows` are the rows ``gdchaos analyze --json`` prints (one per learning rate);
:func:`flat_row` splits their intervals into ``_low`` / ``_high`` columns, as ``summary/`` stores
them, for CSV and :func:`summary_frame`. :func:`to_xarray` opens the file through h5netcdf, which
reads its dimension scales (format version 2) as named, labelled axes. xarray, h5netcdf and pandas
are optional: without them these calls say in one line which extra to install.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import h5py

from gdchaos.analysis.fields import TANGENT_SUMMARY_FIELDS
from gdchaos.analysis.summary import json_safe
from gdchaos.analysis.sweep import SweepAnalysis
from gdchaos.checks import check_choice
from gdchaos.config import SweepConfig
from gdchaos.errors import GdchaosError
from gdchaos.store.format import FORMAT_VERSION

EXTRA = "xarray"  # pip install 'gdchaos[xarray]': xarray, h5netcdf, pandas
GROUPS = (None, "summary", "fit")  # what to_xarray opens: the root, or one of the analysis groups
INTERVALS = ("lambda_ci", "rho_ci")  # JSON keys holding [low, high]


def require(module: str, purpose: str) -> ModuleType:
    """Import an optional ``module``, or fail in one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise GdchaosError(f"{purpose} needs {module}: pip install 'gdchaos[{EXTRA}]'") from None


def summary_rows(config: SweepConfig, analysis: SweepAnalysis, *, sharpness: bool) -> list[dict[str, Any]]:
    """One JSON-safe dict per learning rate: the summary's fields and ``complete`` (False: only ``eta``).

    ``sharpness``: the file records sharpness, so complete rows also carry ``sharpness_late_median``
    and ``two_over_eta`` (2/eta, the edge of stability).
    """
    rows = []
    for e, (eta, summary) in enumerate(zip(config.etas, analysis.summaries)):
        row = {"eta": eta, "complete": False} if summary is None else {**summary.to_json_dict(), "complete": True}
        if sharpness and analysis.complete[e]:
            row.update(sharpness_late_median=json_safe(float(analysis.summary["sharpness_late_median"][e])),
                       two_over_eta=2.0 / eta)
        if analysis.complete[e]:  # tangent files: the tangent exponents beside the ball's (docs/tangent.md)
            row.update({name: json_safe(float(analysis.summary[name][e]))
                        for name in TANGENT_SUMMARY_FIELDS if name in analysis.summary})
        rows.append(row)
    return rows


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with each interval [low, high] (or None) as two keys ``NAME_low``, ``NAME_high``."""
    flat = {}
    for key, value in row.items():
        if key in INTERVALS:
            low, high = value if value is not None else (None, None)
            flat[f"{key}_low"], flat[f"{key}_high"] = low, high
        else:
            flat[key] = value
    return flat


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of ``rows`` once, in the order complete rows give them (for tables of mixed rows)."""
    names: dict[str, None] = {}
    for row in sorted(rows, key=lambda row: not row.get("complete", True)):
        names.update(dict.fromkeys(row))
    return list(names)


def summary_frame(rows: list[dict[str, Any]]):
    """A pandas DataFrame of :func:`summary_rows`: one row per eta (the index), intervals as _low/_high."""
    pandas = require("pandas", "summary_frame")
    flat = [flat_row(row) for row in rows]
    frame = pandas.DataFrame(flat, columns=columns(flat))
    for name in frame.columns:  # JSON's null is NaN in a column of numbers
        present = [value for value in frame[name] if value is not None]
        if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in present):
            frame[name] = pandas.to_numeric(frame[name])
    return frame.set_index("eta")


def to_xarray(handle: h5py.File, path: Path, group: str | None = None):
    """The results file at ``path`` (open as ``handle``) as a lazy xarray Dataset; ``group``: "summary", "fit".

    Opens the file again through h5netcdf in ``handle``'s mode (HDF5 shares one open file within a
    process): as a SWMR reader for a live file, and without HDF5 file locking. The Dataset reads on
    access and holds the file until it is closed; the ``tensor`` axis gains the tensors' names as
    coordinate ``tensor_name``.
    """
    check_choice("group", group, GROUPS)
    version = int(handle.attrs.get("format_version", 0))
    if version < 2:
        raise GdchaosError(f"{path}: format version {version} does not name its axes; `gdchaos upgrade {path}` "
                           f"rewrites it as version {FORMAT_VERSION}")
    require("h5netcdf", "to_xarray")
    xarray = require("xarray", "to_xarray")
    dataset = xarray.open_dataset(path, engine="h5netcdf", group=group,
                                  driver_kwds={"swmr": handle.swmr_mode, "libver": "latest", "locking": False})
    if "tensor" in dataset.dims and "layer_distances" in handle:
        names = json.loads(handle["layer_distances"].attrs["tensors"])
        labelled = dataset.assign_coords(tensor_name=("tensor", names))
        labelled.set_close(dataset.close)  # closing the copy closes the file
        return labelled
    return dataset
