"""The service's own login cannot get around the ledger, and the posting freeze and posting
times are held by the database itself."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest
from psycopg import errors

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountType
from finance.services import ledger
from tests.integration.helpers import (
    count_rows,
    now,
    open_account,
    raises_sqlstate,
    transfer,
    transfer_draft,
)

SECURITY_DEFINER_TRIGGERS = (
    "finance_open_balance",
    "finance_check_chain_link",
    "finance_advance_chain_head",
    "finance_check_line",
    "finance_apply_lines",
    "finance_check_entry_balanced",
    "finance_check_balance_limits",
    "finance_guard_idempotency",
)


@pytest.mark.parametrize("function", SECURITY_DEFINER_TRIGGERS)
def test_service_cannot_attach_owner_trigger_functions_to_its_own_tables(
    database: Database, tenant: str, function: str
) -> None:
    # Attached to a temporary table of its own, an owner-run trigger function would write any
    # tenant's rows with row-level security off.
    with database.transaction(tenant) as conn:
        conn.execute("CREATE TEMP TABLE decoy (tenant_id text, account_id uuid) ON COMMIT DROP")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                f"CREATE TRIGGER decoy_fires BEFORE INSERT ON decoy"
                f" FOR EACH ROW EXECUTE FUNCTION public.{function}()"
            )


def test_owner_trigger_functions_refuse_a_foreign_table(database: Database) -> None:
    # Second guard: even attached by the owner, the function refuses to serve another table.
    with raises_sqlstate("FN007"), database.admin() as conn, conn.transaction():
        conn.execute("CREATE TEMP TABLE decoy (tenant_id text, id uuid, currency text,"
                     " debits_must_not_exceed_credits boolean,"
                     " credits_must_not_exceed_debits boolean)")  # fmt: skip
        conn.execute(
            "CREATE TRIGGER decoy_fires AFTER INSERT ON decoy"
            " FOR EACH ROW EXECUTE FUNCTION public.finance_open_balance()"
        )
        conn.execute("INSERT INTO decoy VALUES ('nobody', gen_random_uuid(), 'USD', false, false)")


def test_service_cannot_call_ledger_helper_functions(database: Database, tenant: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege), database.transaction(tenant) as conn:
        conn.execute("SELECT finance_require_table('public', 'x', 'x')")


def test_reset_role_gains_the_service_nothing(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash")
    with database.transaction(tenant) as conn:
        conn.execute("RESET ROLE")
        assert conn.execute("SELECT current_user").fetchone() == ("finance_service",)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "UPDATE balances SET debits_posted = 1 WHERE tenant_id = %s AND account_id = %s",
                (tenant, cash),
            )


def test_service_login_is_checked(database: Database, database_url: str) -> None:
    assert database.service_role_problem() is None
    as_owner = Database(database_url, pool_max=1)
    as_owner.open()
    try:
        problem = as_owner.service_role_problem()
    finally:
        as_owner.close()
    assert problem is not None
    assert "superuser" in problem


def test_read_only_database_refuses_every_write(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    frozen = Database(database.conninfo, admin_conninfo=database.admin_conninfo, read_only=True)
    frozen.open()
    try:
        with pytest.raises(errors.ReadOnlySqlTransaction):
            PostgresLedgerStore(frozen)(
                tenant,
                lambda tx: ledger.post_entry(
                    tx, transfer_draft(cash, equity, 5), uuid.uuid4(), now()
                ),
            )
        # Reads still work.
        balance = PostgresLedgerStore(frozen)(tenant, lambda tx: tx.get_balance(cash))
    finally:
        frozen.close()
    assert balance is not None
    assert balance.posting_sequence == 0
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 0


def test_posting_times_never_go_backwards(store: PostgresLedgerStore, tenant: str) -> None:
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    first = transfer(store, tenant, cash, equity, 5)
    # A request that read its clock long before it got the chain head.
    late = store(
        tenant,
        lambda tx: ledger.post_entry(
            tx, transfer_draft(cash, equity, 5), uuid.uuid4(), first.posted_at - timedelta(hours=1)
        ),
    )
    assert late.posted_at == first.posted_at
    assert late.sequence == first.sequence + 1


def test_database_refuses_an_entry_posted_before_its_predecessor(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    first = transfer(store, tenant, cash, equity, 5)
    with raises_sqlstate("FN008"), database.admin() as conn, conn.transaction():
        conn.execute("SELECT set_config('finance.tenant_id', %s, true)", (tenant,))
        head = conn.execute("SELECT * FROM finance_lock_chain_head()").fetchone()
        assert head is not None
        conn.execute(
            "INSERT INTO journal_entries (tenant_id, id, sequence, hash, prev_hash, posted_at,"
            " effective_date, type, line_count)"
            " VALUES (%s, gen_random_uuid(), %s, %s, %s, %s, current_date, 'ADJUSTMENT', 2)",
            (tenant, head[0], b"\x01" * 32, head[1], first.posted_at - timedelta(seconds=1)),
        )


def test_check_runs_on_one_snapshot(database: Database, store: PostgresLedgerStore) -> None:
    from finance.adapters.postgres.integrity import run_checks

    with database.admin() as conn:
        results = run_checks(conn, ["no-such-tenant"])
        assert [(r.check, r.problem) for r in results] == [("tenant_exists", "no such tenant")]
        # The connection is back to its defaults after the checks.
        assert conn.isolation_level is None
        assert conn.read_only is None
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_the_idempotency_guard_refuses_a_foreign_table(database: Database) -> None:
    # SECURITY DEFINER since 0007 (it looks the named entry up): the same second guard.
    with raises_sqlstate("FN007"), database.admin() as conn, conn.transaction():
        conn.execute("CREATE TEMP TABLE decoy (tenant_id text, entry_id uuid) ON COMMIT DROP")
        conn.execute(
            "CREATE TRIGGER decoy_fires BEFORE DELETE ON decoy"
            " FOR EACH ROW EXECUTE FUNCTION public.finance_guard_idempotency()"
        )
        conn.execute("INSERT INTO decoy VALUES ('nobody', gen_random_uuid())")
        conn.execute("DELETE FROM decoy")
