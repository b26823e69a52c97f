"""How a headless run reports progress: Rich bars on a terminal, plain log lines otherwise."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from gdchaos.config import SweepConfig
from gdchaos.engine.sweep import UnitProgress
from gdchaos.engine.units import Unit
from gdchaos.text import duration

LOG_EVERY_SECONDS = 10.0


class _Clock:
    """Epoch throughput and ETA over the units of this session (epochs 0..T of every network ball)."""

    def __init__(self, units: list[Unit], pending: list[Unit], config: SweepConfig) -> None:
        self.per_unit = config.epochs + 1
        self.total = len(units)
        self.done_before = self.total - len(pending)
        self.units_done = 0
        self.start = time.monotonic()
        self.epochs = 0  # ball epochs done in this session
        self.config = config

    def eta_seconds(self, unit_epoch: int) -> float | None:
        elapsed = time.monotonic() - self.start
        done = self.units_done * self.per_unit + unit_epoch
        remaining = (self.total - self.done_before - self.units_done) * self.per_unit - unit_epoch
        return elapsed / done * remaining if done and elapsed > 0 else None


def _describe(unit: Unit, config: SweepConfig) -> str:
    etas = config.etas[unit.eta_start:unit.eta_stop]
    eta = f"eta {etas[0]:g}" if len(etas) == 1 else f"eta {etas[0]:g}..{etas[-1]:g}"
    return f"{eta}, ICs {unit.ic_start}-{unit.ic_stop - 1}"


def tau_text(event: UnitProgress, config: SweepConfig) -> str:
    """The tau phase in words that count what they say: references that reached the target so far,
    and those still training (the rest ran out of the budget)."""
    reached_epoch = event.arrays["reached_epoch"]
    reached, total = int((reached_epoch >= 0).sum()), int(reached_epoch.size)
    text = f"tau: {reached}/{total} reached {config.target:g}"
    if event.phase == "tau" and event.active:
        return f"{text}, {event.active} training (epoch {event.epoch}/{config.tau_epochs})"
    return f"{text} within {config.tau_epochs} epochs"


class LogReporter:
    """Plain, periodic log lines (SLURM logs, pipes)."""

    def __init__(self, stream=None, every: float = LOG_EVERY_SECONDS) -> None:
        self.stream = stream or sys.stdout
        self.every = every
        self.compiling = False  # the first unit compiles the kernels first (set by the caller)
        self.last = 0.0
        self.clock: _Clock | None = None

    def _print(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"[{stamp}] {text}", file=self.stream, flush=True)

    def start(self, path: Path, units: list[Unit], pending: list[Unit], config: SweepConfig) -> None:
        self.clock = _Clock(units, pending, config)
        resumed = f", resuming: {len(units) - len(pending)} done" if len(pending) < len(units) else ""
        self._print(f"sweep {path}: {len(config.etas)} learning rates x {config.ics} ICs x "
                    f"{config.replicas + 1} networks, {len(units)} units{resumed}")
        self.last = time.monotonic()

    def progress(self, unit: Unit, event: UnitProgress) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        clock = self.clock
        if event.phase == "ball":
            rate = (clock.units_done * clock.per_unit + event.epoch) / max(1e-9, now - clock.start)
            self._print(f"unit {clock.done_before + clock.units_done + 1}/{clock.total} ({_describe(unit, clock.config)}) "
                        f"epoch {event.epoch}/{clock.config.epochs} | {rate:.2f} epochs/s | "
                        f"ETA {duration(clock.eta_seconds(event.epoch))}")
        else:
            self._print(f"unit {clock.done_before + clock.units_done + 1}/{clock.total} "
                        f"{tau_text(event, clock.config)}")

    def unit_done(self, unit: Unit) -> None:
        clock = self.clock
        clock.units_done += 1
        self._print(f"unit {clock.done_before + clock.units_done}/{clock.total} done ({_describe(unit, clock.config)}) | "
                    f"ETA {duration(clock.eta_seconds(0))}")

    def close(self) -> None:
        pass


class RichReporter:
    """Rich progress bars: the whole sweep and the current unit, epochs/s and ETA."""

    def __init__(self) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                             transient=False)
        self.clock: _Clock | None = None
        self.compiling = False  # the first unit compiles the kernels first (set by the caller)

    def start(self, path: Path, units: list[Unit], pending: list[Unit], config: SweepConfig) -> None:
        self.clock = _Clock(units, pending, config)
        self.bars.console.print(f"[bold]sweep[/] {path}: {len(config.etas)} learning rates x {config.ics} ICs x "
                                f"{config.replicas + 1} networks, {len(units)} units")
        self.overall = self.bars.add_task("all units", total=len(units), completed=len(units) - len(pending), rate="")
        first = "compiling kernels (first run only)" if self.compiling else "unit"
        self.current = self.bars.add_task(first, total=config.epochs + 1, rate="")
        self.bars.start()

    def progress(self, unit: Unit, event: UnitProgress) -> None:
        clock = self.clock
        elapsed = max(1e-9, time.monotonic() - clock.start)
        rate = (clock.units_done * clock.per_unit + min(event.epoch, clock.config.epochs)) / elapsed
        if event.phase == "ball":
            self.bars.update(self.current, description=_describe(unit, clock.config), completed=event.epoch + 1,
                             total=clock.config.epochs + 1, rate=f"{rate:.1f} ep/s")
        else:
            self.bars.update(self.current, description=tau_text(event, clock.config),
                             completed=event.epoch, total=clock.config.tau_epochs, rate="")

    def unit_done(self, unit: Unit) -> None:
        self.clock.units_done += 1
        self.bars.advance(self.overall)

    def close(self) -> None:
        self.bars.stop()
