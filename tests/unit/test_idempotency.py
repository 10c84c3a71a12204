"""Unit tests for idempotent writes (finance.services.idempotency), on an in-memory key store."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pytest
import rfc8785

from finance import limits
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services.idempotency import (
    IdempotentRequest,
    check_key,
    request_fingerprint,
    run_idempotent,
)
from finance.services.ports import LedgerTransaction, StoredResponse

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
    """The idempotency part of a LedgerTransaction; staged writes commit only on success."""

    committed: dict[str, StoredResponse] = field(default_factory=dict)
    staged: dict[str, StoredResponse] = field(default_factory=dict)
    claimed: dict[str, bytes] = field(default_factory=dict)
    transactions: int = 0

    def claim_idempotency_key(self, key: str, request_hash: bytes) -> StoredResponse | None:
        if key in self.committed:
            return self.committed[key]
        self.claimed[key] = request_hash
        return None

    def complete_idempotency_key(self, key: str, status_code: int, body: bytes) -> None:
        self.staged[key] = StoredResponse(self.claimed[key], status_code, body)

    def run(self, tenant_id: str, work: Callable[[LedgerTransaction], T]) -> T:
        assert tenant_id == "t-1"
        self.transactions += 1
        self.staged, self.claimed = {}, {}
        result = work(cast(LedgerTransaction, self))  # an exception discards the staged writes
        self.committed.update(self.staged)
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
