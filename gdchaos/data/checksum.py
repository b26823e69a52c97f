"""Checksums: of dataset files (verified once, then remembered by size and mtime) and of arrays."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gdchaos.data.locations import cache_root
from gdchaos.data.registry import FileSpec
from gdchaos.errors import DataError

_CHUNK = 1 << 20


class _ContentHash:
    """SHA256 of the decompressed content of a gzip stream (one or more members) fed in chunks."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._gunzip = zlib.decompressobj(wbits=31)
        self._intact = True

    def update(self, chunk: bytes) -> None:
        while chunk and self._intact:
            try:
                self._digest.update(self._gunzip.decompress(chunk))
            except zlib.error:
                self._intact = False
                return
            chunk = self._gunzip.unused_data if self._gunzip.eof else b""
            if chunk:
                self._gunzip = zlib.decompressobj(wbits=31)

    def hexdigest(self) -> str | None:
        """The digest; None when the stream is corrupted or ends early."""
        return self._digest.hexdigest() if self._intact and self._gunzip.eof else None


def file_digests(path: Path, kinds: Iterable[str]) -> dict[str, str | None]:
    """Hex digests of ``path`` for each kind in ``md5``, ``sha256`` and ``sha256_decompressed``.

    ``sha256_decompressed`` hashes the gunzipped content; it is None when the gzip stream is corrupted
    or ends early.
    """
    makers = {"md5": hashlib.md5, "sha256": hashlib.sha256, "sha256_decompressed": _ContentHash}
    digests = {kind: makers[kind]() for kind in kinds}
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            for digest in digests.values():
                digest.update(chunk)
    return {kind: digest.hexdigest() for kind, digest in digests.items()}


def matching_checksum(path: Path, spec: FileSpec) -> str | None:
    """The first of the file's declared checksums that ``path`` matches, as ``kind:hex``; else None."""
    digests = file_digests(path, spec.checksums)
    for kind, expected in spec.checksums.items():
        if digests[kind] == expected:
            return f"{kind}:{expected}"
    return None


def _record_path(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return cache_root() / "verified" / f"{key}.json"


def _stamp(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def remember(path: Path, checksum: str) -> None:
    """Record that ``path``, as it is now, matched ``checksum``; silently skipped when not writable."""
    record = _record_path(path)
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=record.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({**_stamp(path), "checksum": checksum}, handle)
        os.replace(tmp, record)
    except OSError:
        pass
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone when the replace succeeded


def _recalled(path: Path, spec: FileSpec) -> str | None:
    try:
        record = json.loads(_record_path(path).read_text())
    except (OSError, ValueError):
        return None
    checksum = str(record.pop("checksum", ""))
    kind, _, value = checksum.partition(":")
    return checksum if record == _stamp(path) and spec.checksums.get(kind) == value else None


def verified_checksum(path: Path, spec: FileSpec) -> str | None:
    """The declared checksum ``path`` matches, as ``kind:hex``, or None.

    The answer is remembered: while the file keeps its size and mtime, it is not hashed again.
    """
    checksum = _recalled(path, spec)
    if checksum is None:
        checksum = matching_checksum(path, spec)
        if checksum is not None:
            remember(path, checksum)
    return checksum


def verify(path: Path, spec: FileSpec, dataset: str) -> None:
    """DataError unless ``path`` matches one of its manifest checksums (see ``verified_checksum``)."""
    try:
        checksum = verified_checksum(path, spec)
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc})") from None
    if checksum is None:
        raise DataError(f"{path} is corrupted or truncated (checksum mismatch); "
                        f"delete it and run 'gdchaos data fetch {dataset}'")


def fingerprint(*arrays: np.ndarray) -> str:
    """A dataset's fingerprint: 16 hex digits naming the exact content of ``arrays``.

    Results files store ``fingerprint(*load(name))`` (x_train, y_train, x_test, y_test, in that
    order) as ``dataset_fingerprint``; equal fingerprints mean the same data, bit for bit. The
    definition is fixed, so fingerprints compare across versions and machines: the first 16 hex
    digits of the SHA256 of, for each array in turn, ``f"{dtype.str}{shape};"`` in ASCII (e.g.
    ``<f8(120, 4);``) followed by the array's bytes in C order.
    """
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return digest.hexdigest()[:16]
