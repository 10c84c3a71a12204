"""The outbox: each posting writes exactly one `entry.posted` event in its own transaction, so
an event exists if and only if its entry does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore, PostgresLedgerTx
from finance.domain.accounts import AccountType
from finance.domain.entries import PostedEntry
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services import ledger
from finance.services.ledger import ENTRY_POSTED
from finance.services.ports import LedgerTransaction
from tests.integration.helpers import (
    DAY,
    Conn,
    count_rows,
    now,
    open_account,
    post,
    tenant_snapshot,
    transfer,
    transfer_draft,
)


@dataclass(frozen=True)
class Accounts:
    tenant: str
    cash: UUID
    sales: UUID
    wallet: UUID


@pytest.fixture
def accounts(store: PostgresLedgerStore, tenant: str) -> Accounts:
    return Accounts(
        tenant,
        open_account(store, tenant, "cash", AccountType.ASSET),
        open_account(store, tenant, "sales", AccountType.REVENUE),
        open_account(
            store, tenant, "wallet", AccountType.LIABILITY, debits_must_not_exceed_credits=True
        ),
    )


def events(conn: Conn, tenant: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT event_type, aggregate_id, payload, published_at FROM outbox"
        " WHERE tenant_id = %s ORDER BY id",
        (tenant,),
    ).fetchall()


def expected_payload(entry: PostedEntry) -> dict[str, object]:
    return {
        "entry_id": str(entry.id),
        "sequence": entry.sequence,
        "hash": entry.hash.hex(),
        "type": entry.type,
        "effective_date": entry.effective_date.isoformat(),
        "source": entry.source,
        "source_id": entry.source_id,
        "reversal_of": None if entry.reversal_of is None else str(entry.reversal_of),
    }


def test_each_posting_writes_one_event(
    database: Database, store: PostgresLedgerStore, accounts: Accounts
) -> None:
    with database.admin() as conn:
        assert events(conn, accounts.tenant) == []  # opening accounts publishes nothing
    posted = [transfer(store, accounts.tenant, accounts.cash, accounts.sales, n) for n in (5, 6)]
    reversal = store(
        accounts.tenant,
        lambda tx: ledger.reverse_entry(tx, posted[0].id, uuid.uuid4(), now()),
    )
    with database.admin() as conn:
        rows = events(conn, accounts.tenant)
        stored = conn.execute(
            "SELECT hash FROM journal_entries WHERE tenant_id = %s ORDER BY sequence",
            (accounts.tenant,),
        ).fetchall()
    entries = [*posted, reversal]
    assert rows == [(ENTRY_POSTED, e.id, expected_payload(e), None) for e in entries]
    assert rows[2][2]["reversal_of"] == str(posted[0].id)
    # The event carries the hash the journal holds.
    assert [r[2]["hash"] for r in rows] == [bytes(h[0]).hex() for h in stored]


@pytest.mark.parametrize(
    ("debit", "credit", "currency", "code"),
    [
        pytest.param("wallet", "cash", "USD", RejectCode.OVERDRAFT, id="overdraft"),
        pytest.param("cash", "sales", "EUR", RejectCode.CURRENCY_MISMATCH, id="currency"),
        pytest.param("cash", "nowhere", "USD", RejectCode.ACCOUNT_NOT_FOUND, id="no-account"),
    ],
)
def test_rejected_posting_writes_no_event(
    database: Database,
    store: PostgresLedgerStore,
    accounts: Accounts,
    debit: str,
    credit: str,
    currency: str,
    code: RejectCode,
) -> None:
    transfer(store, accounts.tenant, accounts.cash, accounts.sales, 10)
    ids = {"cash": accounts.cash, "sales": accounts.sales, "wallet": accounts.wallet}
    draft = transfer_draft(
        ids[debit], ids.get(credit, uuid.uuid4()), 50, currency=currency, effective_date=DAY
    )
    with database.admin() as conn:
        before = tenant_snapshot(conn, accounts.tenant)
    with pytest.raises(LedgerRejection) as info:
        post(store, accounts.tenant, draft)
    assert info.value.code is code
    with database.admin() as conn:
        assert tenant_snapshot(conn, accounts.tenant) == before
        assert count_rows(conn, "outbox", "tenant_id", accounts.tenant) == 1


def test_rejected_reversal_writes_no_event(
    database: Database, store: PostgresLedgerStore, accounts: Accounts
) -> None:
    entry = transfer(store, accounts.tenant, accounts.cash, accounts.sales, 10)
    store(accounts.tenant, lambda tx: ledger.reverse_entry(tx, entry.id, uuid.uuid4(), now()))
    with pytest.raises(LedgerRejection) as info:
        store(accounts.tenant, lambda tx: ledger.reverse_entry(tx, entry.id, uuid.uuid4(), now()))
    assert info.value.code is RejectCode.ALREADY_REVERSED
    with database.admin() as conn:
        assert count_rows(conn, "outbox", "tenant_id", accounts.tenant) == 2


def test_event_and_entry_roll_back_together(
    database: Database, store: PostgresLedgerStore, accounts: Accounts
) -> None:
    """A unit of work that fails after posting leaves neither the entry nor its event."""

    class Crash(Exception):
        pass

    def post_then_fail(tx: LedgerTransaction) -> None:
        ledger.post_entry(
            tx, transfer_draft(accounts.cash, accounts.sales, 99), uuid.uuid4(), now()
        )
        raise Crash

    with database.admin() as conn:
        before = tenant_snapshot(conn, accounts.tenant)
    with pytest.raises(Crash):
        store(accounts.tenant, post_then_fail)
    with database.admin() as conn:
        assert tenant_snapshot(conn, accounts.tenant) == before
    # The ledger carries on at the same position.
    entry = transfer(store, accounts.tenant, accounts.cash, accounts.sales, 99)
    assert entry.sequence == 0
    with database.admin() as conn:
        assert [r[1] for r in events(conn, accounts.tenant)] == [entry.id]


def test_events_are_written_in_the_posting_transaction(
    database: Database, store: PostgresLedgerStore, accounts: Accounts
) -> None:
    """Seen from inside the unit of work, the event is there as soon as the entry is."""

    def post_and_look(tx: LedgerTransaction) -> tuple[PostedEntry, int]:
        entry = ledger.post_entry(
            tx, transfer_draft(accounts.cash, accounts.sales, 3), uuid.uuid4(), now()
        )
        assert isinstance(tx, PostgresLedgerTx)
        row = tx.conn.execute(
            "SELECT count(*) FROM outbox WHERE aggregate_id = %s", (entry.id,)
        ).fetchone()
        assert row is not None
        return entry, int(row[0])

    entry, seen = store(accounts.tenant, post_and_look)
    assert seen == 1
    with database.admin() as conn:
        assert [r[1] for r in events(conn, accounts.tenant)] == [entry.id]
