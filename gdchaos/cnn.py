"""Alias of :mod:`gdchaos.nn.cnn`, under the import path of gdchaos 0.1."""
from gdchaos.nn.cnn import CNN, LAYER_TYPES, PAPER_LAYERS, PAPER_N_PARAMS, Block, Layer, paper_cnn

__all__ = ["Block", "CNN", "LAYER_TYPES", "Layer", "PAPER_LAYERS", "PAPER_N_PARAMS", "paper_cnn"]
