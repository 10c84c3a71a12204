"""The local-directory bundle store: files written once, read-only, never replaced, even when two
writers race for one name. (The tests run as whatever user CI has, root included, so read-only
is checked on the mode bits: root can write through 0444.)"""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from finance.adapters.bundle_stores.local import LocalBundleStore
from finance.adapters.bundle_stores.memory import InMemoryBundleStore
from finance.services.bundle_store import (
    BundleConflict,
    BundleNotFound,
    BundleStore,
    BundleStoreError,
    StoredBundle,
    sha256_hex,
)

NAME = "bundle-acme-00000000100-00000000499-000042"


@pytest.fixture
def store(tmp_path: Path) -> LocalBundleStore:
    return LocalBundleStore(tmp_path / "exports")


def test_a_bundle_is_written_read_only_under_its_name(store: LocalBundleStore) -> None:
    port: BundleStore = store
    stored = port.put(NAME, b"bundle bytes")
    path = store.directory / f"{NAME}.tar"
    assert stored == StoredBundle(str(path), sha256_hex(b"bundle bytes"), 12, already_stored=False)
    assert path.read_bytes() == b"bundle bytes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert path.stat().st_nlink == 1  # the temporary name is gone
    assert sorted(p.name for p in store.directory.iterdir()) == [f"{NAME}.tar"]
    assert port.get(NAME) == b"bundle bytes"


def test_the_same_bytes_again_are_already_stored(store: LocalBundleStore) -> None:
    store.put(NAME, b"same")
    path = store.path_of(NAME)
    before = path.stat()
    again = store.put(NAME, b"same")
    assert again.already_stored
    assert (again.location, again.sha256, again.size) == (str(path), sha256_hex(b"same"), 4)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_different_bytes_never_replace_a_bundle(store: LocalBundleStore) -> None:
    store.put(NAME, b"first")
    inode = store.path_of(NAME).stat().st_ino
    with pytest.raises(BundleConflict, match=r"already holds a different bundle .*left unchanged"):
        store.put(NAME, b"second")
    assert store.get(NAME) == b"first"
    assert store.path_of(NAME).stat().st_ino == inode
    assert len(list(store.directory.iterdir())) == 1


def test_a_writer_that_loses_the_race_after_its_check_does_not_replace(
    store: LocalBundleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rival publishes between our existence check and our link: os.link must refuse."""
    from finance import files
    from finance.adapters.bundle_stores import local

    real_publish = files.publish_new_file

    def rival_first(path: Path, data: bytes, *, mode: int) -> bool:
        path.write_bytes(b"rival")
        return real_publish(path, data, mode=mode)

    monkeypatch.setattr(local, "publish_new_file", rival_first)  # the name the store calls
    with pytest.raises(BundleConflict):
        store.put(NAME, b"ours")
    assert store.get(NAME) == b"rival"
    assert [p.name for p in store.directory.iterdir()] == [f"{NAME}.tar"]


def race(store: LocalBundleStore, name: str, payloads: list[bytes]) -> list[object]:
    """Start one thread per payload, release them together, return each put's result or error."""
    barrier = threading.Barrier(len(payloads))
    results: list[object] = [None] * len(payloads)

    def write(index: int) -> None:
        barrier.wait()
        try:
            results[index] = store.put(name, payloads[index])
        except BundleConflict as exc:
            results[index] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_of_racing_writers_exactly_one_wins(store: LocalBundleStore) -> None:
    for round_number in range(10):
        name = f"{NAME}-{round_number}"
        payloads = [f"writer {i}".encode() for i in range(8)]
        results = race(store, name, payloads)
        winners = [i for i, result in enumerate(results) if isinstance(result, StoredBundle)]
        assert len(winners) == 1, results
        losers = [r for i, r in enumerate(results) if i != winners[0]]
        assert all(isinstance(r, BundleConflict) for r in losers)
        assert store.get(name) == payloads[winners[0]]
    assert not [p for p in store.directory.iterdir() if p.name.startswith(".")]


def test_racing_writers_of_identical_bytes_all_succeed_once(store: LocalBundleStore) -> None:
    results = race(store, NAME, [b"deterministic export"] * 8)
    assert all(isinstance(r, StoredBundle) for r in results)
    flags = sorted(r.already_stored for r in results if isinstance(r, StoredBundle))
    assert flags == [False] + [True] * 7


def test_a_failed_write_leaves_nothing_behind(
    store: LocalBundleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    with pytest.raises(BundleStoreError, match="No space left on device"):
        store.put(NAME, b"x")
    assert list(store.directory.iterdir()) == []


def test_a_missing_bundle_and_bad_names(store: LocalBundleStore) -> None:
    with pytest.raises(BundleNotFound):
        store.get(NAME)
    for name in ("../escape", "a/b", ".hidden", "Upper", "", "x" * 201):
        with pytest.raises(ValueError, match="does not match"):
            store.put(name, b"x")
    assert list(store.directory.iterdir()) == []


def test_the_directory_is_created_and_must_be_usable(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b" / "exports"
    LocalBundleStore(nested).put(NAME, b"x")
    assert (nested / f"{NAME}.tar").exists()
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(BundleStoreError, match="cannot create the export directory"):
        LocalBundleStore(blocker / "exports")


def test_the_in_memory_store_follows_the_same_rules() -> None:
    store: BundleStore = InMemoryBundleStore()
    data = b"bytes"
    assert not store.put(NAME, data).already_stored
    assert store.put(NAME, data).already_stored  # the very same object, too
    with pytest.raises(BundleConflict):
        store.put(NAME, b"other")
    assert store.get(NAME) == data
    with pytest.raises(BundleNotFound):
        store.get("missing")
    with pytest.raises(ValueError, match="does not match"):
        store.put("../x", data)
