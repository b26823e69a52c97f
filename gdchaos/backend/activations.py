"""Activation names and the integer codes the kernels branch on (plain Python: cheap to import)."""
from __future__ import annotations

ACTIVATIONS = ("tanh", "sigmoid", "relu")
IDENTITY = -1  # code of "no activation" (a conv block without one)
_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}


def activation_code(name: str | None) -> int:
    """The code of activation ``name`` inside kernels (its index in ACTIVATIONS); IDENTITY for None."""
    return IDENTITY if name is None else _CODES[name]
