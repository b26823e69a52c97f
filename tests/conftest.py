"""Shared test helpers."""
import contextlib
import os

import numba
import pytest

# `gdchaos presets` would time every preset's network in a background process: not during tests
os.environ.setdefault("GDCHAOS_BACKGROUND_TIMING", "0")


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


MLP_PATHS = ("whole-network", "layered", "sparse-input")


@pytest.fixture
def mlp_path(monkeypatch):
    """``mlp_path(path)``: every MLP evaluation of the test takes ``path`` (one of MLP_PATHS): the
    whole-network kernel (backend.small_mlp), layer by layer, or layer by layer with the first layer
    read through the sparse form of the input (backend.sparse), whatever the network's size."""
    import gdchaos.backend.sparse
    import gdchaos.nn.mlp

    def use(path: str) -> str:
        assert path in MLP_PATHS, path
        monkeypatch.setattr(gdchaos.nn.mlp, "SMALL_NETWORK_BYTES", 1 << 40 if path == "whole-network" else 0)
        monkeypatch.setattr(gdchaos.backend.sparse, "MIN_FEATURES", 1 if path == "sparse-input" else 1 << 40)
        monkeypatch.setattr(gdchaos.backend.sparse, "MAX_DENSITY", 1.0)
        return path
    return use


@pytest.fixture(params=MLP_PATHS)
def each_mlp_path(request, mlp_path):
    """The test once per MLP evaluation path; the value is the path's name."""
    return mlp_path(request.param)
