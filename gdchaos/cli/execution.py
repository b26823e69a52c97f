"""Where ``gdchaos run`` computes its units (docs/cluster.md): this process, Dask workers, or one shard.

Flags: ``--workers N`` (a local Dask cluster), ``--scheduler ADDRESS`` (an existing one), ``--cluster
KIND`` (dask-jobqueue; ``--jobs``, ``--lifetime``, ``--lifetime-stagger``, a ``[cluster]`` table in
``--config``), ``--threads-per-worker`` and ``--shard K/N``. Everything Dask is imported only when asked for.
"""
from __future__ import annotations

import contextlib
import re
import tomllib

from gdchaos.cli import integer
from gdchaos.errors import GdchaosError

KINDS = ("slurm", "pbs", "sge", "lsf")


def add_arguments(parser) -> None:
    """Add the execution flags to the run parser."""
    group = parser.add_argument_group("where units run (docs/cluster.md; Dask needs pip install 'gdchaos[cluster]')")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--workers", type=integer, metavar="N", help="N Dask worker processes on this machine")
    where.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--cluster", choices=KINDS, help="workers in batch jobs (dask-jobqueue; [cluster] table)")
    where.add_argument("--shard", metavar="K/N", help="only the K-th (1..N) of N disjoint sets of units, into -o")
    group.add_argument("--threads-per-worker", type=integer, metavar="K",
                       help="Numba/BLAS threads per worker (default: cores / workers)")
    group.add_argument("--jobs", type=integer, metavar="N", help="--cluster: at most this many jobs (adaptive; default 1)")
    group.add_argument("--lifetime", metavar="T",
                       help="--cluster: worker lifetime, e.g. 3h (default: walltime less max(5 min, 10%%))")
    group.add_argument("--lifetime-stagger", metavar="S", help="--cluster: random spread of the lifetimes, e.g. 5m")


def shard(args) -> tuple[int, int] | None:
    """(K, N) of ``--shard K/N``, checked; None without the flag."""
    if args.shard is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", args.shard)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise GdchaosError(f"--shard: must be K/N with 1 <= K <= N (e.g. 1/4); got {args.shard!r}")
    if not args.output:
        raise GdchaosError("--shard: give each shard its own file with -o (e.g. -o part-K.h5)")
    return int(match[1]), int(match[2])


def check(args) -> None:
    """One-line errors for flags that do not go together or need the cluster extra."""
    from gdchaos.checks import check_int

    if args.workers is not None:
        check_int("--workers", args.workers, 1)
    if args.threads_per_worker is not None:
        check_int("--threads-per-worker", args.threads_per_worker, 1)
        if args.workers is None and args.scheduler is None:
            raise GdchaosError("--threads-per-worker: goes with --workers or --scheduler")
    for flag in ("jobs", "lifetime", "lifetime_stagger"):
        if getattr(args, flag) is not None and args.cluster is None:
            raise GdchaosError(f"--{flag.replace('_', '-')}: goes with --cluster")
    shard(args)
    if args.workers is not None or args.scheduler is not None or args.cluster is not None:
        from gdchaos.cluster import require

        flag = "--workers" if args.workers is not None else "--scheduler" if args.scheduler else "--cluster"
        require(flag, jobqueue=args.cluster is not None)


@contextlib.contextmanager
def executor(args):
    """The Dask executor the flags ask for (closed on leaving), or None: units run in this process."""
    if args.workers is None and args.scheduler is None and args.cluster is None:
        yield None
        return
    from gdchaos.cluster import start

    if args.workers is not None:
        chosen = start.local(args.workers, args.threads_per_worker)
    elif args.scheduler is not None:
        chosen = start.connect(args.scheduler, args.threads_per_worker)
    else:
        chosen = start.batch(args.cluster, cluster_table(args.config), jobs=args.jobs, lifetime=args.lifetime,
                             lifetime_stagger=args.lifetime_stagger)
    with chosen:
        yield chosen


def cluster_table(path: str | None) -> dict:
    """The ``[cluster]`` table of a TOML config (execution settings: not part of the sweep's identity)."""
    if not path:
        return {}
    with open(path, "rb") as handle:  # already read and checked by config.load_toml
        table = tomllib.load(handle).get("cluster", {})
    if not isinstance(table, dict):
        raise GdchaosError(f"cluster: must be a table of dask-jobqueue settings; got {table!r}")
    return table
