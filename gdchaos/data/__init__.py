"""The data layer: datasets by name, as float64 features and int64 labels.

``load(name, data_dir=None)`` returns ``(x_train, y_train, x_test, y_test)``; ``names()`` lists the
datasets; ``fetch(name)`` downloads one; ``fingerprint(*arrays)`` is the short hash results files store.
Datasets are described by the TOML manifests in ``datasets/``. The numeric parts are imported on first
use so that importing this package (as the command line does) stays cheap.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gdchaos.data.locations import cache_root, data_root, dataset_dir
from gdchaos.data.registry import DatasetSpec, dataset_spec, names

if TYPE_CHECKING:
    from gdchaos.data.checksum import fingerprint
    from gdchaos.data.download import fetch
    from gdchaos.data.loader import check_present, load

_LAZY = {"load": "gdchaos.data.loader", "check_present": "gdchaos.data.loader", "fetch": "gdchaos.data.download",
         "fingerprint": "gdchaos.data.checksum"}

__all__ = ["DatasetSpec", "cache_root", "check_present", "data_root", "dataset_dir", "dataset_spec", "fetch",
           "fingerprint", "load", "names"]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
