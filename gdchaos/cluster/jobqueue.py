"""dask-jobqueue clusters (SLURM, PBS, SGE, LSF): settings from ``jobqueue.yaml`` under a ``[cluster]`` table.

dask-jobqueue reads its own configuration (``~/.config/dask/jobqueue.yaml``, the ``jobqueue.<kind>``
keys) for every setting not passed to it; the ``[cluster]`` table of a gdchaos TOML config passes
settings (dask-jobqueue's keyword names, ``-`` or ``_``) that override it. gdchaos adds, per job:
one Dask thread per worker process (a worker computes one unit at a time) with ``cores / processes``
Numba and BLAS threads (exported in the job script), and a worker lifetime shorter than the walltime,
so that a worker retires before its job is killed and the units it was computing run again elsewhere.
"""
from __future__ import annotations

import re

import dask
from dask.utils import parse_timedelta
from distributed.deploy.utils import nprocesses_nthreads

from gdchaos.checks import check_choice, check_int, fail
from gdchaos.cluster.worker import thread_environment
from gdchaos.errors import GdchaosError

KINDS = ("slurm", "pbs", "sge", "lsf")
GDCHAOS_KEYS = ("jobs", "lifetime", "lifetime_stagger")  # of the [cluster] table, not dask-jobqueue's
MIN_MARGIN_SECONDS = 300  # the default lifetime ends at least this long before the walltime


def cluster_class(kind: str):
    """The dask-jobqueue cluster class of ``kind``."""
    import dask_jobqueue

    check_choice("--cluster", kind, KINDS)
    return {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster,
            "sge": dask_jobqueue.SGECluster, "lsf": dask_jobqueue.LSFCluster}[kind]


def walltime_seconds(text: str) -> float:
    """Seconds of a batch system's walltime: ``D-HH:MM:SS``, ``HH:MM:SS``, ``HH:MM`` (LSF) or minutes."""
    days, _, clock = str(text).rpartition("-")
    try:
        parts = [float(part) for part in clock.split(":")]
        if len(parts) > 3 or (days and not days.isdigit()):
            raise ValueError
    except ValueError:
        fail("cluster.walltime", "D-HH:MM:SS, HH:MM:SS, HH:MM or minutes", text)
    if len(parts) == 1:
        parts = [0.0, parts[0], 0.0]
    elif len(parts) == 2:
        parts = [*parts, 0.0]
    hours, minutes, seconds = parts
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


def settings(kind: str, table: dict | None = None, *, jobs: int | None = None, lifetime: str | None = None,
             lifetime_stagger: str | None = None) -> tuple[dict, int]:
    """Keyword arguments of the dask-jobqueue cluster, and the maximum number of jobs.

    ``table``: the TOML ``[cluster]`` table; ``jobs``, ``lifetime``, ``lifetime_stagger`` (flags) override
    its keys of the same names. Lifetime default: the walltime less max(5 min, 10%); stagger: half of that margin.
    """
    cluster_class(kind)
    values = {key.replace("-", "_"): value for key, value in (table or {}).items()}
    jobs = check_int("--jobs", jobs if jobs is not None else values.pop("jobs", 1), 1)
    values.pop("jobs", None)
    lifetime = lifetime or values.pop("lifetime", None)
    stagger = lifetime_stagger or values.pop("lifetime_stagger", None)
    values.pop("lifetime", None), values.pop("lifetime_stagger", None)

    def configured(key: str, default=None):
        return values[key] if key in values else dask.config.get(f"jobqueue.{kind}.{key.replace('_', '-')}",
                                                                 default)

    cores = configured("cores")
    if cores is None:
        raise GdchaosError(f"cluster.cores: set the cores per job in the [cluster] table or in jobqueue.yaml "
                           f"(jobqueue.{kind}.cores)")
    cores = check_int("cluster.cores", cores, 1)
    processes = check_int("cluster.processes", configured("processes") or nprocesses_nthreads(cores)[0], 1, cores)
    threads = max(1, cores // processes)
    walltime = configured("walltime")
    lifetime, stagger = _lifetime(walltime, lifetime, stagger)
    values.update(cores=cores, processes=processes, walltime=walltime)
    values["job_script_prologue"] = [*(configured("job_script_prologue") or []),
                                     *(f"export {name}={value}" for name, value in thread_environment(threads).items())]
    values["worker_extra_args"] = [*(configured("worker_extra_args") or []), "--nthreads", "1",
                                   "--lifetime", lifetime, "--lifetime-stagger", stagger]
    return values, jobs


def _lifetime(walltime, lifetime: str | None, stagger: str | None) -> tuple[str, str]:
    """Worker lifetime and its stagger, checked to end before the walltime."""
    wall = walltime_seconds(walltime) if walltime else None
    if lifetime is None:
        if wall is None:
            raise GdchaosError("--lifetime: set a worker lifetime shorter than the jobs' walltime, or a walltime")
        margin = max(MIN_MARGIN_SECONDS, wall / 10)
        lifetime_s, stagger_s = wall - margin, margin / 2
        stagger_s = _seconds("--lifetime-stagger", stagger) if stagger else stagger_s
    else:
        lifetime_s = _seconds("--lifetime", lifetime)
        stagger_s = _seconds("--lifetime-stagger", stagger) if stagger else 0.0
    if lifetime_s <= stagger_s or (wall is not None and lifetime_s + stagger_s >= wall):
        raise GdchaosError(f"--lifetime: must end before the walltime ({walltime}), with --lifetime-stagger "
                           f"({stagger_s:g} s) on top and longer than it; got {lifetime_s:g} s")
    return f"{int(lifetime_s)}s", f"{int(stagger_s)}s"


def _seconds(flag: str, text: str) -> float:
    try:
        return float(parse_timedelta(text))
    except (ValueError, KeyError, TypeError):
        fail(flag, "a duration such as 50m, 3h or 900s", text)


def make_cluster(kind: str, values: dict):
    """The dask-jobqueue cluster (nothing is submitted until it scales)."""
    cls = cluster_class(kind)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if unknown:
            raise GdchaosError(f"cluster.{unknown[1]}: not a setting of {cls.__name__} (dask-jobqueue)") from None
        raise GdchaosError(f"cluster: {str(exc).splitlines()[0]}") from None
