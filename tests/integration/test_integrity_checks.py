"""`finance check`: every check passes on a healthy ledger, and each kind of tampering done
around the triggers (`session_replication_role = replica`) is reported by the check made for
it, naming the entry or the account."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

import pytest

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.integrity import run_checks
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountType
from finance.services import ledger
from tests.integration.helpers import Conn, new_tenant, now, open_account, transfer

CHECK_NAMES = [
    "entries_balanced",
    "trial_balance",
    "balances_match_journal",
    "lines_match_entries",
    "hash_chain",
    "merkle_checkpoints",
]


@dataclass(frozen=True)
class Healthy:
    tenant: str
    accounts: dict[str, UUID]
    entries: list[UUID]


def healthy_ledger(store: PostgresLedgerStore, tenant: str) -> Healthy:
    """Four entries (the last a reversal) over three accounts."""
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)
    rent = open_account(store, tenant, "rent", AccountType.EXPENSE)
    first = transfer(store, tenant, cash, sales, 1_000, memo="first sale")
    second = transfer(store, tenant, rent, cash, 300, memo="rent")
    third = transfer(store, tenant, cash, sales, 450, memo="second sale")
    fourth = store(tenant, lambda tx: ledger.reverse_entry(tx, second.id, uuid.uuid4(), now()))
    return Healthy(
        tenant,
        {"cash": cash, "sales": sales, "rent": rent},
        [first.id, second.id, third.id, fourth.id],
    )


@pytest.fixture
def healthy(store: PostgresLedgerStore, tenant: str) -> Healthy:
    return healthy_ledger(store, tenant)


def problems(conn: Conn, tenant: str) -> dict[str, str | None]:
    results = run_checks(conn, [tenant])
    assert [r.check for r in results] == CHECK_NAMES
    assert {r.tenant_id for r in results} == {tenant}
    return {r.check: r.problem for r in results}


def tamper(database: Database, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Run statements as the owner with every trigger off (replication replica mode)."""
    with database.admin() as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for statement, params in statements:
            assert conn.execute(statement.encode(), params).rowcount >= 1, statement


def test_healthy_ledger_passes_every_check(database: Database, healthy: Healthy) -> None:
    with database.admin() as conn:
        results = run_checks(conn, [healthy.tenant])
        assert all(r.ok for r in results)
        assert problems(conn, healthy.tenant) == dict.fromkeys(CHECK_NAMES)


def test_empty_ledger_passes_every_check(database: Database, tenant: str) -> None:
    with database.admin() as conn:
        assert problems(conn, tenant) == dict.fromkeys(CHECK_NAMES)


def test_checks_run_for_the_tenants_named_only(
    database: Database, store: PostgresLedgerStore, healthy: Healthy
) -> None:
    broken = healthy_ledger(store, new_tenant(store))
    tamper(
        database,
        (
            "UPDATE balances SET credits_posted = credits_posted + 1"
            " WHERE tenant_id = %s AND account_id = %s",
            (broken.tenant, broken.accounts["sales"]),
        ),
    )
    with database.admin() as conn:
        assert problems(conn, healthy.tenant) == dict.fromkeys(CHECK_NAMES)
        both = run_checks(conn, [healthy.tenant, broken.tenant])
        failing = [(r.tenant_id, r.check) for r in both if not r.ok]
        assert failing == [(broken.tenant, "balances_match_journal")]
        # With no filter every tenant is checked, the broken one included.
        everyone = run_checks(conn, None)
        assert (broken.tenant, "balances_match_journal") in [
            (r.tenant_id, r.check) for r in everyone if not r.ok
        ]


def test_changed_line_amount(database: Database, healthy: Healthy) -> None:
    tamper(
        database,
        (
            "UPDATE journal_lines SET amount_minor = amount_minor + 7"
            " WHERE tenant_id = %s AND entry_id = %s AND side = 'credit'",
            (healthy.tenant, healthy.entries[2]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["entries_balanced"] == "entry 2 does not balance in USD (net -7 minor units)"
    assert found["trial_balance"] == "trial balance in USD is off by -7 minor units"
    problem = found["balances_match_journal"]
    assert problem is not None
    assert problem.startswith("balance of account sales is 0/1450")
    assert "replays to 0/1457" in problem
    assert found["hash_chain"] == (
        "chain breaks at entry 2: stored hash does not match the entry's contents"
    )


def test_changed_memo(database: Database, healthy: Healthy) -> None:
    tamper(
        database,
        (
            "UPDATE journal_entries SET memo = 'nothing to see' WHERE tenant_id = %s AND id = %s",
            (healthy.tenant, healthy.entries[1]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found == {
        "entries_balanced": None,
        "trial_balance": None,
        "balances_match_journal": None,
        "lines_match_entries": None,
        "hash_chain": "chain breaks at entry 1: stored hash does not match the entry's contents",
        "merkle_checkpoints": None,
    }


@pytest.mark.parametrize(
    ("column", "change"),
    [
        ("effective_date", "effective_date + 1"),
        ("metadata", """'{"approved_by": "nobody"}'::jsonb"""),
        ("posted_at", "posted_at - interval '1 hour'"),
        ("type", "'ADJUSTMENT'"),
    ],
)
def test_changed_entry_field_breaks_the_chain(
    database: Database, healthy: Healthy, column: str, change: str
) -> None:
    tamper(
        database,
        (
            f"UPDATE journal_entries SET {column} = {change} WHERE tenant_id = %s AND id = %s",
            (healthy.tenant, healthy.entries[2]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["hash_chain"] == (
        "chain breaks at entry 2: stored hash does not match the entry's contents"
    )
    assert found["entries_balanced"] is None


def test_changed_balance_row(database: Database, healthy: Healthy) -> None:
    tamper(
        database,
        (
            "UPDATE balances SET debits_posted = debits_posted + 5"
            " WHERE tenant_id = %s AND account_id = %s",
            (healthy.tenant, healthy.accounts["rent"]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["balances_match_journal"] == (
        "balance of account rent is 305/300 (debits/credits, 2 postings)"
        " but the journal replays to 300/300 (2 postings)"
    )
    assert [name for name, problem in found.items() if problem] == ["balances_match_journal"]


def test_changed_posting_sequence_only(database: Database, healthy: Healthy) -> None:
    tamper(
        database,
        (
            "UPDATE balances SET posting_sequence = posting_sequence + 1"
            " WHERE tenant_id = %s AND account_id = %s",
            (healthy.tenant, healthy.accounts["cash"]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    problem = found["balances_match_journal"]
    assert problem is not None
    assert problem.startswith("balance of account cash ")
    assert (
        "1750/300 (debits/credits, 5 postings) but the journal replays to 1750/300 (4 postings)"
        in problem
    )


def test_deleted_entry_in_the_middle(database: Database, healthy: Healthy) -> None:
    tamper(
        database,
        (
            "DELETE FROM journal_lines WHERE tenant_id = %s AND entry_id = %s",
            (healthy.tenant, healthy.entries[2]),
        ),
        (
            "DELETE FROM journal_entries WHERE tenant_id = %s AND id = %s",
            (healthy.tenant, healthy.entries[2]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["hash_chain"] == "chain breaks at entry 2: expected entry 2, found 3"
    assert found["entries_balanced"] is None
    assert found["trial_balance"] is None
    problem = found["balances_match_journal"]
    assert problem is not None
    assert problem.startswith("balance of account cash is 1750/300")
    assert "replays to 1300/300" in problem


def test_deleted_last_entry(database: Database, healthy: Healthy) -> None:
    tamper(
        database,
        (
            "DELETE FROM journal_lines WHERE tenant_id = %s AND entry_id = %s",
            (healthy.tenant, healthy.entries[3]),
        ),
        (
            "DELETE FROM journal_entries WHERE tenant_id = %s AND id = %s",
            (healthy.tenant, healthy.entries[3]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["hash_chain"] == "chain head: ledger head says 4 entries, the chain has 3"
    assert found["balances_match_journal"] is not None
    assert "account cash" in found["balances_match_journal"]


def test_deleted_line_only(database: Database, healthy: Healthy) -> None:
    tamper(
        database,
        (
            "DELETE FROM journal_lines WHERE tenant_id = %s AND entry_id = %s AND side = 'debit'",
            (healthy.tenant, healthy.entries[0]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["entries_balanced"] == "entry 0 does not balance in USD (net -1000 minor units)"
    assert found["hash_chain"] == (
        "chain breaks at entry 0: stored hash does not match the entry's contents"
    )


def test_relinked_chain_is_reported(database: Database, healthy: Healthy) -> None:
    """Entry 1 re-pointed at a forged predecessor hash: its link no longer holds."""
    tamper(
        database,
        (
            "UPDATE journal_entries SET prev_hash = %s WHERE tenant_id = %s AND id = %s",
            (b"\x07" * 32, healthy.tenant, healthy.entries[1]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["hash_chain"] == (
        "chain breaks at entry 1: prev_hash does not link to the previous entry"
    )


def test_moved_ledger_head(database: Database, healthy: Healthy) -> None:
    tamper(
        database,
        (
            "UPDATE ledger_heads SET head_hash = genesis_hash WHERE tenant_id = %s",
            (healthy.tenant,),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["hash_chain"] == "chain head: ledger head hash is not the last hash"


def test_changed_account_currency_is_reported(database: Database, healthy: Healthy) -> None:
    tamper(
        database,
        (
            "UPDATE accounts SET currency = 'EUR' WHERE tenant_id = %s AND id = %s",
            (healthy.tenant, healthy.accounts["rent"]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["lines_match_entries"] == (
        "line 0 of entry 1 (account rent) disagrees with its entry, its account,"
        " or the replay of the account's earlier lines"
    )


def test_changed_line_count_is_reported(database: Database, healthy: Healthy) -> None:
    tamper(
        database,
        (
            "UPDATE journal_entries SET line_count = 3 WHERE tenant_id = %s AND id = %s",
            (healthy.tenant, healthy.entries[2]),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["lines_match_entries"] == "entry 2 claims 3 lines but has 2"


def test_changed_genesis_is_reported(database: Database, healthy: Healthy) -> None:
    # Re-deriving the whole chain from a forged genesis would pass the link checks; the genesis
    # itself is recomputed from the ledger id and its creation time.
    tamper(
        database,
        (
            "UPDATE ledger_heads SET created_at = created_at + interval '1 second'"
            " WHERE tenant_id = %s",
            (healthy.tenant,),
        ),
    )
    with database.admin() as conn:
        found = problems(conn, healthy.tenant)
    assert found["hash_chain"] == "genesis hash does not match the ledger id and creation time"
