"""CIFAR-10, python version: pickled batches read straight from ``cifar-10-python.tar.gz``."""
from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from gdchaos.errors import DataError

TRAIN_BATCHES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
_PIXELS = 3072

# The batches hold numpy arrays; nothing else may be rebuilt while unpickling.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def _batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
        pixels = np.ascontiguousarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:  # any malformed pickle: the message says which batch
        raise DataError(f"{source} is not a CIFAR-10 batch ({exc})") from None
    if pixels.ndim != 2 or pixels.shape[1] != _PIXELS or labels.shape != (len(pixels),):
        raise DataError(f"{source} holds data {pixels.shape} and labels {labels.shape}; "
                        f"expected (n, {_PIXELS}) and (n,)")
    return pixels, labels


def read_cifar10(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """uint8 ``x_train``, int64 ``y_train``, uint8 ``x_test``, int64 ``y_test`` from the tarball."""
    wanted = {*TRAIN_BATCHES, TEST_BATCH}
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:  # one pass: a gzip stream cannot seek back cheaply
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    handle = archive.extractfile(member)
                    batches[base] = _batch(handle.read(), f"{path}:{member.name}")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} is corrupted or truncated ({exc})") from None
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc})") from None
    missing = sorted(wanted - batches.keys())
    if missing:
        raise DataError(f"{path} lacks the CIFAR-10 batches {', '.join(missing)}")
    train = [batches[name] for name in TRAIN_BATCHES]
    x_test, y_test = batches[TEST_BATCH]
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
            x_test, y_test)
