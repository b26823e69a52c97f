"""gdchaos: chaos in full-batch gradient-descent training of neural networks.

Layers, each importing only those before it (docs/architecture.md): :mod:`gdchaos.backend` (Numba
kernels), :mod:`gdchaos.nn` (network math), :mod:`gdchaos.analysis` (curves to numbers),
:mod:`gdchaos.data` and :mod:`gdchaos.config` (datasets, the sweep schema), :mod:`gdchaos.engine`
(GD, units, sweeps, estimates), :mod:`gdchaos.store` (the results file), :mod:`gdchaos.runner`, then
:mod:`gdchaos.cli`, :mod:`gdchaos.plot` and the TUI (``gdchaos_tui``).
"""
from gdchaos._version import __version__

__all__ = ["__version__"]
