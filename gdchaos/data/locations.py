"""Where datasets and caches live on disk.

Data folder: the explicit ``data_dir``, else ``$GDCHAOS_DATA``, else ``$XDG_CACHE_HOME/gdchaos``
(``~/.cache/gdchaos``); each dataset sits in a sub-folder named after it. Parsed arrays and checksum
records go to ``$GDCHAOS_CACHE``, else ``<user cache>/gdchaos/parsed``, so a read-only data folder works.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from gdchaos.data.limits import STALE_S


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "gdchaos"


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding one sub-folder per dataset."""
    chosen = data_dir if data_dir is not None else os.environ.get("GDCHAOS_DATA")
    return Path(chosen).expanduser() if chosen else _user_cache()


def dataset_dir(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the files of dataset ``name``."""
    return data_root(data_dir) / name


def cache_root() -> Path:
    """The writable folder for parsed arrays and checksum records."""
    chosen = os.environ.get("GDCHAOS_CACHE")
    return Path(chosen).expanduser() if chosen else _user_cache() / "parsed"


def remove_stale(folder: Path, pattern: str) -> None:
    """Remove the entries of ``folder`` matching ``pattern`` not modified for ``STALE_S`` seconds.

    They are temporary files or folders left by a process that was killed while writing; younger
    ones may belong to a process still at work and are kept.
    """
    cutoff = time.time() - STALE_S
    for entry in folder.glob(pattern):
        try:
            if entry.lstat().st_mtime >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        except OSError:
            pass  # gone already, or not ours to remove
