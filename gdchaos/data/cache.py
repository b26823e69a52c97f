"""Parsed arrays saved as ``.npy`` files so that a dataset loads fast the second time.

The folder is ``<cache root>/<name>-<key>``, the key hashing the manifest's checksums: the files were
verified against them, so equal keys mean equal content. Datasets bundled with scikit-learn cache
their split (importing scikit-learn takes seconds); their key adds how the split is made and the
scikit-learn version.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from gdchaos.data.locations import cache_root
from gdchaos.data.registry import DatasetSpec

PARTS: tuple[str, ...] = ("x_train", "y_train", "x_test", "y_test")
_VERSION = 1  # bump when the parsers' output changes

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def cache_dir(spec: DatasetSpec) -> Path:
    """The folder holding the parsed arrays of ``spec``."""
    checksums = {role: file.checksums for role, file in sorted(spec.files.items())}
    source = [_VERSION, spec.format, checksums]
    if spec.bundled:
        source += [spec.loader, spec.test, spec.split_seed, spec.scale, _sklearn_version()]
    text = json.dumps(source, sort_keys=True)
    return cache_root() / f"{spec.name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _sklearn_version() -> str | None:
    """The installed scikit-learn's version, read without importing it."""
    try:
        return metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        return None


def load_cached(spec: DatasetSpec) -> Arrays | None:
    """The cached arrays (memory-mapped, read-only), or None when absent or unreadable."""
    folder = cache_dir(spec)
    try:
        return tuple(np.load(folder / f"{part}.npy", mmap_mode="r") for part in PARTS)
    except (OSError, ValueError):
        return None


def store(spec: DatasetSpec, arrays: Arrays) -> None:
    """Save ``arrays`` for later loads; skipped when the cache folder is not writable."""
    folder = cache_dir(spec)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    except OSError:
        return
    try:
        for part, array in zip(PARTS, arrays):
            np.save(staging / f"{part}.npy", array)
        shutil.rmtree(folder, ignore_errors=True)  # an unreadable earlier copy
        staging.rename(folder)  # atomic; fails when another process got there first
    except OSError:
        pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
