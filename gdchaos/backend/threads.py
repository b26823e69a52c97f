"""How kernels use the machine: parallel kernels that fall back to one thread on small work, a pool of
threads for chunks of samples or of networks, and per-thread work arrays.

Threading of the conv engine: every conv kernel is serial and releases the GIL. :func:`map_chunks`
runs a function over chunks of samples on ``num_threads()`` worker threads, each running
single-threaded kernels and single-threaded BLAS on data small enough to stay in cache. That beats
parallelising each kernel (the thread pools of Numba and BLAS spin against each other on small
machines) and the results do not depend on the number of threads: the caller combines chunks in order.
The whole-network kernels (:mod:`.small`) deal chunks of networks to the same pool (:func:`deal`):
serial kernels compile in a fraction of the time of a ``parallel=True`` one (docs/performance.md).
"""
from __future__ import annotations

import contextvars
import math
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from itertools import islice
from typing import TypeVar

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

# Below this many elements a kernel runs on the calling thread: waking the pool costs more than
# it saves, and much more on a loaded machine where a pool thread may be descheduled.
SERIAL_WORK = 1 << 16
_THREAD = threading.local()
Result = TypeVar("Result")


def num_threads() -> int:
    """Number of threads the parallel kernels use."""
    return numba.get_num_threads()


def launch(kernel, work: int, *args) -> None:
    """Run a parallel kernel, on one thread when ``work`` (elements touched) is small."""
    if work >= SERIAL_WORK:
        kernel(*args)
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        kernel(*args)
    finally:
        numba.set_num_threads(previous)


def output(out: np.ndarray | None, shape: tuple[int, ...], dtype) -> np.ndarray:
    """``out`` checked against the shape a kernel writes, or a new array."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out: expected {shape} {np.dtype(dtype)}, got {out.shape} {out.dtype}")
    return out


def scratch(tag: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A work array of this thread, reused by later calls with the same tag (contents undefined).

    Chunks of samples need the same large temporaries again and again; fresh allocations of that
    size are returned to the system and page-faulted back in on every chunk. Grows as needed.
    """
    buffers = _THREAD.__dict__.setdefault("buffers", {})
    size = math.prod(shape)
    buffer = buffers.get(tag)
    if buffer is None or buffer.size < size or buffer.dtype != dtype:
        buffer = buffers[tag] = np.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


@cache
def _executor(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads whose Numba kernels run on one thread (a thread-local setting)."""
    return ThreadPoolExecutor(workers, thread_name_prefix="gdchaos-chunk",
                              initializer=numba.set_num_threads, initargs=(1,))


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def map_chunks(function: Callable[[int, int], Result], n_items: int, chunk: int) -> Iterator[Result]:
    """Yield function(start, stop) for the chunks [0, c), [c, 2c), ... of range(n_items), in order.

    The calls run on ``numba.get_num_threads()`` worker threads with single-threaded BLAS (a
    process-wide limit while the iterator runs) and at most two chunks in flight per thread, so
    memory stays bounded; consume the iterator to the end.
    """
    bounds = iter([(start, min(start + chunk, n_items)) for start in range(0, n_items, chunk)])
    workers = max(1, numba.get_num_threads())
    executor = _executor(workers)
    def submit(start: int, stop: int) -> Future:
        # in the caller's context: NumPy's error state (np.errstate) is a context variable
        return executor.submit(contextvars.copy_context().run, function, start, stop)

    with _blas().limit(limits=1, user_api="blas"):
        pending = deque(submit(*b) for b in islice(bounds, 2 * workers))
        while pending:
            result = pending.popleft().result()
            following = next(bounds, None)
            if following is not None:
                pending.append(submit(*following))
            yield result


def deal(kernel: Callable[..., None], work: int, n_items: int, chunk: int, *args) -> None:
    """Run ``kernel(*args, first, stop)`` over the items [0, n_items), ``chunk`` at a time on the threads
    of :func:`map_chunks` (``kernel`` compiled with ``nogil=True``), or in one call on the calling thread
    when ``work`` (elements touched) is small or one thread is set."""
    if work < SERIAL_WORK or num_threads() == 1 or chunk >= n_items:
        kernel(*args, 0, n_items)
        return
    for _ in map_chunks(lambda first, stop: kernel(*args, first, stop), n_items, chunk):
        pass
