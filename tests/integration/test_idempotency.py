"""Idempotency keys on the real database: kept with the write they protect, in one transaction.
A posting's key names its entry, written once; other writes keep their response. (Racing callers
are in test_concurrency.)"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any
from uuid import UUID

import pytest

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.api.schemas import entry_response
from finance.domain.accounts import AccountType
from finance.domain.entries import PostedEntry
from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.services import ledger
from finance.services.batches import BatchEntry, BatchStatus, post_batch
from finance.services.idempotency import (
    IdempotentRequest,
    IdempotentResult,
    request_fingerprint,
    run_idempotent,
    run_idempotent_posting,
)
from finance.services.ports import LedgerTransaction, TransactionRunner
from tests.integration.helpers import (
    balance_of,
    count_rows,
    counting_key_writes,
    new_tenant,
    now,
    open_account,
    scalar,
    transfer,
    transfer_draft,
)


def withdrawal(wallet: UUID, cash: UUID, amount: int) -> dict[str, Any]:
    return {"from": str(wallet), "to": str(cash), "amount": amount}


def withdraw(
    run: TransactionRunner, tenant: str, key: str, wallet: UUID, cash: UUID, amount: int
) -> IdempotentResult:
    """A posting as the API makes it: the key names the entry, the response is the API's."""
    body = withdrawal(wallet, cash, amount)
    request = IdempotentRequest(key, request_fingerprint("POST", "/v1/journal", body))

    def post(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
        # Metadata out of key order and text beyond ASCII: where a response rendered from the
        # database is likeliest to differ from the one rendered at posting.
        draft = replace(
            transfer_draft(wallet, cash, amount, memo="café — 10 € \U0001f4b6"),
            metadata={"z": "1", "note": "naïve", "a": "2"},
        )
        return ledger.post_entry(tx, draft, entry_id, now())

    return run_idempotent_posting(run, tenant, request, post, entry_response)


def stored_row(database: Database, tenant: str, key: str) -> tuple[Any, ...] | None:
    with database.admin() as conn:
        return conn.execute(
            "SELECT entry_id, status_code, response_body, completed_at FROM idempotency_keys"
            " WHERE tenant_id = %s AND key = %s",
            (tenant, key),
        ).fetchone()


def test_refused_request_leaves_no_key_and_can_be_retried(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    wallet = open_account(
        store, tenant, "wallet", AccountType.LIABILITY, debits_must_not_exceed_credits=True
    )
    with pytest.raises(LedgerRejection) as info:
        withdraw(store, tenant, "w-1", wallet, cash, 40)
    assert info.value.code is RejectCode.OVERDRAFT
    with database.admin() as conn:
        assert count_rows(conn, "idempotency_keys", "tenant_id", tenant) == 0
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 0

    transfer(store, tenant, cash, wallet, 100)
    result = withdraw(store, tenant, "w-1", wallet, cash, 40)
    assert not result.replayed
    assert balance_of(store, tenant, wallet).signed == 60
    # The key names the entry it posted, and keeps no copy of the response.
    entry_id = UUID(json.loads(result.body)["id"])
    assert stored_row(database, tenant, "w-1") == (entry_id, None, None, None)


def test_replay_returns_the_first_response_byte_for_byte(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    wallet = open_account(store, tenant, "wallet", AccountType.LIABILITY)
    first = withdraw(store, tenant, "w-2", wallet, cash, 5)
    replays = [withdraw(store, tenant, "w-2", wallet, cash, 5) for _ in range(3)]
    assert [(r.status_code, r.body, r.replayed) for r in replays] == [
        (first.status_code, first.body, True)
    ] * 3
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 1
        entry_id = scalar(conn, "SELECT id FROM journal_entries WHERE tenant_id = %s", (tenant,))
    # The first response is the entry as the ledger holds it, rendered as the API does.
    assert store(tenant, lambda tx: entry_response(ledger.get_entry(tx, entry_id))) == (
        first.status_code,
        first.body,
    )


def test_a_posting_writes_its_key_once_and_never_updates_it(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    wallet = open_account(store, tenant, "wallet", AccountType.LIABILITY)
    counts: dict[str, int] = {}
    withdraw(counting_key_writes(database, counts), tenant, "w-3", wallet, cash, 5)
    assert counts == {"inserted": 1, "updated": 0, "deleted": 0}

    # Control: a write whose response is kept claims, then completes its key.
    request = IdempotentRequest("other-write", bytes(32))
    run_idempotent(counting_key_writes(database, counts), tenant, request, lambda tx: (200, b"{}"))
    assert counts == {"inserted": 1, "updated": 1, "deleted": 0}


def test_keys_are_per_tenant(store: PostgresLedgerStore, tenant: str) -> None:
    """The same key in two tenants is two requests: each tenant posts its own entry."""
    other = new_tenant(store)
    results = []
    for t in (tenant, other):
        cash = open_account(store, t, "cash", AccountType.ASSET)
        wallet = open_account(store, t, "wallet", AccountType.LIABILITY)
        results.append(withdraw(store, t, "shared-key", wallet, cash, 8))
    assert [r.replayed for r in results] == [False, False]
    assert results[0].body != results[1].body


def test_invalid_key_is_refused_before_any_work(store: PostgresLedgerStore, tenant: str) -> None:
    calls: list[int] = []

    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        calls.append(1)
        return 200, b""

    for key in ("", "has space", "x" * 256, "caf\u00e9"):
        with pytest.raises(LedgerRejection) as info:
            run_idempotent(store, tenant, IdempotentRequest(key, bytes(32)), operation)
        assert info.value.code is RejectCode.IDEMPOTENCY_KEY_INVALID
    assert calls == []


def test_a_key_cannot_commit_without_the_entry_it_names(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    """The foreign key checked at commit: a claim for an entry that was never posted (a bug)
    rolls back whole, and the key stays free."""
    request = IdempotentRequest("never-posted", bytes(32))

    def claim_only(tx: LedgerTransaction) -> None:
        tx.claim_idempotency_key(request.key, request.request_hash, entry_id=uuid.uuid4())

    with pytest.raises(InvariantViolation, match="names an entry that was not posted"):
        store(tenant, claim_only)
    assert stored_row(database, tenant, "never-posted") is None


def test_a_key_cannot_name_an_entry_of_another_tenant(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    other = new_tenant(store)
    cash = open_account(store, other, "cash", AccountType.ASSET)
    equity = open_account(store, other, "equity", AccountType.EQUITY)
    theirs = transfer(store, other, cash, equity, 5)

    def claim(tx: LedgerTransaction) -> None:
        tx.claim_idempotency_key("theirs", bytes(32), entry_id=theirs.id)

    with pytest.raises(InvariantViolation):
        store(tenant, claim)
    assert stored_row(database, tenant, "theirs") is None


# Keys stored before migration 0007 ------------------------------------------------------------


def test_a_response_stored_before_keys_named_entries_replays_byte_for_byte(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    """Keys of postings made before migration 0007 keep the body as it was sent: it replays
    exactly, from a single posting and from a batch, even where rendering the entry again
    gives other bytes (the metadata in the client's order, say)."""
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    wallet = open_account(store, tenant, "wallet", AccountType.LIABILITY)
    body = withdrawal(wallet, cash, 7)
    fingerprint = request_fingerprint("POST", "/v1/journal", body)
    entry = transfer(store, tenant, cash, wallet, 7)
    as_sent = b'{"id":"%s","metadata":{"z":"1","a":"2"}}' % str(entry.id).encode()
    with database.admin() as conn:
        # As the release before 0007 wrote it: claimed, then completed with the body.
        conn.execute(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash) VALUES (%s, 'old', %s)",
            (tenant, fingerprint),
        )
        conn.execute(
            "UPDATE idempotency_keys SET status_code = 201, response_body = %s,"
            " completed_at = now() WHERE tenant_id = %s AND key = 'old'",
            (as_sent, tenant),
        )

    single = withdraw(store, tenant, "old", wallet, cash, 7)
    assert (single.status_code, single.body, single.replayed) == (201, as_sent, True)
    item = BatchEntry("old", fingerprint, lambda _today: transfer_draft(wallet, cash, 7))
    [result] = store(
        tenant,
        lambda tx: post_batch(tx, [item], now(), entries_max=10, respond=entry_response),
    )
    assert (result.status, result.body) == (BatchStatus.REPLAYED, as_sent)
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 1
