"""Old (a copy of a previous backend/small.py at /tmp/ib/small_old.py) against the current Iris whole-network kernel, alternated in one process, one thread: us per network pass.
Run:  git show 884dc9d:gdchaos/backend/small.py > /tmp/ib/small_old.py; python benchmarks/iris_kernel_ab.py tanh
"""
import os, sys, time, importlib.util
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
import gdchaos, numpy as np
from gdchaos.backend import small
spec = importlib.util.spec_from_file_location("small_old", "/tmp/ib/small_old.py")
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
rng = np.random.default_rng(0)
R = 2400
x = rng.normal(size=(120, 4)); y = rng.integers(0, 3, 120)
theta = rng.normal(size=(R, 83)) * 0.5
act = sys.argv[1] if len(sys.argv) > 1 else "tanh"
modes = [("acc", 0), ("loss", 1), ("grad", 2)]
res = {}
for name, m in modes:
    for mod in (old, small):
        mod.small_mlp(theta[:20], x, y, (4,10,3), act, 1/120, m)
for rep in range(30):
    for name, m in modes:
        for tag, mod in (("old", old), ("new", small)):
            t = time.perf_counter(); mod.small_mlp(theta, x, y, (4,10,3), act, 1/120, m); dt = time.perf_counter() - t
            res.setdefault((name, tag), []).append(dt / R * 1e6)
for name, _ in modes:
    o, n = res[(name, "old")], res[(name, "new")]
    ratios = [a / b for a, b in zip(o, n)]
    print(f"{act} {name}: old min {min(o):.2f} med {np.median(o):.2f} | new min {min(n):.2f} med {np.median(n):.2f} | ratio med {np.median(ratios):.2f}")
