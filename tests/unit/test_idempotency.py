"""Unit tests for idempotent writes (finance.services.idempotency), on an in-memory key store."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4

import pytest
import rfc8785

from finance import limits
from finance.domain.entries import PostedEntry
from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.services.idempotency import (
    IdempotentRequest,
    IdempotentResult,
    check_key,
    request_fingerprint,
    run_idempotent,
    run_idempotent_posting,
)
from finance.services.ports import LedgerTransaction, Stored, StoredEntry, StoredResponse

T = TypeVar("T")


@pytest.mark.parametrize("key", ["k", "order-42", "a" * limits.IDEMPOTENCY_KEY_CHARS_MAX, "!~"])
def test_check_key_accepts_printable_ascii(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "a b",
        "key\n",  # a trailing newline satisfies re.match with "$", never fullmatch
        "\tkey",
        "clé",
        "a" * (limits.IDEMPOTENCY_KEY_CHARS_MAX + 1),
        "k\x00",
        "k\x7f",
    ],
)
def test_check_key_refuses_anything_else(key: str) -> None:
    with pytest.raises(LedgerRejection) as caught:
        check_key(key)
    assert caught.value.code is RejectCode.IDEMPOTENCY_KEY_INVALID


def test_fingerprint_is_sha256_of_the_canonical_request() -> None:
    body: dict[str, Any] = {"b": [1, 2], "a": "x"}
    expected = hashlib.sha256(
        rfc8785.dumps({"method": "POST", "path": "/v1/journal", "body": body})
    ).digest()
    assert request_fingerprint("post", "/v1/journal", body) == expected


def test_fingerprint_ignores_key_order_but_not_content() -> None:
    same = request_fingerprint("POST", "/v1/journal", {"a": 1, "b": {"c": "d", "e": "f"}})
    assert same == request_fingerprint("POST", "/v1/journal", {"b": {"e": "f", "c": "d"}, "a": 1})
    others = {
        request_fingerprint("POST", "/v1/journal", {"a": 2, "b": {"c": "d", "e": "f"}}),
        request_fingerprint("POST", "/v1/accounts", {"a": 1, "b": {"c": "d", "e": "f"}}),
        request_fingerprint("PUT", "/v1/journal", {"a": 1, "b": {"c": "d", "e": "f"}}),
        request_fingerprint("POST", "/v1/journal", {"a": 1, "b": {"c": "d"}}),
    }
    assert same not in others
    assert len(others) == 4


@dataclass
class KeyStore:
    """The idempotency part of a LedgerTransaction, and the entries it posts; staged writes
    commit only on success."""

    committed: dict[str, Stored] = field(default_factory=dict)
    staged: dict[str, Stored] = field(default_factory=dict)
    claimed: dict[str, bytes] = field(default_factory=dict)
    entries: dict[UUID, PostedEntry] = field(default_factory=dict)
    staged_entries: dict[UUID, PostedEntry] = field(default_factory=dict)
    transactions: int = 0
    completions: int = 0

    def claim_idempotency_key(
        self, key: str, request_hash: bytes, *, entry_id: UUID | None = None
    ) -> Stored | None:
        if key in self.committed:
            return self.committed[key]
        if entry_id is not None:
            self.staged[key] = StoredEntry(request_hash, entry_id)
        else:
            self.claimed[key] = request_hash
        return None

    def complete_idempotency_key(self, key: str, status_code: int, body: bytes) -> None:
        self.completions += 1
        self.staged[key] = StoredResponse(self.claimed[key], status_code, body)

    def get_entries(self, entry_ids: Collection[UUID]) -> dict[UUID, PostedEntry]:
        return {i: self.entries[i] for i in entry_ids if i in self.entries}

    def post(self, entry: PostedEntry) -> PostedEntry:
        self.staged_entries[entry.id] = entry
        return entry

    def run(self, tenant_id: str, work: Callable[[LedgerTransaction], T]) -> T:
        assert tenant_id == "t-1"
        self.transactions += 1
        self.staged, self.claimed, self.staged_entries = {}, {}, {}
        result = work(cast(LedgerTransaction, self))  # an exception discards the staged writes
        # What the database's deferred foreign key holds at commit (migration 0007).
        assert all(
            item.entry_id in self.staged_entries
            for item in self.staged.values()
            if isinstance(item, StoredEntry)
        )
        self.committed.update(self.staged)
        self.entries.update(self.staged_entries)
        return result


def request(key: str, body: Any) -> IdempotentRequest:
    return IdempotentRequest(key, request_fingerprint("POST", "/v1/journal", body))


def test_first_request_runs_and_a_retry_replays_byte_for_byte() -> None:
    keys = KeyStore()
    calls: list[int] = []

    def operation(_: LedgerTransaction) -> tuple[int, bytes]:
        calls.append(1)
        return 201, b'{"id":"e-1"}'

    first = run_idempotent(keys.run, "t-1", request("k1", {"a": 1}), operation)
    again = run_idempotent(keys.run, "t-1", request("k1", {"a": 1}), operation)
    assert (first.status_code, first.body, first.replayed) == (201, b'{"id":"e-1"}', False)
    assert (again.status_code, again.body, again.replayed) == (201, b'{"id":"e-1"}', True)
    assert len(calls) == 1


def test_same_key_with_a_different_request_is_a_conflict() -> None:
    keys = KeyStore()
    calls: list[int] = []

    def operation(_: LedgerTransaction) -> tuple[int, bytes]:
        calls.append(1)
        return 201, b"{}"

    run_idempotent(keys.run, "t-1", request("k1", {"a": 1}), operation)
    with pytest.raises(LedgerRejection) as caught:
        run_idempotent(keys.run, "t-1", request("k1", {"a": 2}), operation)
    assert caught.value.code is RejectCode.IDEMPOTENCY_KEY_REUSED
    assert len(calls) == 1


def test_an_invalid_key_is_refused_before_any_transaction() -> None:
    keys = KeyStore()
    with pytest.raises(LedgerRejection) as caught:
        run_idempotent(keys.run, "t-1", request("bad key", {}), lambda _: (201, b"{}"))
    assert caught.value.code is RejectCode.IDEMPOTENCY_KEY_INVALID
    with pytest.raises(LedgerRejection) as caught:
        run_idempotent_posting(keys.run, "t-1", request("bad key", {}), post, respond)
    assert caught.value.code is RejectCode.IDEMPOTENCY_KEY_INVALID
    assert keys.transactions == 0


def test_a_refused_request_leaves_no_completed_key() -> None:
    keys = KeyStore()

    def refuse(_: LedgerTransaction) -> tuple[int, bytes]:
        raise LedgerRejection(RejectCode.OVERDRAFT, "no")

    with pytest.raises(LedgerRejection):
        run_idempotent(keys.run, "t-1", request("k1", {"a": 1}), refuse)
    assert keys.committed == {}
    # The retry is evaluated afresh.
    result = run_idempotent(keys.run, "t-1", request("k1", {"a": 1}), lambda _: (201, b"ok"))
    assert (result.body, result.replayed) == (b"ok", False)


# Postings: the key keeps the entry's id, and every response is rendered from the entry ------


def entry(entry_id: UUID, memo: str = "m") -> PostedEntry:
    return PostedEntry(
        id=entry_id,
        tenant_id="t-1",
        sequence=7,
        hash=bytes(32),
        prev_hash=bytes(32),
        posted_at=datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        effective_date=date(2025, 1, 2),
        type="SALE",
        memo=memo,
        source=None,
        source_id=None,
        metadata={},
        reversal_of=None,
        lines=(),
    )


def respond(posted: PostedEntry) -> tuple[int, bytes]:
    return 201, f'{{"id":"{posted.id}","memo":"{posted.memo}"}}'.encode()


def post(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
    return cast(KeyStore, tx).post(entry(entry_id))


def test_a_posting_keeps_its_entry_id_and_replays_the_entry_rendered_again() -> None:
    keys = KeyStore()
    ids = iter([UUID(int=1), UUID(int=2), UUID(int=3)])
    posted: list[UUID] = []

    def post_once(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
        posted.append(entry_id)
        return post(tx, entry_id)

    def again() -> IdempotentResult:
        return run_idempotent_posting(
            keys.run, "t-1", request("k1", {"a": 1}), post_once, respond, new_id=lambda: next(ids)
        )

    first, second, third = again(), again(), again()
    assert (first.status_code, first.replayed) == (201, False)
    assert first.body == b'{"id":"00000000-0000-0000-0000-000000000001","memo":"m"}'
    assert [(r.status_code, r.body, r.replayed) for r in (second, third)] == [
        (201, first.body, True)
    ] * 2
    assert posted == [UUID(int=1)]
    assert keys.committed == {"k1": StoredEntry(request("k1", {"a": 1}).request_hash, UUID(int=1))}
    assert keys.completions == 0  # written once, complete: never updated


def test_a_posting_key_reused_for_a_different_request_is_a_conflict_without_reading() -> None:
    keys = KeyStore()
    run_idempotent_posting(keys.run, "t-1", request("k1", {"a": 1}), post, respond)
    keys.entries.clear()  # a conflict is decided on the fingerprint alone
    with pytest.raises(LedgerRejection) as caught:
        run_idempotent_posting(keys.run, "t-1", request("k1", {"a": 2}), post, respond)
    assert caught.value.code is RejectCode.IDEMPOTENCY_KEY_REUSED


def test_a_refused_posting_leaves_no_key() -> None:
    keys = KeyStore()

    def refuse(_tx: LedgerTransaction, _id: UUID) -> PostedEntry:
        raise LedgerRejection(RejectCode.OVERDRAFT, "no")

    with pytest.raises(LedgerRejection):
        run_idempotent_posting(keys.run, "t-1", request("k1", {"a": 1}), refuse, respond)
    assert keys.committed == {}


def test_a_posting_under_another_id_than_its_key_names_is_a_bug() -> None:
    keys = KeyStore()
    with pytest.raises(InvariantViolation, match="claimed for entry"):
        run_idempotent_posting(
            keys.run,
            "t-1",
            request("k1", {"a": 1}),
            lambda tx, _id: cast(KeyStore, tx).post(entry(uuid4())),
            respond,
        )
    assert keys.committed == {}


def test_a_response_stored_before_keys_named_entries_replays_as_stored() -> None:
    """Keys of postings made before migration 0007 hold the body: it replays byte for byte,
    even where rendering the entry again would differ."""
    keys = KeyStore()
    first = request("k1", {"a": 1})
    keys.committed["k1"] = StoredResponse(first.request_hash, 201, b'{"as":"sent"}')
    result = run_idempotent_posting(keys.run, "t-1", first, post, respond)
    assert (result.status_code, result.body, result.replayed) == (201, b'{"as":"sent"}', True)
    assert keys.entries == {}


def test_a_key_naming_an_entry_does_not_replay_for_a_write_that_posts_none() -> None:
    """Same fingerprint, same request: a body-keeping write can only meet a posting's key by
    a bug, and says so instead of answering something else."""
    keys = KeyStore()
    first = request("k1", {"a": 1})
    keys.committed["k1"] = StoredEntry(first.request_hash, UUID(int=9))
    with pytest.raises(InvariantViolation):
        run_idempotent(keys.run, "t-1", first, lambda _: (200, b"{}"))
