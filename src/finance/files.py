"""Durable, atomic file writes for the few files Finance keeps outside PostgreSQL: signing and
token-issuer keys, audit bundles and an auditor's state file.

Both writers put the bytes in a fresh temporary file in the target's directory (mkstemp: mode
0600 whatever the umask, a name no other writer uses), fsync it, and only then give it its name,
then fsync the directory so the name survives a crash. A reader therefore sees the old file or
the whole new one, never a torn write.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def publish_new_file(path: Path, data: bytes, *, mode: int) -> bool:
    """Create `path` holding `data` (with `mode`) unless it exists: True if this call created it,
    False if the name was already taken (by an earlier run or a racing writer), in which case
    the existing file is left exactly as it was. A hard link publishes the name, because unlike
    `rename` it never replaces an existing file. OSError on failure (EPERM or ENOTSUP where the
    file system has no hard links)."""
    temporary = _durable_temporary(path, data, mode)
    try:
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        fsync_directory(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def replace_file(path: Path, data: bytes, *, mode: int) -> None:
    """Replace (or create) `path` with `data`, atomically: readers see the old or the new bytes."""
    temporary = _durable_temporary(path, data, mode)
    try:
        os.replace(temporary, path)
        fsync_directory(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def fsync_directory(directory: Path) -> None:
    """Make the names in `directory` durable (a new or replaced entry survives a crash)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _durable_temporary(path: Path, data: bytes, mode: int) -> str:
    directory = path.parent if str(path.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the content is durable before any name points at it
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return temporary
