"""Idempotent writes: the same key and the same request return the first response.

The key is claimed inside the same transaction as the write it protects, so either both commit
or neither does: a crash after the posting but before the response leaves a completed key that
a retry replays, and a crash before commit leaves nothing, so the retry does the work.
A refused request (any `LedgerRejection`) rolls back with its key; retrying it is evaluated
afresh. Keys are kept forever (ledger.md: not 24 hours).

What a key keeps depends on what its response is made of. A posting's response is rendered
from the posted entry alone, and a posted entry never changes, so a posting's key keeps the
entry's id (16 bytes) and a replay renders the entry again: the same bytes, without a copy of
them per entry. The claim names that id from the start, so the key's row is written once,
complete, and the database refuses to commit it without its entry (migration 0008). Any other
write (opening or closing an account, a checkpoint) keeps its status and body as sent: they
describe a state that may change afterwards.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from finance import limits
from finance.domain.entries import PostedEntry
from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.services.ids import new_entry_id
from finance.services.ports import (
    LedgerTransaction,
    Stored,
    StoredEntry,
    StoredResponse,
    TransactionRunner,
)

_KEY = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    request_hash: bytes


@dataclass(frozen=True)
class IdempotentResult:
    status_code: int
    body: bytes
    replayed: bool


# A posting's response (status code, body), rendered from the posted entry alone: the same
# entry must always give the same bytes, since replays render it again.
Respond = Callable[[PostedEntry], tuple[int, bytes]]


def check_key(key: str) -> str:
    if not key or len(key) > limits.IDEMPOTENCY_KEY_CHARS_MAX or not _KEY.fullmatch(key):
        raise LedgerRejection(
            RejectCode.IDEMPOTENCY_KEY_INVALID,
            f"Idempotency-Key must be 1..{limits.IDEMPOTENCY_KEY_CHARS_MAX} printable ASCII"
            " characters without spaces",
        )
    return key


def request_fingerprint(method: str, path: str, body: Any) -> bytes:
    """What makes two requests "the same": method, path and the parsed JSON body with sorted
    keys, so whitespace or key order differences in the JSON do not count as a different
    request. (Not RFC 8785: amounts up to 2^63-1 exceed its integer range, and the body here
    is always validated data without floats, for which sorted compact JSON is canonical.)"""
    canonical = json.dumps(
        {"method": method.upper(), "path": path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode()).digest()


def run_idempotent(
    run: TransactionRunner,
    tenant_id: str,
    request: IdempotentRequest,
    operation: Callable[[LedgerTransaction], tuple[int, bytes]],
) -> IdempotentResult:
    """Do `operation` once per key, keeping the status and body it returns; replays return
    them byte for byte."""
    check_key(request.key)

    def work(tx: LedgerTransaction) -> IdempotentResult:
        stored = tx.claim_idempotency_key(request.key, request.request_hash)
        if stored is not None:
            return _replay(tx, stored, request, respond=None)
        status_code, body = operation(tx)
        tx.complete_idempotency_key(request.key, status_code, body)
        return IdempotentResult(status_code, body, replayed=False)

    return run(tenant_id, work)


def run_idempotent_posting(
    run: TransactionRunner,
    tenant_id: str,
    request: IdempotentRequest,
    post: Callable[[LedgerTransaction, UUID], PostedEntry],
    respond: Respond,
    *,
    new_id: Callable[[], UUID] = new_entry_id,
) -> IdempotentResult:
    """Post one entry once per key (`post` posts it under the id it is given); the key keeps
    the entry's id, and every response, the first and the replays, is `respond(entry)`."""
    check_key(request.key)

    def work(tx: LedgerTransaction) -> IdempotentResult:
        entry_id = new_id()
        stored = tx.claim_idempotency_key(request.key, request.request_hash, entry_id=entry_id)
        if stored is not None:
            return _replay(tx, stored, request, respond=respond)
        entry = post(tx, entry_id)
        if entry.id != entry_id:
            raise InvariantViolation(
                f"key {request.key!r} was claimed for entry {entry_id}, not {entry.id}"
            )
        status_code, body = respond(entry)
        return IdempotentResult(status_code, body, replayed=False)

    return run(tenant_id, work)


def _replay(
    tx: LedgerTransaction, stored: Stored, request: IdempotentRequest, *, respond: Respond | None
) -> IdempotentResult:
    """The first response again, or `idempotency_key_reused` for a different request."""
    if stored.request_hash != request.request_hash:
        raise LedgerRejection(
            RejectCode.IDEMPOTENCY_KEY_REUSED,
            f"Idempotency-Key {request.key!r} was already used with a different request",
        )
    if isinstance(stored, StoredResponse):
        return IdempotentResult(stored.status_code, stored.body, replayed=True)
    status_code, body = respond_again(tx, [stored], respond)[stored.entry_id]
    return IdempotentResult(status_code, body, replayed=True)


def respond_again(
    tx: LedgerTransaction, stored: Sequence[StoredEntry], respond: Respond | None
) -> dict[UUID, tuple[int, bytes]]:
    """The responses of entries posted under keys, rendered again, by entry id."""
    if respond is None:
        # The same fingerprint means the same method, path and body: only a posting's request
        # can match a posting's key.
        raise InvariantViolation("a key that refers to an entry matched a request that posts none")
    wanted = {item.entry_id for item in stored}
    entries = tx.get_entries(wanted)
    if entries.keys() != wanted:
        missing = sorted(str(entry_id) for entry_id in wanted - entries.keys())
        raise InvariantViolation(f"keys refer to entries that do not exist: {missing}")
    return {entry_id: respond(entry) for entry_id, entry in entries.items()}
