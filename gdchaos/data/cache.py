"""Parsed arrays saved as ``.npy`` files so that a dataset loads fast the second time.

The folder is ``<cache root>/<name>-<key>``, the key hashing the manifest's checksums: the files were
verified against them, so equal keys mean equal content. Datasets bundled with scikit-learn cache
their split (importing scikit-learn takes seconds); their key adds how the split is made and the
scikit-learn version.

The folder also holds ``sha256.json``, the SHA256 of each ``.npy`` file. A load reads each file
whole and checks it first: a damaged, truncated or unreadable file makes the entry count as absent,
so the caller parses the source files again and stores a new entry. An entry is written in a
temporary folder next to it and renamed into place, so a killed process never leaves half of one.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from gdchaos.data.checksum import file_digests
from gdchaos.data.locations import cache_root, remove_stale
from gdchaos.data.registry import DatasetSpec

PARTS: tuple[str, ...] = ("x_train", "y_train", "x_test", "y_test")
SUMS = "sha256.json"
"""The file of a cache folder mapping each ``.npy`` file's name to its SHA256."""
_VERSION = 1  # bump when the parsers' output changes

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class _Damaged(Exception):
    """A cache entry that is present but fails its checksums; the message says which file and how."""


def cache_dir(spec: DatasetSpec) -> Path:
    """The folder holding the parsed arrays of ``spec``."""
    checksums = {role: file.checksums for role, file in sorted(spec.files.items())}
    source = [_VERSION, spec.format, checksums]
    if spec.bundled:
        source += [spec.loader, spec.test, spec.split_seed, spec.scale, _sklearn_version()]
    text = json.dumps(source, sort_keys=True)
    return cache_root() / f"{spec.name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _sklearn_version() -> str | None:
    """The installed scikit-learn's version, read without importing it."""
    try:
        return metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        return None


def expected_shapes(spec: DatasetSpec) -> dict[str, tuple[int, ...]]:
    """The shape of each part of ``spec``'s arrays: features flattened, labels 1-d."""
    return {"x_train": (spec.train, spec.features), "y_train": (spec.train,),
            "x_test": (spec.test, spec.features), "y_test": (spec.test,)}


def load_cached(spec: DatasetSpec) -> Arrays | None:
    """The cached arrays, checked against their recorded SHA256 and shapes; None when absent or damaged.

    A damaged entry (a changed byte, a truncated or unreadable file) prints one notice line on
    stderr; the caller then rebuilds it with ``store``.
    """
    folder = cache_dir(spec)
    try:
        sums = _read_sums(folder)
        if sums is None:
            return None
        return tuple(_read_part(folder, part, sums, shape)
                     for part, shape in expected_shapes(spec).items())
    except _Damaged as damage:
        print(f"gdchaos: note: the cached arrays of {spec.name} in {folder} are damaged ({damage}); "
              "rebuilding them from the verified source files", file=sys.stderr)
        return None


def _read_sums(folder: Path) -> dict[str, str] | None:
    """The recorded checksums; None when there is no entry (or one from before checksums)."""
    try:
        text = (folder / SUMS).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Damaged(f"{SUMS}: {exc.strerror or exc}") from None
    try:
        sums = json.loads(text)
    except ValueError:
        raise _Damaged(f"{SUMS} is not valid JSON") from None
    if not isinstance(sums, dict) or set(sums) != {f"{part}.npy" for part in PARTS}:
        raise _Damaged(f"{SUMS} does not list the files {', '.join(PARTS)}")
    return sums


def _read_part(folder: Path, part: str, sums: dict[str, str], shape: tuple[int, ...]) -> np.ndarray:
    """The array in ``<part>.npy`` (read-only), read whole and checked before it is parsed."""
    name = f"{part}.npy"
    try:
        data = (folder / name).read_bytes()
    except OSError as exc:
        raise _Damaged(f"{name}: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != sums[name]:
        raise _Damaged(f"{name}: checksum mismatch")
    array = _npy_view(data)  # a view: no second copy of a large array
    if array is None or array.shape != shape or array.dtype.kind not in "uif":
        found = "no array" if array is None else f"{array.dtype} {array.shape}"
        raise _Damaged(f"{name} holds {found}, expected numbers of shape {shape}")
    return array


def _npy_view(data: bytes) -> np.ndarray | None:
    """The C-ordered array that ``.npy`` bytes hold, as a read-only view of them; None if malformed."""
    stream = io.BytesIO(data)
    headers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    try:
        shape, fortran_order, dtype = headers[np.lib.format.read_magic(stream)](stream)
        if fortran_order or dtype.hasobject:
            return None
        return np.frombuffer(data, dtype=dtype, offset=stream.tell()).reshape(shape)
    except (KeyError, TypeError, ValueError):  # unknown version, bad header, size not the shape
        return None


def store(spec: DatasetSpec, arrays: Arrays) -> None:
    """Save ``arrays`` and their checksums for later loads; skipped when the cache is not writable.

    The entry is written in a temporary folder beside its place, then renamed into place (an
    atomic step); a damaged entry there is moved aside first.
    """
    folder = cache_dir(spec)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(folder.parent, f".{folder.name}.*")
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    except OSError:
        return
    try:
        sums = {}
        for part, array in zip(PARTS, arrays):
            path = staging / f"{part}.npy"
            np.save(path, array, allow_pickle=False)
            sums[path.name] = file_digests(path, ["sha256"])["sha256"]
        (staging / SUMS).write_text(json.dumps(sums, indent=1, sort_keys=True))
        _move_aside(folder)
        staging.rename(folder)  # atomic; fails when another process got there first
    except OSError:
        pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_aside(folder: Path) -> None:
    """Remove an earlier entry at ``folder`` by renaming it away first, so no reader sees it half gone."""
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    if not folder.exists():
        return
    aside = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        folder.replace(aside)
    finally:
        shutil.rmtree(aside, ignore_errors=True)
