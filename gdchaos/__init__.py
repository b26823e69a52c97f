"""gdchaos: chaos in full-batch gradient-descent training of neural networks.

The engine (:mod:`gdchaos.model`, :mod:`gdchaos.train`, :mod:`gdchaos.backend`), the data layer
(:mod:`gdchaos.data`) and the command line (:mod:`gdchaos.cli`).
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("gdchaos")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
