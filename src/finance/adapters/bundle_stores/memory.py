"""An in-memory bundle store with the write-once rules of the real ones, for unit tests of the
export use case (a fake built on the real port)."""

from __future__ import annotations

import threading

from finance.services.bundle_store import (
    BUNDLE_SUFFIX,
    BundleConflict,
    BundleNotFound,
    StoredBundle,
    checked_name,
    sha256_hex,
)


class InMemoryBundleStore:
    def __init__(self) -> None:
        self._bundles: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, name: str, data: bytes) -> StoredBundle:
        location = f"memory:{checked_name(name)}{BUNDLE_SUFFIX}"
        data = bytes(data)
        with self._lock:
            existing = self._bundles.get(name)
            if existing is None:
                self._bundles[name] = data
        if existing is not None and existing != data:
            raise BundleConflict(f"{location} already holds a different bundle")
        return StoredBundle(
            location, sha256_hex(data), len(data), already_stored=existing is not None
        )

    def get(self, name: str) -> bytes:
        try:
            return self._bundles[checked_name(name)]
        except KeyError:
            raise BundleNotFound(f"no bundle {name}{BUNDLE_SUFFIX}") from None
