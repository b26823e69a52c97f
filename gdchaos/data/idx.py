"""The IDX format of MNIST-style files: a big-endian header, then unsigned bytes."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from gdchaos.errors import DataError

_UBYTE = 0x08


def parse_idx(data: bytes, ndim: int, source: str) -> np.ndarray:
    """The uint8 array stored in IDX bytes ``data`` (a read-only view), which must have ``ndim`` dims.

    The magic number is 0x0801 for labels (1-d) and 0x0803 for images (3-d); ``source`` names the
    file in error messages.
    """
    expected = (_UBYTE << 8) | ndim
    header = 4 + 4 * ndim
    if len(data) < 4:
        raise DataError(f"{source} is truncated: {len(data)} bytes, shorter than an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected:
        raise DataError(f"{source} is not an IDX file of {ndim}-d unsigned bytes "
                        f"(magic number 0x{magic:08x}, expected 0x{expected:08x})")
    if len(data) < header:
        raise DataError(f"{source} is truncated: {len(data)} bytes, shorter than its IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != size:
        problem = "truncated" if len(data) - header < size else "too long"
        raise DataError(f"{source} is {problem}: its header {dims} needs {size} bytes of data, "
                        f"it holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array in IDX file ``path`` (gunzipped first when its name ends in ``.gz``)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} is corrupted or truncated ({exc})") from None
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc})") from None
    return parse_idx(data, ndim, str(path))
