"""Whether Numba's cache already holds this backend's kernels (plain Python: Numba is not imported).

A cold cache means the next run compiles its kernels first (once: about 13 s of CPU for Iris, under a
minute for MNIST; docs/performance.md), which the command line says instead of sitting silently at epoch 0.
"""
from __future__ import annotations

import os
from pathlib import Path

ANALYSIS_MODULES = ("windows",)  # every run fits its balls
TRAINING_MODULES = ("small", "dense", "conv")  # one of them trains any network


def cache_folder() -> Path:
    """Where Numba keeps the compiled kernels: ``$NUMBA_CACHE_DIR`` if set, else beside the sources."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    return Path(folder) if folder else Path(__file__).parent / "__pycache__"


def kernels_cached() -> bool:
    """True when the analysis kernels and those of at least one network family are compiled already."""
    folder = cache_folder()
    if not folder.is_dir():
        return False
    names = {path.name.split(".", 1)[0] for path in folder.rglob("*.nbi")}
    return all(m in names for m in ANALYSIS_MODULES) and any(m in names for m in TRAINING_MODULES)
