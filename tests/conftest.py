"""Shared test helpers."""
import contextlib

import numba
import pytest


@contextlib.contextmanager
def _numba_threads(n: int):
    """Run the block on min(n, NUMBA_NUM_THREADS) Numba threads, then restore the previous count."""
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@pytest.fixture
def numba_threads():
    """``with numba_threads(1): ...``: results that must not depend on the number of threads."""
    return _numba_threads
