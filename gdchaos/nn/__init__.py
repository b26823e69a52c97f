"""Network math: networks batched over a leading axis, their exact Hessian-vector products, sharpness.

- :mod:`.base`: the flat layout of theta (R, P) that every kind shares (:class:`Network`);
- :mod:`.mlp` (:class:`MLP`) and :mod:`.cnn` (:class:`CNN`): loss, accuracy and gradient of R networks;
- :mod:`.hessian` (one operator per kind: :mod:`.mlp_hessian`, :mod:`.cnn_hessian`) and
  :mod:`.sharpness` (top eigenvalue by power iteration).

Everything numeric runs in :mod:`gdchaos.backend`; this package decides what to compute.
"""
from gdchaos.backend.activations import ACTIVATIONS
from gdchaos.nn.base import DEFAULT_MEMORY_BUDGET, DTYPES, Evaluation, Network, Tensor
from gdchaos.nn.cnn import CNN, PAPER_LAYERS, Block, Layer, paper_cnn
from gdchaos.nn.hessian import CNNHessianOperator, HessianOperator, hessian_operator, hessian_vector_product
from gdchaos.nn.mlp import MLP
from gdchaos.nn.sharpness import SharpnessResult, top_eigenvalue

__all__ = ["ACTIVATIONS", "Block", "CNN", "CNNHessianOperator", "DEFAULT_MEMORY_BUDGET", "DTYPES", "Evaluation",
           "HessianOperator", "Layer", "MLP", "Network", "PAPER_LAYERS", "SharpnessResult", "Tensor",
           "hessian_operator", "hessian_vector_product", "paper_cnn", "top_eigenvalue"]
