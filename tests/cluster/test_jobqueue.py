"""Batch clusters: the job scripts SLURM and PBS get from jobqueue.yaml and the [cluster] table (snapshots)."""
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("dask_jobqueue")

import dask

from gdchaos.cluster import jobqueue
from gdchaos.errors import GdchaosError

SNAPSHOTS = Path(__file__).parent / "snapshots"
TABLE = {"cores": 32, "memory": "128GB", "processes": 8, "walltime": "04:00:00", "job-name": "gdchaos",
         "local_directory": "$TMPDIR", "jobs": 10}  # a [cluster] table; job-name as jobqueue.yaml spells it


def job_script(kind: str, yaml: dict, table: dict, **flags) -> str:
    """The job script of ``kind``, scheduler address and python executable made stable."""
    with dask.config.set({f"jobqueue.{kind}.{key}": value for key, value in yaml.items()}):
        values, jobs = jobqueue.settings(kind, table, **flags)
        assert jobs == flags.get("jobs", table.get("jobs", 1))
        cluster = jobqueue.make_cluster(kind, values)
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    script = script.replace(sys.executable, "PYTHON")
    return re.sub(r"tcp://[\w.\-]+:\d+", "tcp://SCHEDULER:PORT", script)


@pytest.mark.parametrize("kind, yaml", [
    ("slurm", {"account": "chaos-lab", "queue": "compute", "walltime": "12:00:00", "cores": 4}),
    ("pbs", {"account": "chaos-lab", "queue": "workq", "resource-spec": "select=1:ncpus=32:mem=128GB"}),
])
def test_job_script_snapshot(kind, yaml):
    script = job_script(kind, yaml, TABLE)
    expected = (SNAPSHOTS / f"{kind}.sh").read_text()
    assert script == expected
    # what gdchaos adds: 4 Numba/BLAS threads in each of 8 one-unit workers, retiring before the walltime
    assert "export NUMBA_NUM_THREADS=4" in script and "--nthreads 1" in script
    assert "--lifetime 12960s --lifetime-stagger 720s" in script  # 4 h less 10% (24 min), stagger half of it


def test_flags_override_the_table_and_lifetime_must_end_before_the_walltime():
    values, jobs = jobqueue.settings("slurm", TABLE, jobs=3, lifetime="3h", lifetime_stagger="10m")
    assert jobs == 3 and values["worker_extra_args"][-4:] == ["--lifetime", "10800s", "--lifetime-stagger", "600s"]
    with pytest.raises(GdchaosError, match=r"^--lifetime: must end before the walltime \(04:00:00\)"):
        jobqueue.settings("slurm", TABLE, lifetime="230m", lifetime_stagger="10m")
    with pytest.raises(GdchaosError, match=r"^cluster.cores: set the cores per job"):
        jobqueue.settings("slurm", {"memory": "1GB"})
    with pytest.raises(GdchaosError, match=r"^--lifetime: must be a duration such as 50m"):
        jobqueue.settings("slurm", TABLE, lifetime="soon")
    with pytest.raises(GdchaosError, match=r"^cluster.colour: not a setting of SLURMCluster \(dask-jobqueue\)$"):
        jobqueue.make_cluster("slurm", {**jobqueue.settings("slurm", TABLE)[0], "colour": "blue"})


@pytest.mark.parametrize("text, seconds", [("04:00:00", 14400), ("1-02:00:00", 93600), ("30", 1800),
                                           ("12:30", 45000)])
def test_walltimes_of_the_batch_systems(text, seconds):
    assert jobqueue.walltime_seconds(text) == seconds
