"""Idempotent writes: the same key and the same request return the first response.

The key is claimed inside the same transaction as the write it protects, so either both commit
or neither does: a crash after the posting but before the response leaves a completed key that
a retry replays, and a crash before commit leaves nothing, so the retry does the work.
A refused request (any `LedgerRejection`) rolls back with its key; retrying it is evaluated
afresh. Keys are kept forever (ledger.md: not 24 hours).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finance import limits
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services.ports import LedgerTransaction, StoredResponse, TransactionRunner

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
    """Do `operation` once per key; replays return the stored status and body byte for byte."""
    check_key(request.key)

    def work(tx: LedgerTransaction) -> IdempotentResult:
        stored = tx.claim_idempotency_key(request.key, request.request_hash)
        if stored is not None:
            return _replay(stored, request)
        status_code, body = operation(tx)
        tx.complete_idempotency_key(request.key, status_code, body)
        return IdempotentResult(status_code, body, replayed=False)

    return run(tenant_id, work)


def _replay(stored: StoredResponse, request: IdempotentRequest) -> IdempotentResult:
    if stored.request_hash != request.request_hash:
        raise LedgerRejection(
            RejectCode.IDEMPOTENCY_KEY_REUSED,
            f"Idempotency-Key {request.key!r} was already used with a different request",
        )
    return IdempotentResult(stored.status_code, stored.body, replayed=True)
