"""The service role (`finance_app`) may read and append, nothing more, and sees only the rows of
the tenant its transaction names (row-level security)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

import psycopg
import pytest
from psycopg import errors

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountType
from finance.domain.entries import PostedEntry
from finance.services import ledger
from finance.services.idempotency import IdempotentRequest, run_idempotent_posting
from finance.services.ports import LedgerTransaction
from tests.integration.helpers import (
    TENANT_TABLES,
    count_rows,
    new_tenant,
    now,
    open_account,
    scalar,
    tenant_snapshot,
    transfer_draft,
)


@dataclass(frozen=True)
class Populated:
    tenant: str
    cash: UUID
    revenue: UUID
    entry_id: UUID


def populate(store: PostgresLedgerStore, tenant: str) -> Populated:
    """A tenant with a row in every tenant table: accounts, balances, an idempotent posting
    (entry, lines, key) besides the tenant and its ledger head."""
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    revenue = open_account(store, tenant, "revenue", AccountType.REVENUE)

    def post(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
        return ledger.post_entry(tx, transfer_draft(cash, revenue, 300), entry_id, now())

    request = IdempotentRequest("populate", bytes(32))
    result = run_idempotent_posting(
        store, tenant, request, post, lambda entry: (201, str(entry.id).encode())
    )
    return Populated(tenant, cash, revenue, UUID(result.body.decode()))


@pytest.fixture
def populated(store: PostgresLedgerStore, tenant: str) -> Populated:
    return populate(store, tenant)


# Privileges ---------------------------------------------------------------------------------


def attempt_as_app(database: Database, tenant: str, statement: str) -> None:
    """Run `statement` as the app role; never commit it (TRUNCATE would reach every tenant of
    the worker): if it was allowed, fail and so roll it back."""
    with database.transaction(tenant) as conn:
        conn.execute(statement.encode(), {"t": tenant})
        raise AssertionError(f"the app role was allowed: {statement}")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entries SET memo = 'x' WHERE tenant_id = %(t)s",
        "DELETE FROM journal_entries WHERE tenant_id = %(t)s",
        "UPDATE journal_lines SET amount_minor = 1 WHERE tenant_id = %(t)s",
        "DELETE FROM journal_lines WHERE tenant_id = %(t)s",
        "UPDATE balances SET debits_posted = 0 WHERE tenant_id = %(t)s",
        "DELETE FROM balances WHERE tenant_id = %(t)s",
        "INSERT INTO balances (tenant_id, account_id, currency, debits_must_not_exceed_credits,"
        " credits_must_not_exceed_debits) VALUES (%(t)s, gen_random_uuid(), 'USD', false, false)",
        "UPDATE ledger_heads SET next_sequence = 0 WHERE tenant_id = %(t)s",
        "DELETE FROM ledger_heads WHERE tenant_id = %(t)s",
        "UPDATE accounts SET code = 'renamed' WHERE tenant_id = %(t)s",
        "UPDATE accounts SET currency = 'EUR' WHERE tenant_id = %(t)s",
        "DELETE FROM accounts WHERE tenant_id = %(t)s",
        "DELETE FROM idempotency_keys WHERE tenant_id = %(t)s",
        "UPDATE idempotency_keys SET request_hash = '\\x00' WHERE tenant_id = %(t)s",
        "UPDATE idempotency_keys SET entry_id = NULL WHERE tenant_id = %(t)s",
        "TRUNCATE journal_lines",
        "UPDATE schema_version SET checksum = 'x'",
    ],
)
def test_app_role_cannot_change_what_it_may_only_append(
    database: Database, populated: Populated, statement: str
) -> None:
    with database.admin() as conn:
        before = tenant_snapshot(conn, populated.tenant)
    with pytest.raises(errors.InsufficientPrivilege):
        attempt_as_app(database, populated.tenant, statement)
    with database.admin() as conn:
        assert tenant_snapshot(conn, populated.tenant) == before


def test_app_role_connection_really_is_the_app_role(database: Database, tenant: str) -> None:
    with database.transaction(tenant) as conn:
        assert scalar(conn, "SELECT current_user") == "finance_app"
        assert scalar(conn, "SELECT current_setting('finance.tenant_id')") == tenant


def test_app_role_may_rename_an_account(database: Database, populated: Populated) -> None:
    """Control for the refusals above: the column grants the service needs do work."""
    with database.transaction(populated.tenant) as conn:
        renamed = conn.execute(
            "UPDATE accounts SET name = 'Till' WHERE tenant_id = %s AND id = %s",
            (populated.tenant, populated.cash),
        ).rowcount
    assert renamed == 1


# Row-level security -------------------------------------------------------------------------


def test_connection_without_a_tenant_sees_no_rows_at_all(
    database: Database, populated: Populated
) -> None:
    with database.admin() as conn:
        present = {
            table: count_rows(conn, table, column, populated.tenant)
            for table, column in TENANT_TABLES
        }
    assert all(count >= 1 for count in present.values()), present
    with database.transaction(None) as conn:
        assert scalar(conn, "SELECT current_user") == "finance_app"
        visible = {
            table: int(scalar(conn, f"SELECT count(*) FROM {table}")) for table, _ in TENANT_TABLES
        }
    assert visible == dict.fromkeys(present, 0)


def test_pooled_connection_forgets_the_tenant_after_its_transaction(
    database: Database, populated: Populated
) -> None:
    """The tenant is set per transaction: reusing every pooled connection without naming a
    tenant shows nothing, even right after a transaction that did name one."""
    for _ in range(3):
        with database.transaction(populated.tenant) as conn:
            assert int(scalar(conn, "SELECT count(*) FROM accounts")) == 2
        with database.transaction(None) as conn:
            assert int(scalar(conn, "SELECT count(*) FROM accounts")) == 0
            assert scalar(conn, "SELECT finance_tenant()") is None


def test_tenant_sees_only_its_own_rows(
    database: Database, store: PostgresLedgerStore, populated: Populated
) -> None:
    other = populate(store, new_tenant(store))
    for me, them in ((populated, other), (other, populated)):
        with database.transaction(me.tenant) as conn:
            for table, column in TENANT_TABLES:
                mine = count_rows(conn, table, column, me.tenant)
                theirs = count_rows(conn, table, column, them.tenant)
                total = int(scalar(conn, f"SELECT count(*) FROM {table}"))
                assert mine >= 1, table
                assert (theirs, total) == (0, mine), table
            # Lookups by primary key of the other tenant's rows find nothing either.
            assert (
                conn.execute(
                    "SELECT 1 FROM journal_entries WHERE id = %s", (them.entry_id,)
                ).fetchone()
                is None
            )
            assert (
                conn.execute("SELECT 1 FROM accounts WHERE id = %s", (them.cash,)).fetchone()
                is None
            )


def test_service_cannot_read_another_tenants_entry_or_account(
    store: PostgresLedgerStore, populated: Populated
) -> None:
    other = new_tenant(store)
    assert store(other, lambda tx: tx.get_entry(populated.entry_id)) is None
    assert store(other, lambda tx: tx.get_account(populated.cash)) is None
    assert store(other, lambda tx: tx.get_balance(populated.cash)) is None
    mine = store(populated.tenant, lambda tx: tx.get_entry(populated.entry_id))
    assert isinstance(mine, PostedEntry)


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "INSERT INTO accounts (tenant_id, id, code, name, type, currency, created_at)"
            " VALUES (%(b)s, gen_random_uuid(), 'planted', 'Planted', 'asset', 'USD', now())",
            id="accounts",
        ),
        pytest.param(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash)"
            " VALUES (%(b)s, 'planted', '\\x" + "00" * 32 + "')",
            id="idempotency_keys",
        ),
        pytest.param("INSERT INTO tenants (id, name) VALUES (%(new)s, 'Planted')", id="tenants"),
    ],
)
def test_tenant_cannot_write_rows_of_another_tenant(
    database: Database,
    store: PostgresLedgerStore,
    populated: Populated,
    statement: str,
) -> None:
    _write_into_another_tenant(
        database, store, populated, statement, errors.InsufficientPrivilege, "row-level security"
    )


def test_tenant_cannot_add_lines_to_another_tenants_entry(
    database: Database, store: PostgresLedgerStore, populated: Populated
) -> None:
    """The line trigger runs (as the owner) before the row-level security check, and refuses
    first: a committed entry has no free line slot (numbers below its line count are taken,
    the primary key; numbers from it up, the trigger). The refusal names only what the writer
    sent, nothing of tenant B's entry."""
    statement = (
        "INSERT INTO journal_lines (tenant_id, entry_id, line_number, account_id, side,"
        " amount_minor, currency, entry_sequence, effective_date, account_posting_sequence,"
        " debits_after, credits_after)"
        " VALUES (%(b)s, %(entry)s, 9, %(account)s, 'debit', 5, 'USD', 0, '2024-06-01', 2, 5, 0)"
    )
    refused = _write_into_another_tenant(
        database, store, populated, statement, psycopg.Error, "no such free line slot"
    )
    assert refused.sqlstate == "FN003"


def _write_into_another_tenant(
    database: Database,
    store: PostgresLedgerStore,
    populated: Populated,
    statement: str,
    refusal: type[psycopg.Error],
    match: str,
) -> psycopg.Error:
    """Run `statement` as tenant A against tenant B's rows: refused, and B unchanged."""
    victim = populate(store, new_tenant(store))
    params = {
        "b": victim.tenant,
        "new": f"t-{uuid.uuid4().hex[:12]}",
        "entry": victim.entry_id,
        "account": victim.cash,
    }
    with database.admin() as conn:
        before = tenant_snapshot(conn, victim.tenant)
    with (
        pytest.raises(refusal, match=match) as refused,
        database.transaction(populated.tenant) as conn,
    ):
        conn.execute(statement.encode(), params)
    with database.admin() as conn:
        assert tenant_snapshot(conn, victim.tenant) == before
        assert count_rows(conn, "tenants", "id", str(params["new"])) == 0
    return refused.value


def test_tenant_cannot_update_rows_of_another_tenant(
    database: Database, store: PostgresLedgerStore, populated: Populated
) -> None:
    victim = populate(store, new_tenant(store))
    with database.transaction(populated.tenant) as conn:
        changed = conn.execute(
            "UPDATE accounts SET name = 'Hijacked' WHERE tenant_id = %s", (victim.tenant,)
        ).rowcount
    assert changed == 0
    with database.admin() as conn:
        names = conn.execute(
            "SELECT name FROM accounts WHERE tenant_id = %s ORDER BY code", (victim.tenant,)
        ).fetchall()
        assert names == [("Cash",), ("Revenue",)]


def test_tenant_cannot_move_its_row_to_another_tenant(
    database: Database, store: PostgresLedgerStore, populated: Populated
) -> None:
    """A row of tenant A cannot be re-labelled as tenant B's (the policy applies to the new
    row of an UPDATE too); the column grants refuse it before the policy does."""
    victim = new_tenant(store)
    with (
        pytest.raises(errors.InsufficientPrivilege),
        database.transaction(populated.tenant) as conn,
    ):
        conn.execute(
            "UPDATE accounts SET tenant_id = %s WHERE tenant_id = %s", (victim, populated.tenant)
        )
