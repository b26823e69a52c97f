"""gdchaos: chaos in full-batch gradient-descent training of neural networks.

The engine (:mod:`gdchaos.model`, :mod:`gdchaos.train`, :mod:`gdchaos.backend`), the data layer
(:mod:`gdchaos.data`) and the command line (:mod:`gdchaos.cli`).
"""
from gdchaos._version import __version__

__all__ = ["__version__"]
