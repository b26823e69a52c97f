"""The three ways to get Dask workers, each as a :class:`~gdchaos.cluster.executor.DaskExecutor`."""
from __future__ import annotations

import logging
import os

from distributed import Client, LocalCluster

from gdchaos.cluster import jobqueue
from gdchaos.cluster.executor import DaskExecutor
from gdchaos.cluster.worker import WorkerSetup, thread_environment
from gdchaos.errors import GdchaosError

CONNECT_SECONDS = 30


def machine_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def local(workers: int, threads: int | None = None, **options) -> DaskExecutor:
    """``workers`` worker processes on this machine with ``threads`` Numba/BLAS threads each (default cores / workers)."""
    threads = threads or max(1, machine_cores() // workers)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           env=thread_environment(threads), dashboard_address=None,
                           silence_logs=logging.ERROR, **options)
    return _executor(Client(cluster), threads, cluster.close)


def connect(address: str, threads: int | None = None) -> DaskExecutor:
    """An existing ``dask.distributed`` scheduler; ``threads``: Numba/BLAS threads of its workers."""
    try:
        client = Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        raise GdchaosError(f"--scheduler: cannot reach {address}: {exc}") from None
    return _executor(client, threads, None)


def batch(kind: str, table: dict | None = None, *, jobs: int | None = None, lifetime: str | None = None,
          lifetime_stagger: str | None = None) -> DaskExecutor:
    """A dask-jobqueue cluster of ``kind`` scaling adaptively between 0 and ``jobs`` jobs (:mod:`.jobqueue`)."""
    values, max_jobs = jobqueue.settings(kind, table, jobs=jobs, lifetime=lifetime, lifetime_stagger=lifetime_stagger)
    cluster = jobqueue.make_cluster(kind, values)
    cluster.adapt(minimum_jobs=0, maximum_jobs=max_jobs)
    threads = max(1, values["cores"] // values["processes"])
    return _executor(Client(cluster), threads, cluster.close)


def _executor(client: Client, threads: int | None, close) -> DaskExecutor:
    try:
        client.register_plugin(WorkerSetup(threads))
    except BaseException:
        client.close()
        if close:
            close()
        raise
    return DaskExecutor(client, close=close)
