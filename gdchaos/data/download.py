"""``fetch``: download a dataset's files from its mirrors, verify them, and write them atomically."""
from __future__ import annotations

import os
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from http.client import HTTPException
from pathlib import Path

from gdchaos.data.checksum import matching_checksum, remember, verified_checksum
from gdchaos.data.locations import dataset_dir
from gdchaos.data.registry import FileSpec, dataset_spec
from gdchaos.errors import DataError

Progress = Callable[[str, int, int | None], None]
"""Called as ``progress(file_name, bytes_so_far, total_bytes_or_None)`` while downloading."""

_CHUNK = 1 << 16
_TIMEOUT_S = 60


def fetch(name: str, data_dir: str | os.PathLike[str] | None = None,
          mirrors: Sequence[str] | None = None, progress: Progress | None = None) -> Path:
    """Download the files of dataset ``name`` into its folder and return that folder.

    Files already present with a matching checksum are kept. Each file is tried from each mirror in
    turn (``mirrors`` overrides the manifest's; any URL urllib opens, ``file://`` included), written
    to a temporary file in the same folder, verified, then moved into place.
    """
    spec = dataset_spec(name)
    if spec.bundled:
        raise DataError(f"{name} ships with scikit-learn; there is nothing to fetch")
    folder = dataset_dir(name, data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder} ({exc.strerror or exc}); "
                        "pass --data-dir or set GDCHAOS_DATA to a writable folder") from None
    for file in spec.files.values():
        target = folder / file.name
        if not (target.is_file() and verified_checksum(target, file)):
            remember(target, _download(file, target, mirrors or spec.mirrors, progress))
    return folder


def _download(file: FileSpec, target: Path, mirrors: Sequence[str],
              progress: Progress | None) -> str:
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise DataError(f"cannot write to {target.parent} ({exc.strerror or exc}); "
                        "pass --data-dir or set GDCHAOS_DATA to a writable folder") from None
    os.close(fd)
    partial = Path(name)
    failures = []
    try:
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + file.name
            try:
                _copy(url, partial, file.name, progress)
            except (OSError, HTTPException, ValueError) as exc:
                failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
                continue
            checksum = matching_checksum(partial, file)
            if checksum is not None:
                partial.chmod(0o644)  # mkstemp makes it private
                os.replace(partial, target)
                return checksum
            failures.append(f"{url}: checksum mismatch (corrupted or truncated download)")
    finally:
        partial.unlink(missing_ok=True)
    raise DataError(f"could not fetch {file.name}: {'; '.join(failures) or 'no mirrors'}")


def _copy(url: str, destination: Path, label: str, progress: Progress | None) -> None:
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, \
            open(destination, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(label, done, total)
