"""CPU seconds Numba spends compiling each kernel during one gdchaos command, from an empty cache.

Listens to Numba's compile events; a kernel's time excludes the kernels compiled inside it (its
callees, listed on their own lines), so the lines add up to the total. NUMBA_CACHE_DIR is set to a
new empty folder unless given.
Run:  python benchmarks/compile_cost.py run --headless -o /tmp/x.h5 [--overwrite]
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="gdchaos-numba-"))

from numba.core import event  # noqa: E402  (after NUMBA_CACHE_DIR is set)


class CompileTimes(event.Listener):
    """CPU time of every compilation, exclusive of the compilations nested in it."""

    def __init__(self) -> None:
        self.open: list[list[float]] = []  # [start, time of nested compilations]
        self.rows: list[tuple[float, str, str]] = []

    def on_start(self, ev: event.Event) -> None:
        self.open.append([time.process_time(), 0.0])

    def on_end(self, ev: event.Event) -> None:
        start, nested = self.open.pop()
        spent = time.process_time() - start
        if self.open:
            self.open[-1][1] += spent
        function = getattr(ev.data["dispatcher"], "py_func", None)
        name = f"{function.__module__}.{function.__qualname__}" if function else str(ev.data["dispatcher"])
        self.rows.append((spent - nested, name, str(ev.data["args"])))


def main() -> int:
    from gdchaos.cli import main as gdchaos

    times = CompileTimes()
    event.register("numba:compile", times)
    start = time.process_time()
    code = gdchaos(sys.argv[1:])
    total = time.process_time() - start
    compiled = sum(row[0] for row in times.rows)
    print(f"\n{len(times.rows)} compilations, {compiled:.1f} s of CPU; the command took {total:.1f} s of CPU "
          f"(cache: {os.environ['NUMBA_CACHE_DIR']})", file=sys.stderr)
    for spent, name, signature in sorted(times.rows, reverse=True)[:15]:
        print(f"{spent:7.2f} s  {name}  {signature[:100]}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
