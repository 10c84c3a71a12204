"""Idempotency keys on the real database: kept with the write they protect, in one transaction.
(Racing callers are in test_concurrency.)"""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountType
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services import ledger
from finance.services.idempotency import (
    IdempotentRequest,
    IdempotentResult,
    request_fingerprint,
    run_idempotent,
)
from finance.services.ports import LedgerTransaction
from tests.integration.helpers import (
    balance_of,
    count_rows,
    new_tenant,
    now,
    open_account,
    scalar,
    transfer,
    transfer_draft,
)


def withdraw(
    store: PostgresLedgerStore, tenant: str, key: str, wallet: UUID, cash: UUID, amount: int
) -> IdempotentResult:
    body = {"from": str(wallet), "to": str(cash), "amount": amount}
    request = IdempotentRequest(key, request_fingerprint("POST", "/v1/journal", body))

    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        entry = ledger.post_entry(tx, transfer_draft(wallet, cash, amount), uuid.uuid4(), now())
        return 201, str(entry.id).encode()

    return run_idempotent(store, tenant, request, operation)


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
    with database.admin() as conn:
        row = conn.execute(
            "SELECT status_code, response_body, completed_at IS NOT NULL FROM idempotency_keys"
            " WHERE tenant_id = %s AND key = 'w-1'",
            (tenant,),
        ).fetchone()
    assert row == (201, result.body, True)


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
        assert (
            scalar(conn, "SELECT id::text FROM journal_entries WHERE tenant_id = %s", (tenant,))
            == first.body.decode()
        )


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
