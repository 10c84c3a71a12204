"""Postings read a handful of rows however large the tenant and however stale the planner's
statistics (migration 0004 and the service sessions' generic plans; docs/performance.md, "Two
pitfalls").

It runs on a database of its own: the stale statistics that once made a two-account posting
read 10,000 x 10,000 rows need a table analyzed while only a few tenants existed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import ensure_service_login
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountSpec, AccountType
from finance.services import ledger
from finance.services.ports import LedgerTransaction
from tests.databases import drop_database, fresh_database
from tests.integration.helpers import new_tenant, now, transfer_draft

ACCOUNTS = 3_000


@pytest.fixture(scope="module")
def fresh_store(pg_server_uri: str) -> Iterator[PostgresLedgerStore]:
    name = f"plans_{uuid.uuid4().hex[:12]}"
    url = fresh_database(pg_server_uri, name)
    database = Database(ensure_service_login(url), admin_conninfo=url, pool_max=2)
    database.open()
    yield PostgresLedgerStore(database)
    database.close()
    drop_database(pg_server_uri, name)


def open_many(store: PostgresLedgerStore, tenant: str, count: int) -> list[uuid.UUID]:
    def work(tx: LedgerTransaction) -> list[uuid.UUID]:
        return [
            ledger.open_account(tx, asset(f"A{n:06d}"), uuid.uuid4(), datetime.now(UTC)).id
            for n in range(count)
        ]

    return store(tenant, work)


def asset(code: str) -> AccountSpec:
    return AccountSpec(code=code, name=code, type=AccountType.ASSET, currency="USD")


def rows_read(conn: Any) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0)"
        " FROM pg_stat_xact_user_tables WHERE relname IN ('accounts', 'balances')"
    ).fetchone()
    return int(row[0])


def test_a_posting_in_a_tenant_the_statistics_do_not_know_reads_few_rows(
    fresh_store: PostgresLedgerStore,
) -> None:
    known = new_tenant(fresh_store)
    open_many(fresh_store, known, 5)
    with fresh_store.database.admin() as conn:
        conn.execute("ANALYZE accounts, balances")  # the new tenant below is not in them
    tenant = new_tenant(fresh_store)
    accounts = open_many(fresh_store, tenant, ACCOUNTS)

    def post_and_count(tx: LedgerTransaction) -> int:
        conn = tx.conn  # type: ignore[attr-defined]
        before = rows_read(conn)
        ledger.post_entry(tx, transfer_draft(accounts[10], accounts[-10], 100), uuid.uuid4(), now())
        return rows_read(conn) - before

    # Two accounts locked and two balances read, plus a few rows the triggers check: nowhere
    # near the tenant's 3,000 accounts (the 0001 function read 3,000 x 3,000 here, and the
    # foreign-key check of each line, planned for the new tenant's value, 3,000 more).
    assert fresh_store(tenant, post_and_count) < 50
