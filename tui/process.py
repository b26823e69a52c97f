"""The sweep as a child process: ``python -m gdchaos run --headless``, stopped with SIGTERM, resumed by
starting it again (the runner continues the file where it stopped).

The child reads its config from a private temporary file; ``FILE.h5.toml`` beside the results is
written only once the run has accepted the output (:meth:`SweepProcess.confirm`), so a refused run
never replaces the config of the sweep that file belongs to."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from gdchaos.config import SweepConfig, from_dict

STOPPED_CODES = (130, -signal.SIGTERM)  # stopped cleanly, or before the runner took over SIGTERM
CHILD_NICENESS = 5  # the sweep yields the CPU to the app (and to the user's shell)


class SweepProcess:
    """One results file and the headless run that writes it (at most one child at a time)."""

    def __init__(self, config: SweepConfig, output: str | Path) -> None:
        self.output = Path(output).resolve()
        self.config = from_dict({"output": str(self.output)}, config)
        self.config_path = self.output.with_name(self.output.name + ".toml")
        self._child: subprocess.Popen | None = None
        self._stderr = None
        self._failure: str | None = None
        self._private_config: Path | None = None
        self.overwrite = False  # the next start replaces a results file of another sweep
        self.config_saved = False

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status of the last child; None while it runs or before the first start."""
        return None if self._child is None else self._child.poll()

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    def start(self) -> None:
        """Start (or resume) the run; its config goes to a private file until the run accepts the output."""
        if self.running:
            return
        self.output.parent.mkdir(parents=True, exist_ok=True)
        if self._private_config is None:
            handle, name = tempfile.mkstemp(prefix="gdchaos-tui-", suffix=".toml")
            with os.fdopen(handle, "w") as file:
                file.write(self.config.to_toml())
            self._private_config = Path(name)
        if self._stderr is not None:
            self._stderr.close()
        self._stderr, self._failure = tempfile.TemporaryFile(), None
        command = [sys.executable, "-m", "gdchaos", "run", "--headless", "--config", str(self._private_config),
                   "-o", str(self.output), "--quiet"] + (["--overwrite"] if self.overwrite else [])
        self.overwrite = False  # a resume continues the file this start made
        # own session: a run left going on purpose survives the terminal that started the app;
        # a lower priority (nice CHILD_NICENESS): on a busy machine keys still answer at once
        self._child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=self._stderr, start_new_session=True)
        lower_priority(self._child)

    def confirm(self, written: SweepConfig | None = None) -> bool:
        """Save the config as ``FILE.h5.toml`` once the run has accepted the output: it exited cleanly, or
        the file it writes (``written``: the config read from it) holds this sweep. True once saved."""
        if self.config_saved:
            return True
        accepted = self.returncode == 0 or (
            written is not None and written.identity() == self.config.identity() and self._child is not None)
        if accepted:
            temporary = self.config_path.with_name(self.config_path.name + ".part")
            temporary.write_text(self.config.to_toml())
            os.replace(temporary, self.config_path)
            self.config_saved = True
        return self.config_saved

    def close(self) -> None:
        """Remove the private config file once no child may still be reading it."""
        if self._private_config is not None and (self.config_saved or not self.running):
            self._private_config.unlink(missing_ok=True)
            self._private_config = None

    def stop(self) -> None:
        """Ask the run to stop: SIGTERM, which the runner treats like Ctrl-C (file stays resumable)."""
        if self.running:
            ask_to_stop(self._child)

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the child exits (call from a worker thread); its exit status."""
        if self._child is None:
            return None
        try:
            return self._child.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def failure(self) -> str | None:
        """What went wrong, one line, when the last child exited with an error."""
        code = self.returncode
        if code is None or code == 0 or code in STOPPED_CODES:
            return None
        if self._failure is None:  # read once: the child is gone, its stderr is complete
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace")
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            detail = lines[-1] if lines else "no message"
            self._failure = (detail.removeprefix("gdchaos: error: ") if code == 2
                             else f"run failed (exit {code}): {detail}")
        return self._failure


def lower_priority(child: subprocess.Popen) -> None:
    """Nice a child by ``CHILD_NICENESS`` below this process (POSIX; set from here: preexec_fn is unsafe
    with threads), so that keys still answer at once on a busy machine."""
    if hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, child.pid, min(os.getpriority(os.PRIO_PROCESS, 0) + CHILD_NICENESS, 19))
        except ProcessLookupError:  # already ended (e.g. a config error): nothing to lower
            pass


def ask_to_stop(child: subprocess.Popen) -> None:
    """SIGTERM to a child (the runner and find-lr treat it like Ctrl-C)."""
    try:
        child.send_signal(signal.SIGTERM)
    except ProcessLookupError:  # it ended (and was reaped by the waiting worker) meanwhile
        pass
