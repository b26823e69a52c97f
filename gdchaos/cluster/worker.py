"""What runs inside a Dask worker: its threads and Numba cache (:class:`WorkerSetup`), and a unit (:func:`unit_task`).

A worker computes one unit at a time (one Dask thread) with ``threads`` Numba and BLAS threads. Numba
reads ``NUMBA_NUM_THREADS`` and ``NUMBA_CACHE_DIR`` once, when it is first imported: the setup runs
before the worker's first task, when nothing has imported Numba yet. Each worker process compiles into
its own cache folder, a *slot* it holds with an exclusive lock while it lives: concurrent compilation
into one ``cache=True`` folder can corrupt it, and slots are reused (warm) by later workers. A slot
starts from a copy of the kernels already compiled next to the sources (:func:`seed_cache`; Numba writes
each cache file atomically), so workers compile only what no serial run compiled before.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from distributed import WorkerPlugin, get_worker

from gdchaos.engine.compute import UnitResult, compute_unit
from gdchaos.engine.sweep import UnitProgress
from gdchaos.engine.units import Unit

THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PROGRESS_SECONDS = 2.0  # how often a unit in flight reports its epoch to the client
_SLOT_LOCK: list = []  # the open lock file of this process's cache slot, held until it exits


def thread_environment(threads: int) -> dict[str, str]:
    """Environment variables that give a process ``threads`` Numba, OpenMP and BLAS threads."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def numba_cache_root() -> Path:
    """Folder of the workers' cache slots: node-local temporary storage, one folder per user."""
    return Path(tempfile.gettempdir()) / f"gdchaos-numba-{os.getuid()}"


def claim_cache_slot(root: Path) -> Path:
    """The first slot folder ``root/slot-K`` no live process holds; held (flock) until this process exits."""
    root.mkdir(parents=True, exist_ok=True)
    for slot in range(10_000):
        handle = open(root / f"slot-{slot}.lock", "w")  # noqa: SIM115 - kept open: it is the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _SLOT_LOCK.append(handle)
        return root / f"slot-{slot}"
    raise RuntimeError(f"no free Numba cache slot in {root}")


def seed_cache(slot: Path) -> int:
    """Copy the backend's in-tree Numba cache files into ``slot`` where they are newer; returns how many.

    With ``NUMBA_CACHE_DIR`` set, Numba looks for the kernels of a source folder ``D`` in
    ``NUMBA_CACHE_DIR/<name of D>_<sha1 of D>``; its index files check the source's stamp, not the folder.
    """
    source = Path(os.path.abspath(importlib.util.find_spec("gdchaos.backend").submodule_search_locations[0]))
    target = slot / f"{source.name}_{hashlib.sha1(str(source).encode()).hexdigest()}"
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for path in (source / "__pycache__").glob("*.nb[ic]"):
        destination = target / path.name
        try:
            if not destination.exists() or destination.stat().st_mtime < path.stat().st_mtime:
                shutil.copy2(path, destination)
                copied += 1
        except OSError:
            continue  # replaced or removed meanwhile: compiled again if needed
    return copied


class WorkerSetup(WorkerPlugin):
    """Give a worker process ``threads`` Numba and BLAS threads and a Numba cache of its own."""

    name = "gdchaos-worker-setup"

    def __init__(self, threads: int | None, cache_root: str | None = None) -> None:
        self.threads = threads
        self.cache_root = cache_root

    def setup(self, worker) -> None:
        if os.environ.get("GDCHAOS_WORKER_SLOT"):
            return  # set up by an earlier run on this long-lived worker
        if "numba" in sys.modules:
            worker.log_event("gdchaos", f"worker {worker.name}: Numba was imported before gdchaos set its "
                                        "threads and cache; they keep the worker's own settings")
        if self.threads:
            os.environ.update(thread_environment(self.threads))
            from threadpoolctl import threadpool_limits
            threadpool_limits(self.threads)  # BLAS may already be loaded: limit it now too
        slot = claim_cache_slot(Path(self.cache_root) if self.cache_root else numba_cache_root())
        seed_cache(slot)
        os.environ["NUMBA_CACHE_DIR"] = str(slot)
        os.environ["GDCHAOS_WORKER_SLOT"] = slot.name


def unit_task(config_json: str, unit: Unit, fingerprint: str, topic: str) -> UnitResult:
    """:func:`gdchaos.engine.compute.compute_unit` on a worker, its epochs sent to the client under ``topic``."""
    worker = get_worker()
    last = [0.0]

    def progress(event: UnitProgress) -> None:
        now = time.monotonic()
        if event.phase != "done" and now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            worker.log_event(topic, {"unit": unit.index, "phase": event.phase, "epoch": event.epoch,
                                     "active": event.active})

    return compute_unit(config_json, unit, fingerprint, progress)
