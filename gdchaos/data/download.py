"""``fetch``: download a dataset's files from its mirrors, verify them, and write them atomically.

One ``fetch`` has an overall time limit (``timeout``, default ``limits.FETCH_TIMEOUT_S``), so a
mirror that sends bytes slowly cannot hang it. The limit is checked whenever bytes arrive; a mirror
that sends nothing at all is given up after ``limits.READ_TIMEOUT_S`` (or the time left, when less),
so a call ends at most that long after its limit. Each file is downloaded into a hidden ``.part``
file in its folder, which is removed on any failure or interruption; the file takes its name only
once its checksum matches the manifest.
"""
from __future__ import annotations

import os
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from http.client import HTTPException
from pathlib import Path

from gdchaos.checks import check_positive
from gdchaos.data.checksum import matching_checksum, remember, verified_checksum
from gdchaos.data.limits import FETCH_TIMEOUT_S, READ_TIMEOUT_S
from gdchaos.data.locations import dataset_dir, remove_stale
from gdchaos.data.registry import FileSpec, dataset_spec
from gdchaos.errors import DataError

Progress = Callable[[str, int, int | None], None]
"""Called as ``progress(file_name, bytes_so_far, total_bytes_or_None)`` while downloading."""

_CHUNK = 1 << 16


class _TimeLimit(Exception):
    """The overall time limit passed during a download; the message says how far it got."""


def fetch(name: str, data_dir: str | os.PathLike[str] | None = None,
          mirrors: Sequence[str] | None = None, progress: Progress | None = None,
          timeout: float = FETCH_TIMEOUT_S) -> Path:
    """Download the files of dataset ``name`` into its folder and return that folder.

    Files already present with a matching checksum are kept. Each file is tried from each mirror in
    turn (``mirrors`` overrides the manifest's; any URL urllib opens, ``file://`` included), written
    to a temporary ``.part`` file in the same folder, verified, then moved into place. The whole
    call gives up after ``timeout`` seconds with a DataError; the temporary file is removed on any
    error or interruption (Ctrl-C included).
    """
    timeout = check_positive("timeout", timeout)
    deadline = time.monotonic() + timeout
    spec = dataset_spec(name)
    if spec.bundled:
        raise DataError(f"{name} ships with scikit-learn; there is nothing to fetch")
    folder = dataset_dir(name, data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder} ({exc.strerror or exc}); "
                        "pass --data-dir or set GDCHAOS_DATA to a writable folder") from None
    remove_stale(folder, ".*.part")
    for file in spec.files.values():
        target = folder / file.name
        if not (target.is_file() and verified_checksum(target, file)):
            urls = [mirror.rstrip("/") + "/" + file.name for mirror in (mirrors or spec.mirrors)]
            remember(target, _download(file, target, urls, progress, deadline, timeout))
    return folder


def _download(file: FileSpec, target: Path, urls: Sequence[str], progress: Progress | None,
              deadline: float, timeout: float) -> str:
    """Fetch ``file`` from the first of ``urls`` that serves it intact; its matching checksum."""
    if not urls:
        raise DataError(f"could not fetch {file.name}: its manifest lists no mirrors")
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise DataError(f"cannot write to {target.parent} ({exc.strerror or exc}); "
                        "pass --data-dir or set GDCHAOS_DATA to a writable folder") from None
    partial = Path(name)
    failures = []
    try:
        os.close(fd)
        for url in urls:
            try:
                _copy(url, partial, file.name, progress, deadline)
            except (_TimeLimit, OSError, HTTPException, ValueError) as exc:
                failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                if time.monotonic() >= deadline:
                    break
                continue
            checksum = matching_checksum(partial, file)
            if checksum is not None:
                partial.chmod(0o644)  # mkstemp makes it private
                os.replace(partial, target)
                return checksum
            failures.append(f"{url}: checksum mismatch (corrupted or truncated download)")
    finally:
        partial.unlink(missing_ok=True)  # gone already when the file was moved into place
    if time.monotonic() >= deadline:
        hint = f"retry with a longer time limit than {timeout:g} s (--timeout)"
    else:
        hint = f"retry later, or put the file into {target.parent} by hand"
    raise DataError(f"could not fetch {file.name}: {'; '.join(failures)}; {hint}")


def _copy(url: str, destination: Path, label: str, progress: Progress | None,
          deadline: float) -> None:
    """Write what ``url`` serves into ``destination``; _TimeLimit once ``deadline`` passes."""
    if progress is not None:
        progress(label, 0, None)  # shown while the mirror is connecting
    wait = _remaining(deadline, 0, None)
    with urllib.request.urlopen(url, timeout=min(READ_TIMEOUT_S, wait)) as response, \
            open(destination, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        if progress is not None:
            progress(label, done, total)  # shown while the first bytes are awaited
        read = getattr(response, "read1", response.read)  # read1: whatever has arrived
        while True:
            _remaining(deadline, done, total)
            chunk = read(_CHUNK)
            if not chunk:
                break
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(label, done, total)
        out.flush()
        os.fsync(out.fileno())


def _remaining(deadline: float, done: int, total: int | None) -> float:
    """Seconds left before ``deadline``; _TimeLimit, saying how far the download got, once none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        of = f" of {total:,}" if total is not None else ""
        raise _TimeLimit(f"time limit reached after {done:,}{of} bytes")
    return left
