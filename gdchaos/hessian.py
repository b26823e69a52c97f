"""Alias of :mod:`gdchaos.nn.hessian` and :mod:`gdchaos.nn.sharpness`, under the import path of gdchaos 0.1."""
from gdchaos.nn.hessian import CNNHessianOperator, HessianOperator, hessian_operator, hessian_vector_product
from gdchaos.nn.sharpness import SharpnessResult, top_eigenvalue

__all__ = ["CNNHessianOperator", "HessianOperator", "SharpnessResult", "hessian_operator", "hessian_vector_product",
           "top_eigenvalue"]
