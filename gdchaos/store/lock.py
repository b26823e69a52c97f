"""The lock file that keeps a second writer away from a results file (``FILE.h5.lock``).

The lock file is opened without following symlinks and without truncation, so a symlink planted at
its path can neither redirect nor damage another file. Holding it means holding an ``flock`` on the
inode that the path names *now*: a lock on an inode that a finished owner has just unlinked does
not count, and the acquirer tries again. Only the holder removes the file, while still holding it.
"""
from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from gdchaos.errors import GdchaosError

SUFFIX = ".lock"
_ATTEMPTS = 5  # an owner unlinking between our open and our flock makes us retry, at most this often


class Lock:
    """An exclusive lock on ``path`` + ``.lock``; release it with :meth:`release`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, results: str | Path) -> "Lock":
        """Lock the results file ``results``, or fail with one line when another run holds it."""
        results = Path(results)
        path = results.with_name(results.name + SUFFIX)
        try:
            results.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GdchaosError(f"output: cannot write {results}: {exc.strerror or exc}") from None
        for _ in range(_ATTEMPTS):
            fd = _open_no_follow(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise GdchaosError(f"output: {results} is being written by another gdchaos run") from None
            if _names(path, fd):
                return cls(path, fd)
            os.close(fd)  # the previous owner unlinked it after our open: lock the new one
        raise GdchaosError(f"output: cannot lock {results}: its lock file keeps being replaced")

    def release(self) -> None:
        """Remove the lock file (only if it is still ours) and unlock."""
        if self._fd < 0:
            return
        if _names(self.path, self._fd):
            try:
                os.unlink(self.path)
            except OSError:
                pass
        os.close(self._fd)
        self._fd = -1


def _open_no_follow(path: Path) -> int:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = stat.S_IFREG
    except OSError as exc:
        raise GdchaosError(f"output: cannot create the lock file {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(mode):
        raise GdchaosError(f"output: the lock file {path} is a symlink; remove it")
    if not stat.S_ISREG(mode):
        raise GdchaosError(f"output: the lock file {path} is not a regular file; remove it")
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise GdchaosError(f"output: cannot create the lock file {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise GdchaosError(f"output: the lock file {path} is not a regular file; remove it")
    return fd


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the inode open as ``fd``."""
    try:
        now = os.lstat(path)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)
