"""gdchaos: chaos in full-batch gradient-descent training of neural networks.

Layers, each importing only those before it (docs/architecture.md): :mod:`gdchaos.backend` (Numba
kernels), :mod:`gdchaos.nn` (network math), :mod:`gdchaos.analysis` (curves to numbers),
:mod:`gdchaos.data` and :mod:`gdchaos.config` (datasets, the sweep schema), :mod:`gdchaos.engine`
(GD, units, sweeps, estimates), :mod:`gdchaos.store` (the results file), :mod:`gdchaos.runner`,
:mod:`gdchaos.findlr`, then :mod:`gdchaos.cli`, :mod:`gdchaos.plot` and the TUI (``gdchaos_tui``).

``gdchaos.find_lr`` (:func:`gdchaos.findlr.find_lr`) is loaded on first use, so ``import gdchaos``
stays free of the numerical stack.

Importing it sets ``OPENBLAS_THREAD_TIMEOUT=16`` unless the environment sets it: after each call
OpenBLAS's threads spin for 2^N cycles (N = 28 by default, about 0.1 s) and take the cores from the
Numba kernel that follows (docs/performance.md). OpenBLAS reads it when NumPy loads it, so it
takes effect where gdchaos is imported before NumPy (the ``gdchaos`` command, ``python -m gdchaos``).
"""
import importlib
import os

from gdchaos._version import __version__

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

__all__ = ["__version__", "find_lr"]
LAZY = {"find_lr": "gdchaos.findlr"}  # names of upper layers, imported on first access (PEP 562)


def __getattr__(name: str):
    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'gdchaos' has no attribute {name!r}")
