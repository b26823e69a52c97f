"""Alias of :mod:`gdchaos.nn.mlp` (and the shared layout types), under the import path of gdchaos 0.1."""
from gdchaos.nn.base import DEFAULT_MEMORY_BUDGET, DTYPES, Evaluation, Tensor
from gdchaos.nn.mlp import MLP

__all__ = ["DEFAULT_MEMORY_BUDGET", "DTYPES", "Evaluation", "MLP", "Tensor"]
