"""Rewrite a results file of an older format version as the current one, in place (``gdchaos upgrade``).

The new file is built aside with the current layout (:func:`gdchaos.store.format.build`: every axis
named, every dataset labelled), every dataset of the old file is copied into it chunk by chunk, read
back and compared byte for byte, and only then renamed over the old one (``os.replace``): the path
always names a complete file, the old one or the new one. Holding the lock file keeps a running
writer's file untouched; a file whose writer was killed is read as it is (units in flight stay
pending). Analysis fields an older gdchaos did not store are computed by the refit policy.
"""
from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import h5py

from gdchaos.analysis.fields import FIT_FIELDS, SUMMARY_FIELDS
from gdchaos.errors import GdchaosError
from gdchaos.store.analysis import analyse_file
from gdchaos.store.format import FORMAT, FORMAT_VERSION, Spec, aside, build
from gdchaos.store.lock import Lock
from gdchaos.store.reader import open_handle
from gdchaos.store.verify import UntrustedFile, check_size, check_structure, readable


def upgrade(path: str | Path) -> int:
    """Rewrite the results file ``path`` as format version :data:`FORMAT_VERSION`; returns its old version
    (the file is left as it is when it has the current version already)."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise GdchaosError(f"upgrade: {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise GdchaosError(f"upgrade: {path} is {'a symlink' if stat.S_ISLNK(mode) else 'not a regular file'}; "
                           "upgrade the results file itself")
    try:
        lock = Lock.acquire(path)
    except GdchaosError as exc:
        raise GdchaosError(f"upgrade: {str(exc).removeprefix('output: ')}") from None
    try:
        try:
            check_size(path)
            source = open_handle(path)
        except (OSError, RuntimeError):
            raise GdchaosError(f"upgrade: {path} is not a readable HDF5 file") from None
        with source:
            if source.attrs.get("format") != FORMAT:
                raise GdchaosError(f"upgrade: {path} is not a gdchaos results file")
            version = int(source.attrs.get("format_version", 0))
            if version > FORMAT_VERSION:
                raise GdchaosError(f"upgrade: {path} has format version {version}, newer than this gdchaos "
                                   f"writes ({FORMAT_VERSION}); upgrade gdchaos")
            if version == FORMAT_VERSION:
                return version
            specs = check_structure(source, path, complete=False)
            _rewrite(source, path, specs)
        return version
    finally:
        lock.release()


def _rewrite(source: h5py.File, path: Path, specs: dict[str, Spec]) -> None:
    attrs = {**source.attrs, "format_version": FORMAT_VERSION,
             "upgraded": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    copied = [name for name, spec in specs.items() if name in source and not spec.is_coordinate(name)]
    temporary = aside(path)
    try:
        build(temporary, specs, attrs, json.loads(source.attrs["layout"]))
        with h5py.File(temporary, "r+", libver="latest", locking=False) as target:
            with readable(path):
                for name in copied:
                    for block in target[name].iter_chunks():
                        target[name][block] = source[name][block]
                if not all(f"{group}/{name}" in source for group, fields in (("summary", SUMMARY_FIELDS),
                                                                             ("fit", FIT_FIELDS))
                           for name in fields):
                    _store_analysis(source, target)
            target.flush()
            os.fsync(target.id.get_vfd_handle())
        with h5py.File(temporary, "r", libver="latest", locking=False) as target:
            check_structure(target, temporary)
            with readable(path):
                for name in copied:
                    for block in target[name].iter_chunks():
                        if target[name][block].tobytes() != source[name][block].tobytes():
                            raise UntrustedFile(f"upgrade: {name} of {path} did not copy; {path} is unchanged")
        os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _store_analysis(source: h5py.File, target: h5py.File) -> None:
    """The summary and fit fields of a file from an older gdchaos that lacks some (refit policy)."""
    analysis = analyse_file(source)
    for group, fields in (("summary", analysis.summary), ("fit", analysis.fits)):
        for name, values in fields.items():
            target[f"{group}/{name}"][...] = values
