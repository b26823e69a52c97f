"""Where datasets and caches live on disk.

Data folder: the explicit ``data_dir``, else ``$GDCHAOS_DATA``, else ``$XDG_CACHE_HOME/gdchaos``
(``~/.cache/gdchaos``); each dataset sits in a sub-folder named after it. Parsed arrays and checksum
records go to ``$GDCHAOS_CACHE``, else ``<user cache>/gdchaos/parsed``, so a read-only data folder works.
"""
from __future__ import annotations

import os
from pathlib import Path


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
