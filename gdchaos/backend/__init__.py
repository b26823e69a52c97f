"""The engine's hot kernels (NumPy + Numba on the CPU).

Model code calls the functions re-exported here and never Numba directly, so that another
backend (CuPy) can replace this package. Each sub-module holds the kernels of one family of
layers; every kernel works on a leading network axis of size R.
"""
from gdchaos.backend.curvature import (
    activation_backward_rop,
    activation_rop_,
    activation_rop_split,
    input_conv_pool_rop,
    pool_activate_rop,
    pool_backward_rop_,
    softmax_rop_,
)
from gdchaos.backend.dense import (
    ACTIVATIONS,
    activation_backward,
    activation_code,
    batched_matmul,
    bias_activation_,
    bias_activation_split,
    count_correct,
    gradient_step_,
    input_matmul,
    input_matmul_transposed,
    l1_distances,
    num_threads,
    softmax_cross_entropy,
)
from gdchaos.backend.conv import (
    col2im,
    im2col,
    input_conv_backward,
    input_conv_pool_activate,
    map_chunks,
    matmul,
    pool_activate,
    pool_activate_backward,
    scratch,
)

from gdchaos.backend.windows import WINDOW_COLUMNS, best_window
from gdchaos.backend.small import ACCURACY as SMALL_ACCURACY
from gdchaos.backend.small import DIVERGED as SMALL_DIVERGED
from gdchaos.backend.small import GRADIENT as SMALL_GRADIENT
from gdchaos.backend.small import LOSS as SMALL_LOSS
from gdchaos.backend.small import REACHED as SMALL_REACHED
from gdchaos.backend.small import small_mlp, small_train_balls, small_train_to_target
from gdchaos.backend.sparse import BLOCK as SPARSE_BLOCK
from gdchaos.backend.sparse import (
    SparseRows,
    sparse_backward,
    sparse_forward,
    sparse_matmul,
    sparse_rows,
    sparse_transposed_matmul,
)

__all__ = [
    "WINDOW_COLUMNS", "best_window",
    "small_mlp", "small_train_balls", "small_train_to_target", "SMALL_ACCURACY", "SMALL_LOSS", "SMALL_GRADIENT",
    "SMALL_REACHED", "SMALL_DIVERGED",
    "activation_backward_rop", "activation_rop_", "activation_rop_split", "softmax_rop_",
    "input_conv_pool_rop", "pool_activate_rop", "pool_backward_rop_",
    "ACTIVATIONS", "activation_backward", "activation_code", "batched_matmul", "bias_activation_",
    "bias_activation_split", "count_correct", "gradient_step_", "input_matmul",
    "input_matmul_transposed", "l1_distances", "num_threads", "softmax_cross_entropy",
    "col2im", "im2col", "input_conv_backward", "input_conv_pool_activate",
    "map_chunks", "matmul", "pool_activate",
    "pool_activate_backward", "scratch",
    "SPARSE_BLOCK", "SparseRows", "sparse_backward", "sparse_forward", "sparse_matmul",
    "sparse_rows", "sparse_transposed_matmul",
]
