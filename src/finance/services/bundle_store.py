"""The port audit bundles are written through (docs/operations.md, "Audit export store").

A bundle store is write-once: a name, once stored, keeps its bytes for the store's retention
period. Putting the same name again with identical bytes is the normal outcome of re-running an
export (exports are deterministic), so it is reported, not refused; putting other bytes under a
stored name is refused with `BundleConflict`, whoever wins a race.

Implementations: `finance.adapters.bundle_stores` (a local directory, S3 with Object Lock, and an
in-memory store for tests), chosen by `open_bundle_store(settings)`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final, Protocol

# A bundle name from finance.proofs.bundle.bundle_name, or anything as plain: it becomes a file
# name and an object key, so no separators, no leading dot, no upper case.
BUNDLE_NAME_PATTERN: Final = r"[a-z0-9][a-z0-9._-]{0,199}"
_BUNDLE_NAME_RE: Final = re.compile(BUNDLE_NAME_PATTERN)
BUNDLE_SUFFIX: Final = ".tar"


class BundleStoreError(Exception):
    """The store could not be used or did not keep its promise (unreachable, misconfigured, a
    stored object without its lock). The cause is chained."""


class BundleConflict(BundleStoreError):
    """Different bytes are already stored under this name; the stored bundle was left alone."""


class BundleNotFound(BundleStoreError):
    """No bundle is stored under this name."""


@dataclass(frozen=True)
class StoredBundle:
    """Where a bundle went. `location` is what `ledger_proofs` records: a file path, or an
    `s3://bucket/key?versionId=...` URL naming the exact object version."""

    location: str
    sha256: str  # hex, of the whole tar
    size: int
    already_stored: bool  # True when identical bytes were stored under this name before


class BundleStore(Protocol):
    def put(self, name: str, data: bytes) -> StoredBundle:
        """Store `data` as `<name>.tar`, never replacing what is there (see the module doc)."""
        ...

    def get(self, name: str) -> bytes:
        """The stored bytes, for re-verification; BundleNotFound if there are none."""
        ...


def checked_name(name: str) -> str:
    """`name` if it can be a bundle's file name and object key; ValueError otherwise."""
    if not isinstance(name, str) or not _BUNDLE_NAME_RE.fullmatch(name):
        raise ValueError(f"bundle name {name!r} does not match {BUNDLE_NAME_PATTERN}")
    return name


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
