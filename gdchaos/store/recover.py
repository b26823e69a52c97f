"""Reopen an HDF5 file whose SWMR writer was killed (what ``h5clear -s -i`` does).

A writer in SWMR mode marks the superblock "open for write"; if it dies (SIGKILL, power loss),
HDF5 refuses to open the file for writing again. The data themselves are consistent (SWMR orders
its metadata writes for concurrent readers), so clearing the status flags is enough. Superblock
versions 2 and 3 (``libver="latest"``) are laid out as::

    signature (8) | version (1) | sizeof offsets (1) | sizeof lengths (1) | status flags (1)
    | base address | extension address | end-of-file address | root object header (O bytes each)
    | checksum (4: Jenkins lookup3 of everything before it)

We clear the flags, raise the stored end-of-file address to the real file size (so that nothing
written past the last recorded address is ever overwritten) and rewrite the checksum.
"""
from __future__ import annotations

import os
import struct

SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MASK = 0xFFFFFFFF


def _rotate(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & _MASK; a ^= _rotate(c, 4); c = (c + b) & _MASK
    b = (b - a) & _MASK; b ^= _rotate(a, 6); a = (a + c) & _MASK
    c = (c - b) & _MASK; c ^= _rotate(b, 8); b = (b + a) & _MASK
    a = (a - c) & _MASK; a ^= _rotate(c, 16); c = (c + b) & _MASK
    b = (b - a) & _MASK; b ^= _rotate(a, 19); a = (a + c) & _MASK
    c = (c - b) & _MASK; c ^= _rotate(b, 4); b = (b + a) & _MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c ^= b; c = (c - _rotate(b, 14)) & _MASK
    a ^= c; a = (a - _rotate(c, 11)) & _MASK
    b ^= a; b = (b - _rotate(a, 25)) & _MASK
    c ^= b; c = (c - _rotate(b, 16)) & _MASK
    a ^= c; a = (a - _rotate(c, 4)) & _MASK
    b ^= a; b = (b - _rotate(a, 14)) & _MASK
    c ^= b; c = (c - _rotate(b, 24)) & _MASK
    return c


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the checksum HDF5 uses for its metadata."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    position = 0
    while length > 12:
        x, y, z = struct.unpack_from("<III", data, position)
        a, b, c = _mix((a + x) & _MASK, (b + y) & _MASK, (c + z) & _MASK)
        position += 12
        length -= 12
    if length == 0:
        return c
    tail = data[position:] + bytes(12 - length)
    x, y, z = struct.unpack("<III", tail)
    return _final((a + x) & _MASK, (b + y) & _MASK, (c + z) & _MASK)


def _superblock(handle) -> tuple[bytes, int] | None:
    """The superblock (version 2 or 3) before its checksum, and the size of its addresses."""
    head = handle.read(12)
    if len(head) < 12 or head[:8] != SIGNATURE or head[8] not in (2, 3):
        return None
    offset_size = head[9]
    body = head + handle.read(4 * offset_size)
    stored = handle.read(4)
    if len(stored) < 4 or lookup3(body) != struct.unpack("<I", stored)[0]:
        return None
    return body, offset_size


def stored_end_of_file(path: str | os.PathLike) -> int | None:
    """The end-of-file address of a cleanly closed file (None: open for write, or not a version 2/3 superblock).

    While a writer has the file open (or was killed), HDF5 may have reserved space past what it has
    written yet, so only a closed file's address says how long the file must be.
    """
    with open(path, "rb") as handle:
        found = _superblock(handle)
    if found is None or found[0][11] != 0:
        return None
    body, offset_size = found
    eof_position = 12 + 2 * offset_size
    return int.from_bytes(body[eof_position:eof_position + offset_size], "little")


def open_for_write(path: str | os.PathLike) -> bool:
    """Whether the superblock says a writer has the file open (or was killed with it open).

    Files without a version 2/3 superblock count as open: only those can be read in SWMR mode.
    """
    with open(path, "rb") as handle:
        found = _superblock(handle)
    return found is None or found[0][11] != 0


def clear_status_flags(path: str | os.PathLike) -> bool:
    """Clear the "open for write" flags of a file left by a killed writer; True if it changed."""
    with open(path, "r+b") as handle:
        found = _superblock(handle)
        if found is None or found[0][11] == 0:
            return False
        body, offset_size = found
        eof_position = 12 + 2 * offset_size
        stored_eof = int.from_bytes(body[eof_position:eof_position + offset_size], "little")
        real_eof = os.fstat(handle.fileno()).st_size
        patched = bytearray(body)
        patched[11] = 0
        patched[eof_position:eof_position + offset_size] = max(stored_eof, real_eof).to_bytes(
            offset_size, "little")
        handle.seek(0)
        handle.write(bytes(patched) + struct.pack("<I", lookup3(bytes(patched))))
    return True
