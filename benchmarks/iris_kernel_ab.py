"""The Iris whole-network kernel of a git revision against the working tree's, alternated in one
process on one thread: microseconds per network pass (2,400 networks 4-10-3 on 120 samples), the
median of the per-round ratios.

Run:  python benchmarks/iris_kernel_ab.py [REVISION [ACTIVATION [ROUNDS]]]    (default 884dc9d tanh 30)

The revision's ``gdchaos/backend/small.py`` is loaded as a separate module beside the current one;
it must be API-compatible with the current backend (``small_mlp(theta, x, y, sizes, activation,
scale, mode)``), which holds from 884dc9d on.
"""
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
import numpy as np  # noqa: E402

from gdchaos.backend import small  # noqa: E402

MODES = (("accuracy", small.ACCURACY), ("loss", small.LOSS), ("gradient", small.GRADIENT))


def kernel_of(revision: str):
    """small.py as it was at ``revision``, imported under another name."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(["git", "show", f"{revision}:gdchaos/backend/small.py"], cwd=root, check=True,
                            capture_output=True, text=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="gdchaos-ab-"))
    path = folder / f"small_{revision.replace('/', '_')}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(revision: str = "884dc9d", activation: str = "tanh", rounds: int = 30) -> None:
    old = kernel_of(revision)
    rng = np.random.default_rng(0)
    n_nets = 2400
    x, y = rng.normal(size=(120, 4)), rng.integers(0, 3, 120)
    theta = rng.normal(size=(n_nets, 83)) * 0.5
    for name, mode in MODES:  # compile or load both; compare their results
        before, now = (module.small_mlp(theta[:200], x, y, (4, 10, 3), activation, 1 / 120, mode)
                       for module in (old, small))
        same = all(np.array_equal(a, b) for a, b in zip(before, now) if a is not None)
        print(f"{name}: {'the same bits' if same else 'different bits'} as {revision}")
    times = {}
    for _ in range(rounds):
        for name, mode in MODES:
            for tag, module in (("old", old), ("new", small)):
                start = time.perf_counter()
                module.small_mlp(theta, x, y, (4, 10, 3), activation, 1 / 120, mode)
                times.setdefault((name, tag), []).append((time.perf_counter() - start) / n_nets * 1e6)
    for name, _ in MODES:
        before, now = times[(name, "old")], times[(name, "new")]
        ratio = np.median([a / b for a, b in zip(before, now)])
        print(f"{activation} {name}: {revision} min {min(before):.2f} median {np.median(before):.2f} us | "
              f"now min {min(now):.2f} median {np.median(now):.2f} us | ratio of medians per round {ratio:.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:2], *sys.argv[2:3], *map(int, sys.argv[3:4]))
