"""Where an epoch's time goes, against this machine's measured peak (docs/performance.md, "Roofline").

Measures the machine (DGEMM rate, memory bandwidth of a large copy), then one full-batch epoch of a
ball of networks on MNIST, timing every backend call it makes (wrapped for the measurement), with
the FLOPs and the least memory traffic of each part. Run:

    python benchmarks/roofline.py mlp [--networks 6] [--epochs 3] [--data-dir DIR]
    python benchmarks/roofline.py cnn [--networks 6] [--epochs 1] [--data-dir DIR]

For the CNN the parts run in several threads at once: their times are thread-seconds, shown as
shares of the total. Timings of one run; the document quotes medians of several.
"""
from __future__ import annotations

import argparse
import collections
import functools
import threading
import time

import gdchaos  # noqa: F401  (before NumPy: its OpenBLAS setting, as in the gdchaos command)
import numpy as np

from gdchaos import backend, data
from gdchaos.engine.train import train
from gdchaos.nn import MLP
from gdchaos.nn.cnn import paper_cnn

MLP_PARTS = ("sparse_forward", "sparse_backward", "sparse_backward_output", "batched_matmul", "softmax_cross_entropy", "first_layer_blocks",
             "count_correct", "l1_distances", "gradient_step_")
CNN_PARTS = ("input_conv_pool_activate", "im2col", "matmul", "pool_activate", "pool_activate_backward",
             "input_conv_backward", "col2im", "softmax_cross_entropy", "count_correct", "l1_distances",
             "gradient_step_")


def machine_peak() -> dict[str, float]:
    """GFLOP/s of a 2048^3 DGEMM (NumPy's BLAS, all threads) and GB/s of a 512 MB copy (read + write)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((2048, 2048)), rng.random((2048, 2048))
    a @ b
    gemm = min(_seconds(lambda: a @ b) for _ in range(5))
    src = np.ones(64 << 20)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    copy = min(_seconds(lambda: np.copyto(dst, src)) for _ in range(5))
    return {"dgemm_gflops": 2 * 2048**3 / gemm / 1e9, "copy_gbs": 2 * src.nbytes / copy / 1e9}


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


class PartTimer:
    """Wraps backend functions: thread-seconds and calls per function while active."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.calls: dict[str, int] = collections.defaultdict(int)
        self._lock = threading.Lock()
        self._saved = {}

    def __enter__(self) -> "PartTimer":
        for name in self.names:
            original = getattr(backend, name)
            self._saved[name] = original
            setattr(backend, name, self._wrap(name, original))
        return self

    def __exit__(self, *exc) -> None:
        for name, original in self._saved.items():
            setattr(backend, name, original)

    def _wrap(self, name, original):
        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[name] += time.perf_counter() - start
                    self.calls[name] += 1
        return timed


def mlp_work(n_nets: int, n: int, d: int, h: int, classes: int, nnz: int, n_params: int) -> dict[str, tuple]:
    """(useful FLOPs, least bytes moved) per part of one MNIST epoch of ``n_nets`` networks d-h-classes."""
    a = 8 * n_nets * n * h  # one (R, N, h) float64 array
    return {
        # with one hidden layer the forward also forms the logits, the gradient dL/dA and dW2
        "sparse_forward": (2 * nnz * n_nets * h + 25 * n_nets * n * h + 2 * n_nets * n * h * classes,
                           12 * nnz + 8 * d * n_nets * h + a),
        "sparse_backward": (2 * nnz * n_nets * h + 3 * n_nets * n * h, 12 * nnz + 2 * a + 8 * d * n_nets * h),
        "sparse_backward_output": (2 * nnz * n_nets * h + 3 * n_nets * n * h + 4 * n_nets * n * h * classes,
                                   12 * nnz + a + 8 * d * n_nets * h),
        "batched_matmul": (3 * 2 * n_nets * n * h * classes, 3 * a + 4 * 8 * n_nets * n * classes),
        "softmax_cross_entropy": (25 * n_nets * n * classes, 2 * 8 * n_nets * n * classes),
        "gradient_step_": (2 * n_nets * n_params, 3 * 8 * n_nets * n_params),
        "l1_distances": (3 * n_nets * n_params, 2 * 8 * n_nets * n_params),
    }


def run_mlp(args, x, y, x_test, y_test) -> None:
    model = MLP((x.shape[1], args.hidden, 10), activation="tanh")
    theta = model.init(np.random.default_rng(0), args.networks)
    ball = args.networks // max(1, args.networks // 6)
    refs = np.arange(0, args.networks, ball)
    pairs = np.stack([np.repeat(refs, ball - 1), (refs[:, None] + np.arange(1, ball)).ravel()], axis=1)
    list(train(model, theta.copy(), 5.0, x, y, 1, x_test=x_test, y_test=y_test, test_networks=refs, pairs=pairs))
    with PartTimer(MLP_PARTS) as timer:
        start = time.perf_counter()
        list(train(model, theta.copy(), 5.0, x, y, args.epochs, x_test=x_test, y_test=y_test,
                   test_networks=refs, pairs=pairs))
        wall = time.perf_counter() - start
    epochs = args.epochs  # E steps (records t = 0..E: the last one evaluates the loss only)
    nnz = int(np.count_nonzero(x))
    work = mlp_work(args.networks, x.shape[0], x.shape[1], args.hidden, 10, nnz, model.n_params)
    dense_flops = 2 * 2 * x.shape[0] * x.shape[1] * args.networks * args.hidden
    print(f"MLP {x.shape[1]}-{args.hidden}-10 tanh, {args.networks} networks, N = {x.shape[0]}, "
          f"input density {nnz / x.size:.3f}: {wall / epochs:.3f} s per epoch "
          f"({args.networks * epochs / wall:.1f} network-epochs/s)")
    print(f"first layer, dense equivalent: {dense_flops / 1e9:.1f} GFLOP per epoch; useful (nonzeros): "
          f"{4 * nnz * args.networks * args.hidden / 1e9:.1f} GFLOP")
    _table(timer, wall, epochs, work)


def run_cnn(args, x, y, x_test, y_test) -> None:
    model = paper_cnn(init_std=0.01)
    theta = model.init(np.random.default_rng(0), args.networks)
    refs = np.arange(0, args.networks, 6)
    pairs = np.stack([np.repeat(refs, 5), (refs[:, None] + np.arange(1, 6)).ravel()], axis=1)
    list(train(model, theta.copy(), 0.05, x[:2048], y[:2048], 1, x_test=x_test[:256], y_test=y_test[:256],
               test_networks=refs, pairs=pairs))
    with PartTimer(CNN_PARTS) as timer:
        start = time.perf_counter()
        list(train(model, theta.copy(), 0.05, x, y, args.epochs, x_test=x_test, y_test=y_test,
                   test_networks=refs, pairs=pairs))
        wall = time.perf_counter() - start
    epochs = args.epochs
    n, r = x.shape[0], args.networks
    conv1 = 2 * n * r * 8 * 9 * 28 * 28  # 8 channels, 3x3 on 1 channel, 28x28
    conv2 = 2 * n * r * 16 * 9 * 8 * 14 * 14  # 16 channels, 3x3 on 8 channels, 14x14
    linear = 2 * n * r * 16 * 7 * 7 * 10
    print(f"CNN (paper, {model.n_params} parameters), {r} networks, N = {n}: {wall / epochs:.2f} s per epoch")
    print(f"FLOPs per epoch (forward + both backward products): conv1 {3 * conv1 / 1e9:.1f} G (its input "
          f"gradient is not needed: {2 * conv1 / 1e9:.1f} G), conv2 {3 * conv2 / 1e9:.1f} G, "
          f"linear {3 * linear / 1e9:.2f} G")
    _table(timer, wall, epochs, {})


def _table(timer: PartTimer, wall: float, epochs: int, work: dict) -> None:
    total = sum(timer.seconds.values())
    print(f"{'part':26} {'calls':>6} {'s/epoch':>8} {'share':>6} {'GFLOP/s':>8} {'GB/s':>7}")
    for name, seconds in sorted(timer.seconds.items(), key=lambda item: -item[1]):
        per_epoch = seconds / epochs
        flops, moved = work.get(name, (0, 0))
        rate = f"{flops / per_epoch / 1e9:8.1f}" if flops else f"{'':8}"
        band = f"{moved / per_epoch / 1e9:7.1f}" if moved else f"{'':7}"
        print(f"{name:26} {timer.calls[name] / epochs:6.1f} {per_epoch:8.4f} {seconds / total:6.1%} {rate} {band}")
    print(f"{'(outside these calls)':26} {'':6} {max(wall - total, 0) / epochs:8.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=("mlp", "cnn"))
    parser.add_argument("--networks", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    peak = machine_peak()
    print(f"machine: DGEMM {peak['dgemm_gflops']:.1f} GFLOP/s, copy {peak['copy_gbs']:.1f} GB/s, "
          f"{backend.num_threads()} threads")
    arrays = data.load("mnist", args.data_dir)
    (run_mlp if args.model == "mlp" else run_cnn)(args, *arrays)


if __name__ == "__main__":
    main()
