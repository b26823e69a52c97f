"""The engine's hot kernels (NumPy + Numba on the CPU): the only package that calls Numba.

Network code calls the functions re-exported here, so that another backend (CuPy) could replace
this package. Each sub-module holds the kernels of one family of layers; every kernel works on a
leading network axis of size R:

- :mod:`.activations` names and codes (plain Python), :mod:`.jit` the Numba options,
  :mod:`.vecmath` SIMD exp/tanh/sigmoid, :mod:`.simd` sums held in vector registers,
  :mod:`.rows` per-row helpers every kernel inlines,
  :mod:`.threads` serial launch of small work, the chunk thread pool, work arrays;
- :mod:`.dense` fully connected layers, :mod:`.sparse` a mostly-zero first layer input,
  :mod:`.small` whole small networks per thread, :mod:`.conv` conv blocks,
  :mod:`.curvature` the R-operator (Hessian-vector products);
- :mod:`.windows` the ball fit's window search, :mod:`.cubic` the cubic map's orbits.

Names are imported on first use (``backend.small_mlp``), so ``import gdchaos.backend.activations``
stays cheap.

Importing the package sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it: OpenMP
threads that spin after a parallel kernel take the cores from the BLAS threads and from the next
kernel (docs/performance.md). The OpenMP runtime reads it when Numba first starts it, at the first
parallel launch, which comes after this import.
"""
from __future__ import annotations

import importlib
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_EXPORTS = {
    "gdchaos.backend.activations": ("ACTIVATIONS", "IDENTITY", "activation_code"),
    "gdchaos.backend.threads": ("map_chunks", "num_threads", "scratch"),
    "gdchaos.backend.dense": ("activation_backward", "batched_matmul", "bias_activation_", "bias_activation_split",
                              "count_correct", "gradient_step_", "input_matmul", "input_matmul_transposed",
                              "l1_distances", "softmax_cross_entropy"),
    "gdchaos.backend.curvature": ("activation_backward_rop", "activation_rop_", "activation_rop_split",
                                  "input_conv_pool_rop", "pool_activate_rop", "pool_backward_rop_", "softmax_rop_"),
    "gdchaos.backend.conv": ("col2im", "im2col", "input_conv_backward", "input_conv_pool_activate", "matmul",
                             "pool_activate", "pool_activate_backward"),
    "gdchaos.backend.windows": ("WINDOW_COLUMNS", "best_window"),
    "gdchaos.backend.small": ("BallRecords", "small_hvp", "small_mlp", "small_train_balls",
                              "small_train_to_target"),
    "gdchaos.backend.sparse": ("SparseRows", "first_layer_blocks", "sparse_backward", "sparse_backward_output",
                               "sparse_forward",
                               "sparse_matmul", "sparse_rows", "sparse_transposed_matmul"),
    "gdchaos.backend.cubic": ("cubic_orbits",),
}
# constants exported under another name: exported name -> (module, name there)
_RENAMED = {
    "SMALL_ACCURACY": ("gdchaos.backend.small", "ACCURACY"),
    "SMALL_LOSS": ("gdchaos.backend.small", "LOSS"),
    "SMALL_GRADIENT": ("gdchaos.backend.small", "GRADIENT"),
    "SMALL_REACHED": ("gdchaos.backend.small", "REACHED"),
    "SMALL_DIVERGED": ("gdchaos.backend.small", "DIVERGED"),
    "SPARSE_BLOCK": ("gdchaos.backend.sparse", "BLOCK"),
}
_WHERE = {name: (module, name) for module, names in _EXPORTS.items() for name in names} | _RENAMED

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _WHERE[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
