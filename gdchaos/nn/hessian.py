"""Exact Hessian-vector products of the training loss, whatever the network kind.

:func:`hessian_operator` picks the operator of the model's type (:class:`~gdchaos.nn.mlp_hessian.HessianOperator`
for an MLP, :class:`~gdchaos.nn.cnn_hessian.CNNHessianOperator` for a CNN); another kind registers its own with
``hessian_operator.register``. The sharpness (top eigenvalue) is in :mod:`gdchaos.nn.sharpness`.
"""
from __future__ import annotations

from functools import singledispatch

import numpy as np

from gdchaos.errors import GdchaosError
from gdchaos.nn.base import DEFAULT_MEMORY_BUDGET, Network
from gdchaos.nn.cnn import CNN
from gdchaos.nn.cnn_hessian import CNNHessianOperator
from gdchaos.nn.mlp import MLP
from gdchaos.nn.mlp_hessian import HessianOperator

__all__ = ["CNNHessianOperator", "HessianOperator", "hessian_operator", "hessian_vector_product"]


@singledispatch
def hessian_operator(model: Network, theta: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                     memory_budget: int = DEFAULT_MEMORY_BUDGET):
    """The operator v -> H v (called as ``operator(v, rows=None)``) of ``model``'s type at theta.

    :class:`HessianOperator` for an MLP, :class:`CNNHessianOperator` for a CNN; another model type
    registers its own with ``hessian_operator.register``.
    """
    raise GdchaosError(f"model: no Hessian-vector product for {type(model).__name__}")


hessian_operator.register(MLP, HessianOperator)
hessian_operator.register(CNN, CNNHessianOperator)


def hessian_vector_product(model: Network, theta: np.ndarray, v: np.ndarray, x: np.ndarray,
                           y: np.ndarray, *, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                           ) -> np.ndarray:
    """H_r v_r for every network r, (R, P): H_r = Hessian of the full loss L (L2 term included).

    Exact, by the R-operator (see :meth:`HessianOperator.__call__` for the equations); samples are
    split into chunks so that the arrays fit in ``memory_budget`` bytes.
    """
    return hessian_operator(model, theta, x, y, memory_budget=memory_budget)(v)
