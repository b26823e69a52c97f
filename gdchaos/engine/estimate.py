"""Run-time estimates for a sweep on this machine (`gdchaos run --dry-run`, `gdchaos presets`, the TUI).

A calibration is a short probe of the engine itself: a few epochs of one full unit of work (its
eps-balls) and of its references alone (the tau phase), on the first ``PROBE_SAMPLES`` samples of
the data set (synthetic data of its shape and density when it is not here). It is measured once per
network, unit and machine and kept in ``calibration.json`` under the gdchaos cache folder, so later
answers take no measurement; an entry older than ``CALIBRATION_MAX_AGE`` is still used and measured
again in the background (``python -m gdchaos.engine.estimate``, see :func:`refresh_in_background`).

A probe is only as good as the machine was quiet while it ran: other processes (or, on a virtual
machine, the host) taking the cores make every epoch look slower, and the estimate would be kept
for a month. So each timed phase also reads what the whole machine spent (``/proc/stat``) against
what this process spent (:func:`others_share`); a phase during which others took more than
``DISTURBED_SHARE`` of the machine is timed again, up to ``PROBE_TRIES`` times, and the quickest
try is kept with the share others took during it. A calibration stored with a larger share still
answers, but counts as stale: it is measured again once the machine is quiet (:func:`busy_now`), in
the background for ``gdchaos presets`` and the TUI, at once for ``gdchaos run --dry-run``.

What a run costs besides training (the interpreter, imports, loading the kernels, reading the data set
and building its sparse form, creating the file, leaving the process) is measured too, once per data
set and machine: a tiny ``gdchaos run`` of the data set, timed in a fresh process (:func:`start_seconds`).
"""
from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from gdchaos import data
from gdchaos.config import SweepConfig, from_dict
from gdchaos.engine.build import build_for_dataset
from gdchaos.engine.train import train_balls, train_to_target
from gdchaos.engine.units import unit_shape
from gdchaos.errors import GdchaosError

PROBE_SAMPLES = 8192  # training samples of the probe (all of a smaller data set); past them time grows as N
PROBE_EPOCHS = 3  # timed epochs of each phase (after one that loads the kernels)
MAX_CALIBRATION_NETWORKS = 4800
TAU_FRACTION = 0.5  # assumed share of the tau budget the references still train past T (docs/performance.md)
START_SECONDS = 1.5  # start-up where none was measured (no data set here, or a failed tiny run)
START_RUNS = 2  # tiny runs timed for the start-up, the quickest kept (the first may compile kernels)
START_TIMEOUT = 300.0  # seconds a tiny run may take before the start-up counts as unknown
FIT_SECONDS = 0.3e-3  # analysis of one eps-ball, T = 201 (docs/performance.md)
CALIBRATION_FILE = "calibration.json"
CALIBRATION_MAX_AGE = 30 * 86400.0  # seconds before a stored calibration is measured again
BACKGROUND_ENV = "GDCHAOS_BACKGROUND_TIMING"  # "0": never time networks in the background (CI, batch jobs)
DISTURBED_SHARE = 0.15  # share of the machine taken by other processes above which a probe is timed again
PROBE_TRIES = 3  # timings of a phase at most, while others disturb it (the quickest is kept)
TINY_EPOCHS = 2  # epochs of the tiny run that measures the start-up (the fewest a config allows)
TINY_MLP = {"kind": "mlp", "hidden": [8]}  # the tiny run's network: its training is a small part of the run
_START_LOCK = threading.Lock()  # one start-up measurement at a time (the TUI estimates in threads)
MACHINE_STAT = Path("/proc/stat")  # Linux: CPU time of the whole machine (elsewhere: no check)
AUTOGROUP = "/proc/self/autogroup"  # this session's scheduler group (Linux)


class Calibration(NamedTuple):
    """Seconds per network-epoch of a unit's balls and of its references alone (full data set), the
    largest share of the machine other processes took while they were timed (None: not known), and
    the seconds a run spends outside training (:func:`start_seconds`; None: not measured)."""

    ball: float
    tau: float
    others: float | None = None
    start: float | None = None

    @property
    def disturbed(self) -> bool:
        """Other processes took more than ``DISTURBED_SHARE`` of the machine during the probe."""
        return self.others is not None and self.others > DISTURBED_SHARE


class CpuSnapshot(NamedTuple):
    """Wall clock, CPU seconds the whole machine spent (hypervisor's steal included) and this process's."""

    wall: float
    machine: float | None
    own: float


def cpu_snapshot() -> CpuSnapshot:
    """Now: :class:`CpuSnapshot` (``machine`` None where ``/proc/stat`` cannot be read)."""
    wall = time.perf_counter()
    times = os.times()
    busy = None
    try:
        with MACHINE_STAT.open() as stat:
            fields = stat.readline().split()
        # cpu user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy
        if fields and fields[0] == "cpu" and len(fields) >= 9:
            ticks = [int(value) for value in fields[1:9]]
            busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):  # no /proc/stat, or no sysconf: unknown
        pass
    return CpuSnapshot(wall, busy, times.user + times.system)


def others_share(before: CpuSnapshot, after: CpuSnapshot, cores: int | None = None) -> float | None:
    """Share of the machine's CPU capacity other processes took between two snapshots:
    (machine busy - this process's CPU) / (wall seconds x cores), in [0, 1]; None when unknown."""
    cores = cores or os.cpu_count() or 1
    wall = after.wall - before.wall
    if before.machine is None or after.machine is None or wall <= 0:
        return None
    others = (after.machine - before.machine) - (after.own - before.own)
    return min(1.0, max(0.0, others / (wall * cores)))


def busy_now(seconds: float = 0.25) -> bool:
    """Whether other processes take more than ``DISTURBED_SHARE`` of the machine now (over
    ``seconds`` of sleep): probing again then would be disturbed again."""
    before = cpu_snapshot()
    time.sleep(seconds)
    share = others_share(before, cpu_snapshot())
    return share is not None and share > DISTURBED_SHARE


def network_size(config: SweepConfig) -> int:
    """Number of trainable parameters P of the config's network."""
    return build_for_dataset(config).n_params


def estimate_seconds(config: SweepConfig, *, measure: bool = True) -> float | None:
    """Seconds for the whole sweep on this machine, from the probe of :func:`network_epoch_seconds`.

    t = c_ball (ball network-epochs) + c_tau (tau network-epochs) + :func:`overhead_seconds`, with
    ball network-epochs = n_eta q (M + 1)(T + 1) and tau network-epochs = n_eta q (tau_epochs - T)
    ``TAU_FRACTION`` (the references still training past T). c_ball and c_tau come from the stored
    calibration; without one they are measured (and stored), or, with ``measure=False``, the answer is None.
    """
    costs = calibration(config, measure=measure)
    if costs is None:
        return None
    n_eta, ball = len(config.etas), config.replicas + 1
    ball_epochs = n_eta * config.ics * ball * (config.epochs + 1)
    tau_epochs = n_eta * config.ics * max(config.tau_epochs - config.epochs, 0) * TAU_FRACTION
    return costs.ball * ball_epochs + costs.tau * tau_epochs + overhead_seconds(config, costs.start)


def overhead_seconds(config: SweepConfig, start: float | None = None) -> float:
    """Seconds outside training: the measured start-up ``start`` (``START_SECONDS`` when None) plus the
    analysis of every eps-ball (``FIT_SECONDS`` each)."""
    return (START_SECONDS if start is None else start) + FIT_SECONDS * len(config.etas) * config.ics


def network_epoch_seconds(config: SweepConfig, *, measure: bool = True) -> tuple[float, float] | None:
    """(c_ball, c_tau): seconds per network-epoch of a unit's balls and of its references alone, on the
    full data set (see :func:`calibration`)."""
    costs = calibration(config, measure=measure)
    return None if costs is None else (costs.ball, costs.tau)


def calibration(config: SweepConfig, *, measure: bool = True) -> Calibration | None:
    """The :class:`Calibration` of this config on this machine: stored, else probed and stored (None
    when not stored and ``measure`` is False). A stored probe that other processes disturbed is probed
    again when ``measure`` is True and the machine is quiet now (:func:`busy_now`), else it still answers."""
    key = calibration_key(config)
    costs = _stored_costs(read_calibration().get(key))
    if costs is None or (measure and costs.disturbed and not busy_now()):
        if not measure:
            return None
        costs = _timed_probe(*json.loads(key)[1:])
        store_calibration(key, costs)
    return costs._replace(start=start_seconds(config.dataset, config.data_dir or "", measure=measure))


def calibration_key(config: SweepConfig) -> str:
    """What a calibration depends on: this machine, the data set, the network and the unit's shape."""
    model = build_for_dataset(config)
    etas_per_unit, ics_per_unit = unit_shape(config, model, data.dataset_spec(config.dataset).train)
    balls = min(etas_per_unit * ics_per_unit, max(1, MAX_CALIBRATION_NETWORKS // (config.replicas + 1)))
    return json.dumps([_machine(), config.dataset, config.data_dir or "",
                       json.dumps(config.to_dict()["model"], sort_keys=True), balls, config.replicas + 1])


def _machine() -> str:
    """This machine and engine, as calibrations are keyed: host name, architecture, cores, Numba's
    thread count, and :func:`engine_revision` (a new version of the kernels measures again)."""
    return (f"{platform.node()}/{platform.machine()}/{os.cpu_count()}/{os.environ.get('NUMBA_NUM_THREADS', '')}"
            f"/{engine_revision()}")


@functools.cache
def engine_revision() -> str:
    """A digest of the source of the code whose speed a probe measures (the kernels, the network
    math, the training loops): stored costs of an older engine are not used (docs/performance.md)."""
    import hashlib

    import gdchaos.backend
    import gdchaos.nn

    digest = hashlib.sha256()
    for package in (gdchaos.backend, gdchaos.nn, sys.modules[__package__]):
        for source in sorted(Path(package.__file__).parent.glob("*.py")):
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:12]


def calibration_path() -> Path:
    """The calibrations of this machine: ``calibration.json`` in the gdchaos cache folder."""
    return data.cache_root() / CALIBRATION_FILE


def read_calibration() -> dict[str, dict]:
    """Stored calibrations by key (empty when none or unreadable: they are only hints)."""
    try:
        stored = json.loads(calibration_path().read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def store_calibration(key: str, costs: Calibration | tuple[float, float]) -> None:
    """Add one calibration, (c_ball, c_tau[, others]) (written aside and renamed: readers never see half a file)."""
    costs = Calibration(*costs)
    _store(key, {"ball": float(costs.ball), "tau": float(costs.tau), "others": costs.others})


def _store(key: str, entry: dict) -> None:
    """Add one entry to the calibration file, with the time it was measured."""
    stored = read_calibration()
    stored[key] = {**entry, "measured": time.time()}
    path = calibration_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        part.write_text(json.dumps(stored, indent=0, sort_keys=True))
        os.replace(part, path)
    except OSError:  # a read-only cache: estimates are measured again next time
        pass


def stale(config: SweepConfig) -> bool:
    """No calibration for this config's network on this machine, an old one, or one that other
    processes disturbed."""
    calibrations = read_calibration()
    stored = calibrations.get(calibration_key(config))
    costs = _stored_costs(stored)
    start = calibrations.get(_start_key(config.dataset, config.data_dir or ""))
    return costs is None or costs.disturbed or _too_old(stored) or not isinstance(start, dict) or _too_old(start)


def _too_old(entry: dict) -> bool:
    """A stored entry measured more than ``CALIBRATION_MAX_AGE`` ago."""
    return time.time() - float(entry.get("measured", 0)) > CALIBRATION_MAX_AGE


def _stored_costs(entry) -> Calibration | None:
    """The :class:`Calibration` of a stored entry (start-up not filled); None for none, or one of an
    older gdchaos (probed again)."""
    try:
        others = entry.get("others")
        return Calibration(float(entry["ball"]), float(entry["tau"]), None if others is None else float(others))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def refresh_in_background(presets: list[str]) -> bool:
    """Measure the calibrations of these presets in a separate low-priority process (it outlives the
    caller); False when ``$GDCHAOS_BACKGROUND_TIMING`` is 0 (nothing started)."""
    if os.environ.get(BACKGROUND_ENV, "1") == "0":
        return False
    subprocess.Popen([sys.executable, "-m", "gdchaos.engine.estimate", *presets], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return True


def _yield_to_others() -> None:
    """Lowest CPU priority for this process: nice 10 and, on Linux, nice 19 for its session's
    scheduler group (with autogroups, the default on desktops and many servers, a process's nice only
    ranks it within its own session, and the probe runs in a session of its own: without the group's
    nice it takes half the machine from a run started in a terminal)."""
    if hasattr(os, "nice"):
        os.nice(10)
    try:
        with open(AUTOGROUP, "w") as group:
            group.write("19")
    except OSError:  # not Linux, autogroups off, or not allowed: the process nice alone
        pass


def main(argv: list[str]) -> int:
    """``python -m gdchaos.engine.estimate PRESET...``: measure and store their calibrations."""
    from gdchaos import presets

    _yield_to_others()
    for name in argv:
        config = presets.get(name)
        key = calibration_key(config)
        stored = read_calibration().get(key)
        old = _stored_costs(stored)
        if old is not None and old.disturbed and not _too_old(stored) and busy_now():
            continue  # the machine is still busy: a new probe would be no better
        store_calibration(key, _timed_probe(*json.loads(key)[1:]))
        start_key = _start_key(config.dataset, config.data_dir or "")
        if _too_old(read_calibration().get(start_key) or {}):
            start_seconds(config.dataset, config.data_dir or "", refresh=True)
    return 0


@functools.lru_cache(maxsize=32)
def _timed_probe(dataset: str, data_dir: str, model_json: str, balls: int, ball: int) -> Calibration:
    """(c_ball, c_tau) from ``PROBE_EPOCHS`` epochs of ``balls`` eps-balls of ``ball`` networks, then
    of their references alone (an unreachable target), on the first ``PROBE_SAMPLES`` samples, scaled
    to the full data set (the first epoch of each phase loads or compiles the kernels: not counted).
    Each phase is timed again while other processes take the machine (:func:`timed_quietly`)."""
    spec = data.dataset_spec(dataset)
    model = build_for_dataset(from_dict({"dataset": dataset, "model": json.loads(model_json)}))
    x, y, x_test, y_test, _ = _probe_data(dataset, data_dir or None)
    rng = np.random.default_rng(0)
    theta = model.init(rng, balls * ball)
    eta = 1e-3  # a small learning rate: nothing diverges, every network does the full work
    refs = np.arange(0, theta.shape[0], ball)

    def ball_epochs(epochs: int) -> None:
        for _ in train_balls(model, theta.copy(), eta, x, y, epochs, ball, x_test=x_test, y_test=y_test):
            pass

    def tau_epochs(epochs: int) -> None:
        train_to_target(model, theta[refs], eta, x, y, x_test, y_test, target=2.0, epochs=epochs)

    costs, shares = [], []
    # PROBE_EPOCHS ball epochs record PROBE_EPOCHS + 1 evaluations (t = 0..E), as T epochs record T + 1
    for phase, evaluations, networks in ((ball_epochs, PROBE_EPOCHS + 1, theta.shape[0]),
                                         (tau_epochs, PROBE_EPOCHS, refs.size)):
        phase(1)
        seconds, share = timed_quietly(functools.partial(phase, PROBE_EPOCHS))
        costs.append(seconds / evaluations / networks * spec.train / x.shape[0])
        shares.append(share)
    known = [share for share in shares if share is not None]
    return Calibration(costs[0], costs[1], max(known) if known else None)


def _start_key(dataset: str, data_dir: str) -> str:
    """What a start-up measurement depends on: this machine and the data set."""
    return json.dumps(["start", _machine(), dataset, data_dir])


def start_seconds(dataset: str, data_dir: str = "", *, measure: bool = True, refresh: bool = False) -> float | None:
    """Seconds a run of this data set spends outside training on this machine: stored, else measured
    (when ``measure``) and stored; None when not stored and not measured, when the data set is not
    here, or when the tiny run fails.

    The measurement is the quicker of ``START_RUNS`` tiny ``gdchaos run`` commands (``TINY_MLP``, one
    learning rate, one ball of 2 networks, ``TINY_EPOCHS`` epochs, no tau phase) timed from the start
    to the end of their process: interpreter, imports, kernels, data, results file and exit, plus a
    training that is a small part of it (not subtracted). The first run may compile kernels."""
    key = _start_key(dataset, data_dir)
    with _START_LOCK:  # threads asking at once wait for one measurement
        entry = read_calibration().get(key)
        if isinstance(entry, dict) and not refresh:
            return entry.get("start")
        if not measure:
            return None
        start = _timed_tiny_runs(dataset, data_dir) if _probe_data(dataset, data_dir or None)[-1] else None
        _store(key, {"start": start})
        return start


def _timed_tiny_runs(dataset: str, data_dir: str) -> float | None:
    """Wall seconds of the quickest of ``START_RUNS`` tiny runs in fresh processes (None: one failed)."""
    config = from_dict({"dataset": dataset, "data_dir": data_dir or None, "model": TINY_MLP,
                        "etas": [1e-3], "ics": 1, "replicas": 1, "epochs": TINY_EPOCHS, "tau_epochs": TINY_EPOCHS})
    environment = {**os.environ, BACKGROUND_ENV: "0"}  # the tiny run must not start probes of its own
    times = []
    with tempfile.TemporaryDirectory(prefix="gdchaos-start-") as folder:
        path = Path(folder) / "tiny.toml"
        path.write_text(from_dict({"output": str(Path(folder) / "tiny.h5")}, config).to_toml())
        command = [sys.executable, "-m", "gdchaos", "run", "--headless", "--quiet", "--overwrite", "--config", str(path)]
        for _ in range(START_RUNS):
            begun = time.perf_counter()
            try:
                done = subprocess.run(command, capture_output=True, env=environment, timeout=START_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                return None
            if done.returncode != 0:
                return None
            times.append(time.perf_counter() - begun)
    return min(times)


def timed_quietly(work, tries: int = PROBE_TRIES) -> tuple[float, float | None]:
    """(seconds, others' share) of the first call of ``work`` during which other processes took at
    most ``DISTURBED_SHARE`` of the machine (:func:`others_share`; an unknown share counts as quiet),
    else of the quickest of ``tries`` calls."""
    disturbed = []
    for _ in range(tries):
        before = cpu_snapshot()
        work()
        after = cpu_snapshot()
        timing = (after.wall - before.wall, others_share(before, after))
        if timing[1] is None or timing[1] <= DISTURBED_SHARE:
            return timing
        disturbed.append(timing)
    return min(disturbed)


def _probe_data(dataset: str, data_dir: str | None) -> tuple:
    """(x, y, x_test, y_test, real): the first ``PROBE_SAMPLES`` training samples of the data set and a
    test set in the same proportion (real True); synthetic data of its shape and density when it is
    not here (real False)."""
    spec = data.dataset_spec(dataset)
    n = min(spec.train, PROBE_SAMPLES)
    n_test = max(1, min(spec.test, round(spec.test * n / spec.train)))
    try:
        x, y, x_test, y_test = data.load(dataset, data_dir)
        return x[:n].copy(), y[:n].copy(), x_test[:n_test].copy(), y_test[:n_test].copy(), True
    except (GdchaosError, OSError):
        rng = np.random.default_rng(0)
        x = rng.random((n + n_test, spec.features)) * (rng.random((n + n_test, spec.features)) < spec.density)
        y = rng.integers(0, spec.classes, n + n_test)
        return x[:n], y[:n], x[n:], y[n:], False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
