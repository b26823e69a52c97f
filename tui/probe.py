"""find-lr as a child process: ``python -m gdchaos find-lr -o FILE`` for the setup screen's config, its
progress lines read from stderr, its result from FILE (:func:`gdchaos.findlr.stored_result`), stopped
with SIGTERM (the scan's file stays resumable). A child, not a thread: the Numba kernels would hold the
interpreter, and a stop must work in every phase (the sharpness, the divergence ladder, the scan)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gdchaos.config import SweepConfig
from gdchaos.findlr import FindLRResult, stored_result
from gdchaos_tui.process import ask_to_stop, lower_priority

STAMP = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] ")  # the log reporter's time stamp


class ProbeProcess:
    """One find-lr probe of ``config`` into ``output`` (at most one child)."""

    def __init__(self, config: SweepConfig, output: str | Path, *, method: str, ics: int, epochs: int) -> None:
        self.config = config
        self.output = Path(output).resolve()
        self.options = ["--method", method, "--ics", str(ics), "--epochs", str(epochs)]
        self._child: subprocess.Popen | None = None
        self._config_path: Path | None = None
        self._last = ""
        self.stopped = False  # stop() was asked for

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.poll() is None

    def start(self) -> None:
        """Start the child; its config goes to a private temporary file."""
        handle, name = tempfile.mkstemp(prefix="gdchaos-tui-find-lr-", suffix=".toml")
        with os.fdopen(handle, "w") as file:
            file.write(self.config.to_toml())
        self._config_path = Path(name)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "gdchaos", "find-lr", "--config", name, *self.options,
                   "-o", str(self.output)]
        self._child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        lower_priority(self._child)  # as the sweep's child

    def lines(self) -> Iterator[str]:
        """The child's progress lines (without time stamps) until it exits (call from a worker thread)."""
        assert self._child is not None and self._child.stderr is not None
        for line in self._child.stderr:
            line = STAMP.sub("", line.strip())
            if line:
                self._last = line
                yield line

    def wait(self) -> int:
        """Block until the child exits; its exit status. Removes the private config."""
        assert self._child is not None
        code = self._child.wait()
        if self._config_path is not None:
            self._config_path.unlink(missing_ok=True)
            self._config_path = None
        return code

    def stop(self) -> None:
        """Ask the probe to stop (SIGTERM)."""
        self.stopped = True
        if self.running:
            ask_to_stop(self._child)

    def failure(self) -> str | None:
        """What went wrong, one line, when the child exited with an error (None after a stop)."""
        code = None if self._child is None else self._child.poll()
        if code in (None, 0) or self.stopped:
            return None
        detail = self._last or "no message"
        return detail.removeprefix("gdchaos: error: ") if code == 2 else f"find-lr failed (exit {code}): {detail}"

    def result(self) -> FindLRResult:
        """The result the child stored in its output."""
        return stored_result(self.output)
