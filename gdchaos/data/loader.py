"""``load``: a dataset's arrays, from scikit-learn or from verified files in the data folder."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gdchaos.data import cache
from gdchaos.data.bundled import load_bundled
from gdchaos.data.checksum import verify
from gdchaos.data.cifar import read_cifar10
from gdchaos.data.idx import read_idx
from gdchaos.data.locations import dataset_dir
from gdchaos.data.registry import DatasetSpec, dataset_spec
from gdchaos.errors import DataError

Arrays = cache.Arrays


def load(name: str, data_dir: str | os.PathLike[str] | None = None) -> Arrays:
    """``(x_train, y_train, x_test, y_test)`` of dataset ``name``.

    Features are C-contiguous float64 of shape (n, features), images flattened and scaled to [0, 1]
    (iris keeps its raw measurements); labels are int64. Files are looked up in
    ``<data folder>/<name>/`` (see :mod:`gdchaos.data.locations`), checked against the manifest's
    checksums once, and their parsed arrays cached, so a second load is fast; a cache entry that
    fails its own checksums is rebuilt from those files (see :mod:`gdchaos.data.cache`). The
    scikit-learn datasets (iris, digits) ignore ``data_dir``; their split is cached too.
    """
    spec = dataset_spec(name)
    if spec.bundled:
        return _bundled(spec)
    paths = _present_files(spec, dataset_dir(name, data_dir))
    for role, path in paths.items():
        verify(path, spec.files[role], name)
    raw = cache.load_cached(spec)
    if raw is None:
        raw = _parse(spec, paths)
        cache.store(spec, raw)
    x_train, y_train, x_test, y_test = raw
    return _scaled(x_train, spec), _labels(y_train), _scaled(x_test, spec), _labels(y_test)


def check_present(name: str, data_dir: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`DataError` (naming the fetch command) when dataset ``name`` has files to fetch
    that are not in its data folder; cheap (file checks only, no checksums), for forms before a run."""
    spec = dataset_spec(name)
    if not spec.bundled:
        _present_files(spec, dataset_dir(name, data_dir))


def _bundled(spec: DatasetSpec) -> Arrays:
    """A scikit-learn dataset's split; from the cache after the first load, without importing scikit-learn."""
    cached = cache.load_cached(spec)
    if cached is not None:
        return tuple(np.array(array) for array in cached)
    arrays = load_bundled(spec)
    cache.store(spec, arrays)
    return arrays


def _present_files(spec: DatasetSpec, folder: Path) -> dict[str, Path]:
    paths = {role: folder / file.name for role, file in spec.files.items()}
    missing = [path.name for path in paths.values() if not path.is_file()]
    if len(missing) == len(paths):
        raise DataError(f"{spec.name} not found in {folder}; "
                        f"run 'gdchaos data fetch {spec.name}' or set GDCHAOS_DATA")
    if missing:
        raise DataError(f"{spec.name} is incomplete in {folder} (missing {', '.join(missing)}); "
                        f"run 'gdchaos data fetch {spec.name}'")
    return paths


def _parse(spec: DatasetSpec, paths: dict[str, Path]) -> Arrays:
    if spec.format == "idx":
        arrays = (read_idx(paths["train_images"], 3), read_idx(paths["train_labels"], 1),
                  read_idx(paths["test_images"], 3), read_idx(paths["test_labels"], 1))
    elif spec.format == "cifar10-python":
        arrays = read_cifar10(paths["archive"])
    else:
        raise DataError(f"{spec.name}: unknown dataset format {spec.format!r} in its manifest")
    x_train, y_train, x_test, y_test = arrays
    expected = cache.expected_shapes(spec)
    found = {"x_train": _flat_shape(x_train), "y_train": y_train.shape,
             "x_test": _flat_shape(x_test), "y_test": y_test.shape}
    if found != expected:
        raise DataError(f"{spec.name}: the files hold arrays of shapes {found}, expected {expected}")
    return (x_train.reshape(expected["x_train"]), y_train.astype(np.int64),
            x_test.reshape(expected["x_test"]), y_test.astype(np.int64))


def _flat_shape(images: np.ndarray) -> tuple[int, int]:
    return images.shape[0], int(np.prod(images.shape[1:]))


def _scaled(pixels: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    out = np.empty(pixels.shape, dtype=np.float64)
    np.divide(pixels, spec.scale, out=out)
    return out


def _labels(labels: np.ndarray) -> np.ndarray:
    return np.array(labels, dtype=np.int64)
