"""Audit bundles in a local directory (default `<data_dir>/exports`, FINANCE_EXPORT_DIR), written
once and made read-only (docs/operations.md, "Audit export store").

A bundle is written to a temporary file in the same directory, flushed to disk, made mode 0444,
and published under its name with `os.link`, which fails if the name exists: an existing bundle
is never replaced, even by a concurrent writer, and no reader ever sees a half-written one (an
`open(..., "x")` on the final name would publish the file before its bytes). `os.replace` or
`rename` would silently overwrite. The directory is fsynced so the new name survives a crash.

Read-only files and no-replace links stop accidents and racing exports, not an administrator:
for tamper resistance against the host itself use the S3 store with Object Lock.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Final

from finance.files import publish_new_file
from finance.services.bundle_store import (
    BUNDLE_SUFFIX,
    BundleConflict,
    BundleNotFound,
    BundleStoreError,
    StoredBundle,
    checked_name,
    sha256_hex,
)

FILE_MODE: Final = 0o444
DIRECTORY_MODE: Final = 0o750
_READ_CHUNK_BYTES: Final = 1024 * 1024


class LocalBundleStore:
    """Bundles as `<directory>/<name>.tar`. The directory is created if missing."""

    def __init__(self, directory: Path) -> None:
        self._directory = Path(directory)
        try:
            self._directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise BundleStoreError(
                f"cannot create the export directory {self._directory}: {exc.strerror}"
            ) from exc
        if not os.access(self._directory, os.W_OK | os.X_OK):
            raise BundleStoreError(f"the export directory {self._directory} is not writable")

    @property
    def directory(self) -> Path:
        return self._directory

    def path_of(self, name: str) -> Path:
        return self._directory / f"{checked_name(name)}{BUNDLE_SUFFIX}"

    def put(self, name: str, data: bytes) -> StoredBundle:
        target = self.path_of(name)
        digest = sha256_hex(data)
        if target.exists():
            return self._compare(target, digest, len(data))
        try:
            created = publish_new_file(target, data, mode=FILE_MODE)
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise BundleStoreError(
                    f"the file system of {self._directory} does not support hard links, which "
                    "the export store needs to publish a bundle without ever replacing one"
                ) from exc
            raise BundleStoreError(f"cannot write {target}: {exc.strerror}") from exc
        if not created:
            # Another writer published this name between our check and our link.
            return self._compare(target, digest, len(data))
        return StoredBundle(str(target), digest, len(data), already_stored=False)

    def get(self, name: str) -> bytes:
        target = self.path_of(name)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            raise BundleNotFound(f"no bundle {target}") from None
        except OSError as exc:
            raise BundleStoreError(f"cannot read {target}: {exc.strerror}") from exc

    def _compare(self, target: Path, digest: str, size: int) -> StoredBundle:
        """An identical stored bundle is success (exports are deterministic); another is not."""
        try:
            stored_digest, stored_size = _file_digest(target)
        except OSError as exc:
            raise BundleStoreError(f"cannot read the existing {target}: {exc.strerror}") from exc
        if (stored_digest, stored_size) != (digest, size):
            raise BundleConflict(
                f"{target} already holds a different bundle (sha256 {stored_digest}, "
                f"{stored_size} bytes); it was left unchanged"
            )
        return StoredBundle(str(target), digest, size, already_stored=True)


def _file_digest(path: Path) -> tuple[str, int]:
    sha256 = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK_BYTES):
            sha256.update(chunk)
            size += len(chunk)
    return sha256.hexdigest(), size
