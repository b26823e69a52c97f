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


def clear_status_flags(path: str | os.PathLike) -> bool:
    """Clear the "open for write" flags of a file left by a killed writer; True if it changed."""
    with open(path, "r+b") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:8] != SIGNATURE or head[8] not in (2, 3):
            return False
        offset_size = head[9]
        body = head + handle.read(4 * offset_size)
        (stored_checksum,) = struct.unpack("<I", handle.read(4))
        if lookup3(body) != stored_checksum or head[11] == 0:
            return False
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
