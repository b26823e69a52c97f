"""Sweeps on Dask workers (docs/cluster.md): this machine, an existing cluster, or SLURM/PBS/SGE/LSF jobs.

- :mod:`.start`: the three kinds of cluster, as a :class:`~.executor.DaskExecutor`;
- :mod:`.executor`: units submitted to workers, results handed back to the one writer as they finish;
- :mod:`.worker`: what runs in a worker (its threads and Numba cache, a unit);
- :mod:`.jobqueue`: dask-jobqueue settings from ``jobqueue.yaml`` and the ``[cluster]`` table.

Needs the ``cluster`` extra (``pip install 'gdchaos[cluster]'``); importing this package alone does not.
"""
from __future__ import annotations

from gdchaos.errors import GdchaosError

EXTRA = "pip install 'gdchaos[cluster]'"


def require(flag: str, *, jobqueue: bool = False) -> None:
    """Raise a one-line error naming the extra when ``flag`` needs packages that are not installed."""
    try:
        import distributed  # noqa: F401
        if jobqueue:
            import dask_jobqueue  # noqa: F401
    except ImportError:
        raise GdchaosError(f"{flag}: needs the cluster extra: {EXTRA}") from None
