"""Run a whole sweep into its results file: resume, partial writes, clean stops, analysis.

The one process that writes the file: it computes the pending units in order (:func:`gdchaos.engine.sweep.run_unit`),
stores their arrays as they fill (:class:`gdchaos.store.Writer`) and, at the end, the analysis of every
learning rate. An :class:`Executor` (:mod:`gdchaos.cluster`: Dask workers) may compute the units
instead; this process still writes each one as it returns (:func:`write_result`).
"""
from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from gdchaos import data as datasets
from gdchaos.checks import check_int
from gdchaos.config import SweepConfig
from gdchaos.engine.build import build_model
from gdchaos.engine.compute import UnitResult, machine
from gdchaos.engine.sweep import UnitProgress, run_unit
from gdchaos.engine.units import Unit, initial_conditions, plan_units, shard_units
from gdchaos.plan import check_affordable, plan
from gdchaos.store import Writer
from gdchaos.store.analysis import analyse_file
from gdchaos.store.verify import readable

PARTIAL_WRITE_SECONDS = 2.0  # how often a unit in flight shows its progress in the file


class Reporter(Protocol):
    """What the runner tells a front end (Rich progress, log lines, nothing)."""

    def start(self, path: Path, units: list[Unit], pending: list[Unit], config: SweepConfig) -> None: ...
    def progress(self, unit: Unit, event: UnitProgress) -> None: ...
    def unit_done(self, unit: Unit) -> None: ...
    def close(self) -> None: ...


class Executor(Protocol):
    """Computes units elsewhere (:mod:`gdchaos.cluster`) and hands them back to the one writer."""

    def results(self, config: SweepConfig, units: list[Unit], fingerprint: str
                ) -> Iterator[tuple[Unit, UnitProgress | UnitResult]]:
        """Each unit's progress while in flight, then its :class:`UnitResult`, in any order."""
        ...


@dataclass
class Outcome:
    """What a finished (or stopped) run leaves behind."""

    path: Path
    complete: bool
    units_run: int


def default_output(config: SweepConfig) -> str:
    """File name used when the config names none: dataset-activation-hidden-seed.h5."""
    hidden = "cnn" if config.model.kind == "cnn" else "-".join(str(h) for h in config.model.hidden)
    return f"{config.dataset}-{config.model.activation}-{hidden}-seed{config.seed}.h5"


def prepare(config: SweepConfig):
    """Validate the config, load and check the data, build the model and plan the units."""
    config.validate()
    x, y, x_test, y_test = datasets.load(config.dataset, config.data_dir)
    n_classes = int(max(y.max(), y_test.max())) + 1
    model = build_model(config, x.shape[1], n_classes)
    model.check_data(x, y)
    model.check_data(x_test, y_test)
    check_int("tangent_k", config.tangent_k, 0, model.n_params)  # K vectors of P dimensions
    units = plan_units(config, model, x.shape[0])
    return model, (x, y, x_test, y_test), units


def run(config: SweepConfig, *, overwrite: bool = False, reporter: Reporter | None = None,
        announce=None, executor: Executor | None = None, shard: tuple[int, int] | None = None) -> Outcome:
    """Run (or continue) the sweep of ``config``; Ctrl-C or SIGTERM stops it with a consistent file.

    ``announce`` (e.g. ``print``) receives one-line notices before the run starts. ``executor``
    computes the units (default: this process, in order); ``shard`` (K, N) runs only the units of
    :func:`gdchaos.engine.units.shard_units` (``gdchaos merge`` joins the files).
    """
    path = Path(config.output or default_output(config))
    check_affordable(plan(config.validate()), path)
    model, data, units = prepare(config)
    trajectory_bytes = config.trajectory_bytes(model.n_params) if config.save_trajectories else 0
    if trajectory_bytes and announce:
        announce(f"trajectories: {len(config.trajectory_ic_list())} ICs x {len(config.trajectory_epochs())} epochs "
                 f"x {config.replicas + 1} networks x {len(config.etas)} etas = {trajectory_bytes / 1e9:.3g} GB "
                 f"({config.trajectory_dtype})")
    fingerprint = datasets.fingerprint(*data)
    layout = [{"name": t.name, "shape": list(t.shape), "offset": t.offset} for t in model.layout()]
    units_run = 0
    with _stop_on_signals() as stop, Writer.create_or_resume(
            path, config, units, n_params=model.n_params, layout=layout, fingerprint=fingerprint,
            overwrite=overwrite) as writer:
        if writer.units != units:
            units = writer.units
            if announce:
                announce(f"resuming with the file's plan of {len(units)} units")
        pending = writer.pending(shard_units(units, *shard) if shard else units)
        if reporter:
            reporter.start(path, units, pending, config)
        try:
            if executor is None:
                for unit in pending:
                    _run_one(model, config, unit, data, writer, reporter, stop)
                    units_run += 1
            else:
                units_run = _run_elsewhere(executor, config, pending, fingerprint, writer, reporter, stop)
            stop.check()
            analyse_into(writer, config)
            complete = not writer.pending(units)
        finally:
            if reporter:
                reporter.close()
    return Outcome(path, complete, units_run)


def _run_elsewhere(executor: Executor, config: SweepConfig, pending: list[Unit], fingerprint: str,
                   writer: Writer, reporter, stop: StopRequest) -> int:
    """Write the executor's units as they return; units in flight show their epochs (live progress)."""
    done = 0
    for unit, item in executor.results(config, pending, fingerprint):
        stop.check()
        if isinstance(item, UnitResult):
            write_result(writer, unit, item)
            done += 1
            if reporter:
                reporter.unit_done(unit)
            continue
        writer.write_unit(unit, {}, item.epoch + 1, done=False)
        if reporter:
            reporter.progress(unit, item)
    return done


def write_result(writer: Writer, unit: Unit, result: UnitResult) -> None:
    """Store a unit computed elsewhere with the serial run's calls: the same datasets, the same bits."""
    writer.write_initial_params(unit.ic_start, result.initial_params)
    for column, theta in result.trajectory:
        writer.write_trajectory(unit, column, theta)
    writer.write_unit_origin(unit, result.host, result.cpu)
    writer.write_unit(unit, result.arrays, result.epochs_done, done=True)


def _run_one(model, config, unit: Unit, data, writer: Writer, reporter, stop: StopRequest) -> None:
    balls = initial_conditions(model, config, unit.ic_start, unit.ic_stop)
    writer.write_initial_params(unit.ic_start, balls[:, 0])
    writer.write_unit_origin(unit, *machine())
    last_write = -PARTIAL_WRITE_SECONDS  # write at once: readers see which unit is in flight
    stale: set[str] = set()  # arrays changed since they were last written
    for event in run_unit(model, config, unit, data, balls):
        stop.check()
        done = event.phase == "done"
        now = time.monotonic()
        stale.update(event.arrays if event.changed is None else event.changed)
        if event.trajectory is not None:
            writer.write_trajectory(unit, *event.trajectory)
        if done or now - last_write >= PARTIAL_WRITE_SECONDS:
            writer.write_unit(unit, {name: event.arrays[name] for name in stale}, event.epoch + 1, done=done)
            stale.clear()
            last_write = now
        if reporter:
            reporter.progress(unit, event)
    if reporter:
        reporter.unit_done(unit)


def analyse_into(writer: Writer, config: SweepConfig) -> None:
    """Fit every complete learning rate with the config's parameters and store the per-eta summary and per-IC fits."""
    with readable(writer.path):
        analysis = analyse_file(writer.file, config.fit_params(), refit=True)
    writer.write_analysis(analysis)


class StopRequest:
    """Ctrl-C or SIGTERM seen during a run; :meth:`check` raises it again if Python swallowed it.

    A signal handler's exception is dropped when it fires inside a finalizer (a weakref callback,
    ``__del__``), so the flag, not the exception alone, decides that the run stops.
    """

    def __init__(self) -> None:
        self.requested = False

    def handler(self, signum, frame) -> None:
        self.requested = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def unraisable(self, unraisable, default) -> None:
        """The swallowed stop is not an error to print: :meth:`check` raises it again."""
        if not (self.requested and unraisable.exc_type is KeyboardInterrupt):
            default(unraisable)


@contextmanager
def _stop_on_signals() -> Iterator[StopRequest]:
    """SLURM and the TUI stop runs with SIGTERM, people with Ctrl-C: both stop cleanly (resumable)."""
    stop = StopRequest()
    previous = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, stop.handler)
    except ValueError:  # not the main thread: whoever started the thread stops it
        pass
    hook = sys.unraisablehook
    if previous:
        sys.unraisablehook = partial(stop.unraisable, default=hook)
    try:
        yield stop
    finally:
        sys.unraisablehook = hook
        for number, handler in previous.items():
            signal.signal(number, handler)
