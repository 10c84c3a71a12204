"""The database is the second line of defence: its triggers and constraints refuse a broken
ledger even on the owner (superuser) connection, where privileges and RLS do not apply, and a
refused write leaves nothing behind."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore, PostgresLedgerTx
from finance.api.schemas import entry_response
from finance.domain.accounts import AccountType, Side
from finance.domain.entries import EntryDraft, PostedEntry, PostedLine, line_postings
from finance.domain.errors import InvariantViolation
from finance.proofs.chain import chain_hash, entry_body
from finance.services import batches, ledger
from finance.services.idempotency import (
    IdempotentRequest,
    run_idempotent,
    run_idempotent_posting,
)
from finance.services.ports import LedgerTransaction
from tests.integration.helpers import (
    DAY,
    EUR,
    USD,
    RawLine,
    count_rows,
    insert_raw_entry,
    insert_raw_line,
    now,
    open_account,
    raises_sqlstate,
    scalar,
    tenant_snapshot,
    transfer,
    transfer_draft,
)


@dataclass(frozen=True)
class Book:
    tenant: str
    cash: UUID
    revenue: UUID
    first: PostedEntry


@pytest.fixture
def book(store: PostgresLedgerStore, tenant: str) -> Book:
    """A tenant with two accounts and one posted entry (sequence 0)."""
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    revenue = open_account(store, tenant, "revenue", AccountType.REVENUE)
    first = transfer(store, tenant, cash, revenue, 1_000)
    return Book(tenant, cash, revenue, first)


def balanced(book: Book, amount: int = 250) -> list[RawLine]:
    return [RawLine(book.cash, Side.DEBIT, amount), RawLine(book.revenue, Side.CREDIT, amount)]


# Balance and line count, checked at COMMIT ---------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "line_count"),
    [
        pytest.param([(Side.DEBIT, 100), (Side.CREDIT, 90)], None, id="debits-exceed-credits"),
        pytest.param([(Side.DEBIT, 90), (Side.CREDIT, 100)], None, id="credits-exceed-debits"),
        pytest.param([(Side.DEBIT, 100), (Side.DEBIT, 100)], None, id="two-debits"),
        pytest.param([(Side.DEBIT, 100), (Side.CREDIT, 100)], 3, id="claims-more-lines"),
    ],
)
def test_unbalanced_or_miscounted_entry_fails_at_commit_and_writes_nothing(
    database: Database,
    book: Book,
    lines: list[tuple[Side, int]],
    line_count: int | None,
) -> None:
    accounts = [book.cash, book.revenue, book.revenue]
    raw = [RawLine(accounts[i], side, amount) for i, (side, amount) in enumerate(lines)]
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        reached_commit = False
        with raises_sqlstate("FN003"), conn.transaction():
            insert_raw_entry(conn, book.tenant, raw, line_count=line_count)
            # Every statement was accepted: the check is deferred to COMMIT.
            reached_commit = True
        assert reached_commit
        assert tenant_snapshot(conn, book.tenant) == before


def test_line_beyond_the_entrys_line_count_is_refused_when_inserted(
    database: Database, book: Book
) -> None:
    # An entry has as many line slots as it claims lines; a third line of a two-line entry has
    # no slot (so no line can ever be added to a committed entry either).
    raw = [
        RawLine(book.cash, Side.DEBIT, 100),
        RawLine(book.revenue, Side.CREDIT, 60),
        RawLine(book.revenue, Side.CREDIT, 40),
    ]
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        with raises_sqlstate("FN003") as refused, conn.transaction():
            insert_raw_entry(conn, book.tenant, raw, line_count=2)
        assert "line 2 does not fit entry" in str(refused.value)
        assert tenant_snapshot(conn, book.tenant) == before


def test_entry_with_a_single_line_is_refused(database: Database, book: Book) -> None:
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        # line_count >= 2 is a CHECK on the entry row itself.
        with raises_sqlstate("23514"), conn.transaction():
            insert_raw_entry(conn, book.tenant, [RawLine(book.cash, Side.DEBIT, 5)])
        assert tenant_snapshot(conn, book.tenant) == before


def test_correct_raw_entry_is_accepted(database: Database, book: Book) -> None:
    """Control for the refusals in this module: the same hand-typed SQL, balanced, commits."""
    with database.admin() as conn:
        with conn.transaction():
            entry_id = insert_raw_entry(conn, book.tenant, balanced(book, 250))
        assert (
            scalar(
                conn,
                "SELECT sequence FROM journal_entries WHERE tenant_id = %s AND id = %s",
                (book.tenant, entry_id),
            )
            == 1
        )
        assert conn.execute(
            "SELECT debits_posted, credits_posted, posting_sequence FROM balances"
            " WHERE tenant_id = %s AND account_id = %s",
            (book.tenant, book.cash),
        ).fetchone() == (1_250, 0, 2)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([(Side.DEBIT, 50)], id="one-more-line"),
        pytest.param([(Side.DEBIT, 50), (Side.CREDIT, 50)], id="a-balanced-pair"),
    ],
)
def test_line_added_to_a_committed_entry_is_refused(
    database: Database, book: Book, extra: list[tuple[Side, int]]
) -> None:
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        with raises_sqlstate("FN003"), conn.transaction():
            for offset, (side, amount) in enumerate(extra):
                account = book.cash if side is Side.DEBIT else book.revenue
                insert_raw_line(
                    conn,
                    book.tenant,
                    book.first.id,
                    len(book.first.lines) + offset,
                    RawLine(account, side, amount),
                    book.first.sequence,
                )
        assert tenant_snapshot(conn, book.tenant) == before


# Posted rows are immutable -------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entries SET memo = 'rewritten' WHERE tenant_id = %(t)s",
        "UPDATE journal_entries SET effective_date = effective_date + 1 WHERE tenant_id = %(t)s",
        "DELETE FROM journal_entries WHERE tenant_id = %(t)s",
        "UPDATE journal_lines SET amount_minor = amount_minor + 1 WHERE tenant_id = %(t)s",
        "UPDATE journal_lines SET side = 'credit' WHERE tenant_id = %(t)s AND side = 'debit'",
        "DELETE FROM journal_lines WHERE tenant_id = %(t)s",
    ],
)
def test_update_or_delete_of_posted_rows_is_refused_for_the_owner(
    database: Database, book: Book, statement: str
) -> None:
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        journal = conn.execute(
            "SELECT e.memo, e.effective_date, l.line_number, l.side, l.amount_minor"
            " FROM journal_entries e JOIN journal_lines l"
            "   ON l.tenant_id = e.tenant_id AND l.entry_id = e.id"
            " WHERE e.tenant_id = %s ORDER BY l.line_number",
            (book.tenant,),
        ).fetchall()
        with raises_sqlstate("FN004"):
            conn.execute(statement.encode(), {"t": book.tenant})
        assert tenant_snapshot(conn, book.tenant) == before
        assert (
            conn.execute(
                "SELECT e.memo, e.effective_date, l.line_number, l.side, l.amount_minor"
                " FROM journal_entries e JOIN journal_lines l"
                "   ON l.tenant_id = e.tenant_id AND l.entry_id = e.id"
                " WHERE e.tenant_id = %s ORDER BY l.line_number",
                (book.tenant,),
            ).fetchall()
            == journal
        )


@pytest.mark.parametrize(
    "table",
    ["journal_lines", "balances", "idempotency_keys", "journal_entries CASCADE"],
)
def test_truncate_of_ledger_tables_is_refused(database: Database, book: Book, table: str) -> None:
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        # Rolled back whatever happens: these tables are shared by every tenant of the worker.
        with raises_sqlstate("FN004"), conn.transaction(force_rollback=True):
            conn.execute(f"TRUNCATE {table}".encode())
        assert tenant_snapshot(conn, book.tenant) == before
        assert before["journal_lines"] == 2


def test_truncate_of_journal_entries_is_refused(database: Database, book: Book) -> None:
    with (
        database.admin() as conn,
        pytest.raises(psycopg.Error),
        conn.transaction(force_rollback=True),
    ):
        conn.execute("TRUNCATE journal_entries")
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", book.tenant) == 1


# The chain position -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sequence_offset", "prev_hash"),
    [
        pytest.param(1, None, id="skips-a-sequence"),
        pytest.param(-1, None, id="reuses-a-sequence"),
        pytest.param(0, bytes(32), id="wrong-prev-hash"),
        pytest.param(0, b"\x01" * 32, id="other-prev-hash"),
    ],
)
def test_entry_off_the_chain_is_refused(
    database: Database, book: Book, sequence_offset: int, prev_hash: bytes | None
) -> None:
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        with raises_sqlstate("FN001"), conn.transaction():
            insert_raw_entry(
                conn,
                book.tenant,
                balanced(book),
                sequence_offset=sequence_offset,
                prev_hash=prev_hash,
            )
        assert tenant_snapshot(conn, book.tenant) == before


def test_reversal_of_a_reversal_is_refused(
    database: Database, store: PostgresLedgerStore, book: Book
) -> None:
    reversal = store(
        book.tenant, lambda tx: ledger.reverse_entry(tx, book.first.id, uuid.uuid4(), now())
    )
    assert reversal.reversal_of == book.first.id
    mirror = [
        RawLine(book.cash, Side.DEBIT, 1_000),
        RawLine(book.revenue, Side.CREDIT, 1_000),
    ]
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        with raises_sqlstate("FN002"), conn.transaction():
            insert_raw_entry(conn, book.tenant, mirror, reversal_of=reversal.id)
        assert tenant_snapshot(conn, book.tenant) == before


def test_second_reversal_by_raw_sql_is_refused(
    database: Database, store: PostgresLedgerStore, book: Book
) -> None:
    store(book.tenant, lambda tx: ledger.reverse_entry(tx, book.first.id, uuid.uuid4(), now()))
    mirror = [
        RawLine(book.revenue, Side.DEBIT, 1_000),
        RawLine(book.cash, Side.CREDIT, 1_000),
    ]
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        with pytest.raises(errors.UniqueViolation) as info, conn.transaction():
            insert_raw_entry(conn, book.tenant, mirror, reversal_of=book.first.id)
        assert info.value.diag.constraint_name == "journal_entries_reversed_once"
        assert tenant_snapshot(conn, book.tenant) == before


# Lines must fit their account ----------------------------------------------------------------


def test_line_on_a_closed_account_is_refused(
    database: Database, store: PostgresLedgerStore, book: Book
) -> None:
    store(book.tenant, lambda tx: ledger.close_account(tx, book.revenue, now()))
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        with raises_sqlstate("FN005"), conn.transaction():
            insert_raw_entry(conn, book.tenant, balanced(book))
        assert tenant_snapshot(conn, book.tenant) == before


def test_line_in_another_currency_than_its_account_is_refused(
    database: Database, store: PostgresLedgerStore, book: Book
) -> None:
    euros = open_account(store, book.tenant, "euros", AccountType.ASSET, currency=EUR)
    lines = [RawLine(euros, Side.DEBIT, 70, EUR), RawLine(book.revenue, Side.CREDIT, 70, EUR)]
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        with raises_sqlstate("FN005"), conn.transaction():
            insert_raw_entry(conn, book.tenant, lines)
        assert tenant_snapshot(conn, book.tenant) == before


def test_line_on_an_unknown_account_is_refused(database: Database, book: Book) -> None:
    lines = [RawLine(uuid.uuid4(), Side.DEBIT, 70), RawLine(book.revenue, Side.CREDIT, 70)]
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        with raises_sqlstate("FN005"), conn.transaction():
            insert_raw_entry(conn, book.tenant, lines)
        assert tenant_snapshot(conn, book.tenant) == before


# No overdraft, even around the domain ---------------------------------------------------------


@pytest.fixture
def wallet_book(store: PostgresLedgerStore, tenant: str) -> tuple[str, UUID, UUID]:
    """A customer wallet (liability that must not go into debit) funded with 100."""
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    wallet = open_account(
        store, tenant, "wallet", AccountType.LIABILITY, debits_must_not_exceed_credits=True
    )
    transfer(store, tenant, cash, wallet, 100)
    return tenant, cash, wallet


def test_no_overdraft_limit_refuses_an_overdraft_by_raw_sql_at_commit(
    database: Database, wallet_book: tuple[str, UUID, UUID]
) -> None:
    tenant, cash, wallet = wallet_book
    lines = [RawLine(wallet, Side.DEBIT, 101), RawLine(cash, Side.CREDIT, 101)]
    with database.admin() as conn:
        before = tenant_snapshot(conn, tenant)
        reached_commit = False
        with raises_sqlstate("FN006"), conn.transaction():
            insert_raw_entry(conn, tenant, lines)
            reached_commit = True
        assert reached_commit
        assert tenant_snapshot(conn, tenant) == before
        # Exactly the funds on the wallet may still go.
        with conn.transaction():
            insert_raw_entry(
                conn, tenant, [RawLine(wallet, Side.DEBIT, 100), RawLine(cash, Side.CREDIT, 100)]
            )
        assert conn.execute(
            "SELECT debits_posted, credits_posted FROM balances"
            " WHERE tenant_id = %s AND account_id = %s",
            (tenant, wallet),
        ).fetchone() == (100, 100)


def test_no_overdraft_limit_holds_per_transaction_not_per_line(
    database: Database, wallet_book: tuple[str, UUID, UUID]
) -> None:
    """The wallet holds 100; an entry that first debits it 130 and later credits it 30 never
    leaves it overdrawn, whatever the order of the lines."""
    tenant, cash, wallet = wallet_book
    lines = [
        RawLine(wallet, Side.DEBIT, 130),
        RawLine(cash, Side.CREDIT, 130),
        RawLine(cash, Side.DEBIT, 30),
        RawLine(wallet, Side.CREDIT, 30),
    ]
    with database.admin() as conn:
        with conn.transaction():
            insert_raw_entry(conn, tenant, lines)
        assert conn.execute(
            "SELECT debits_posted, credits_posted FROM balances"
            " WHERE tenant_id = %s AND account_id = %s",
            (tenant, wallet),
        ).fetchone() == (130, 130)


def test_balance_check_refuses_an_overdraft_when_the_domain_is_bypassed(
    database: Database, store: PostgresLedgerStore, wallet_book: tuple[str, UUID, UUID]
) -> None:
    """The service's own adapter, skipping `book()`: the limit trigger still holds the line."""
    tenant, cash, wallet = wallet_book

    def overdraw(tx: LedgerTransaction) -> PostedEntry:
        head = tx.lock_chain_head()
        entry_id, posted_at = uuid.uuid4(), now()
        postings = [(wallet, Side.DEBIT, 500, USD), (cash, Side.CREDIT, 500, USD)]
        # Correct running totals (the database checks them), for an entry book() would refuse.
        states = tx.lock_accounts([wallet, cash])
        running = line_postings(transfer_draft(wallet, cash, 500), states)
        body = entry_body(
            ledger_id=tenant,
            sequence=head.next_sequence,
            entry_uuid=entry_id,
            posted_at=posted_at,
            effective_date=DAY,
            entry_type="PAYOUT",
            memo=None,
            source=None,
            source_id=None,
            reversal_of=None,
            postings=postings,
            metadata={},
        )
        entry = PostedEntry(
                    id=entry_id,
                    tenant_id=tenant,
                    sequence=head.next_sequence,
                    hash=chain_hash(head.head_hash, body),
                    prev_hash=head.head_hash,
                    posted_at=posted_at,
                    effective_date=DAY,
                    type="PAYOUT",
                    memo=None,
                    source=None,
                    source_id=None,
                    metadata={},
                    reversal_of=None,
                    lines=tuple(
                        PostedLine(*p, account_posting_sequence=r.sequence,
                                   debits_after=r.debits_after, credits_after=r.credits_after)
                        for p, r in zip(postings, running, strict=True)
                    ),
                )  # fmt: skip
        tx.insert_entries([entry])
        return entry

    with database.admin() as conn:
        before = tenant_snapshot(conn, tenant)
    with pytest.raises(InvariantViolation, match="FN006"):
        store(tenant, overdraw)
    with database.admin() as conn:
        assert tenant_snapshot(conn, tenant) == before


# Idempotency records and accounts -------------------------------------------------------------


def test_completed_idempotency_record_is_permanent(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    request = IdempotentRequest("order-42", bytes(range(32)))
    result = run_idempotent(store, tenant, request, lambda tx: (201, b'{"ok":true}'))
    assert (result.status_code, result.body, result.replayed) == (201, b'{"ok":true}', False)
    select = (
        "SELECT request_hash, status_code, response_body, completed_at IS NOT NULL"
        " FROM idempotency_keys WHERE tenant_id = %s AND key = 'order-42'"
    )
    with database.admin() as conn:
        stored = conn.execute(select, (tenant,)).fetchone()
        assert stored == (bytes(range(32)), 201, b'{"ok":true}', True)
        for statement in (
            "UPDATE idempotency_keys SET response_body = 'forged' WHERE tenant_id = %s",
            "UPDATE idempotency_keys SET status_code = 500 WHERE tenant_id = %s",
            "UPDATE idempotency_keys SET key = 'other' WHERE tenant_id = %s",
            "DELETE FROM idempotency_keys WHERE tenant_id = %s",
        ):
            with raises_sqlstate("FN004"):
                conn.execute(statement.encode(), (tenant,))
        assert conn.execute(select, (tenant,)).fetchone() == stored


def test_an_idempotency_record_naming_its_entry_is_permanent(
    database: Database, store: PostgresLedgerStore, book: Book
) -> None:
    """A posting's key is complete from its insert: nothing about it may change, it cannot be
    deleted (not even through the batch's release function), nor hold a body besides."""

    def post(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
        return ledger.post_entry(tx, transfer_draft(book.cash, book.revenue, 5), entry_id, now())

    request = IdempotentRequest("order-43", bytes(range(32)))
    run_idempotent_posting(store, book.tenant, request, post, lambda e: (201, b"{}"))
    select = (
        "SELECT request_hash, entry_id, status_code, response_body, completed_at"
        " FROM idempotency_keys WHERE tenant_id = %s AND key = 'order-43'"
    )
    with database.admin() as conn:
        stored = conn.execute(select, (book.tenant,)).fetchone()
        assert stored is not None
        assert stored[2:] == (None, None, None)
        for statement in (
            "UPDATE idempotency_keys SET entry_id = NULL WHERE tenant_id = %s",
            "UPDATE idempotency_keys SET response_body = 'forged' WHERE tenant_id = %s",
            "UPDATE idempotency_keys SET request_hash = '\\x00' WHERE tenant_id = %s",
            "DELETE FROM idempotency_keys WHERE tenant_id = %s",
        ):
            with raises_sqlstate("FN004"):
                conn.execute(statement.encode(), (book.tenant,))
        assert conn.execute(select, (book.tenant,)).fetchone() == stored

    def release(tx: LedgerTransaction) -> None:
        tx.release_idempotency_keys(["order-43"])

    with pytest.raises(InvariantViolation, match="had not claimed"):
        store(book.tenant, release)
    with database.admin() as conn:
        assert conn.execute(select, (book.tenant,)).fetchone() == stored
        with pytest.raises(errors.CheckViolation):
            conn.execute(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, entry_id,"
                " status_code, response_body, completed_at)"
                " VALUES (%s, 'both', %s, %s, 201, 'x', now())",
                (book.tenant, bytes(32), book.first.id),
            )


def test_claimed_idempotency_record_cannot_change_its_request(
    database: Database, tenant: str
) -> None:
    with database.admin() as conn:
        conn.execute(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash) VALUES (%s, 'k', %s)",
            (tenant, bytes(32)),
        )
        with raises_sqlstate("FN004"):
            conn.execute(
                "UPDATE idempotency_keys SET request_hash = %s WHERE tenant_id = %s",
                (b"\x01" * 32, tenant),
            )
        # Completing a claimed record is the one change allowed.
        conn.execute(
            "UPDATE idempotency_keys SET status_code = 200, response_body = 'x',"
            " completed_at = now() WHERE tenant_id = %s",
            (tenant,),
        )
        assert (
            scalar(conn, "SELECT status_code FROM idempotency_keys WHERE tenant_id = %s", (tenant,))
            == 200
        )


@pytest.mark.parametrize(
    "assignment",
    [
        "code = 'renamed'",
        "type = 'liability'",
        "currency = 'EUR'",
        "debits_must_not_exceed_credits = true",
        "created_at = created_at - interval '1 day'",
    ],
)
def test_account_identity_cannot_change(database: Database, book: Book, assignment: str) -> None:
    select = (
        "SELECT code, type, currency, debits_must_not_exceed_credits, created_at FROM accounts"
        " WHERE tenant_id = %s AND id = %s"
    )
    with database.admin() as conn:
        before = conn.execute(select, (book.tenant, book.cash)).fetchone()
        with raises_sqlstate("FN004"):
            conn.execute(
                f"UPDATE accounts SET {assignment} WHERE tenant_id = %s AND id = %s".encode(),
                (book.tenant, book.cash),
            )
        assert conn.execute(select, (book.tenant, book.cash)).fetchone() == before


def test_account_name_may_change(database: Database, book: Book) -> None:
    with database.admin() as conn:
        conn.execute(
            "UPDATE accounts SET name = 'Till' WHERE tenant_id = %s AND id = %s",
            (book.tenant, book.cash),
        )
        assert (
            scalar(
                conn,
                "SELECT name FROM accounts WHERE tenant_id = %s AND id = %s",
                (book.tenant, book.cash),
            )
            == "Till"
        )


def test_closed_account_stays_closed(
    database: Database, store: PostgresLedgerStore, book: Book
) -> None:
    store(book.tenant, lambda tx: ledger.close_account(tx, book.revenue, now()))
    select = "SELECT closed_at FROM accounts WHERE tenant_id = %s AND id = %s"
    with database.admin() as conn:
        closed_at = scalar(conn, select, (book.tenant, book.revenue))
        assert closed_at is not None
        for assignment in ("closed_at = NULL", "closed_at = closed_at + interval '1 second'"):
            with raises_sqlstate("FN004"):
                conn.execute(
                    f"UPDATE accounts SET {assignment} WHERE tenant_id = %s AND id = %s".encode(),
                    (book.tenant, book.revenue),
                )
        assert scalar(conn, select, (book.tenant, book.revenue)) == closed_at
        with raises_sqlstate("FN004"):
            conn.execute(
                "DELETE FROM accounts WHERE tenant_id = %s AND id = %s",
                (book.tenant, book.revenue),
            )


# Found while writing these tests: gaps in the second line of defence ---------------------------


def test_truncate_of_ledger_heads_is_refused(database: Database, book: Book) -> None:
    """A row of `ledger_heads` cannot be deleted (trigger `ledger_heads_undeletable`), but the
    whole table could be truncated: every tenant's chain head gone in one statement. The
    journal tables have a BEFORE TRUNCATE trigger for this; ledger_heads has none."""
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        try:
            # Rolled back whatever happens: this table is shared by every tenant of the worker.
            with raises_sqlstate("FN004"), conn.transaction(force_rollback=True):
                conn.execute("TRUNCATE ledger_heads")
        finally:
            assert tenant_snapshot(conn, book.tenant) == before


@pytest.mark.parametrize(
    ("entry_sequence_offset", "effective_date"),
    [
        pytest.param(-1, DAY, id="line-claims-an-earlier-sequence"),
        pytest.param(0, date(2000, 1, 1), id="line-claims-another-effective-date"),
    ],
)
def test_line_must_carry_its_entrys_sequence_and_date(
    database: Database,
    store: PostgresLedgerStore,
    book: Book,
    entry_sequence_offset: int,
    effective_date: date,
) -> None:
    """`journal_lines.entry_sequence` and `.effective_date` copy the entry's values and are what
    point-in-time balances read. Nothing in the database ties them to the entry, and no check
    of `finance check` compares them, so a hand-typed entry whose lines lie about them commits
    and silently changes `balance_as_of_sequence` / `balance_as_of_date`."""
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        with raises_sqlstate("FN003"), conn.transaction():
            insert_raw_entry(
                conn,
                book.tenant,
                balanced(book, 7),
                line_sequence_offset=entry_sequence_offset,
                line_effective_date=effective_date,
            )
        assert tenant_snapshot(conn, book.tenant) == before
    as_of_first = store(
        book.tenant, lambda tx: ledger.account_balance(tx, book.cash, as_of_sequence=0)
    )
    assert as_of_first.balance.debits_posted == 1_000


# Lines continue their account's postings ------------------------------------------------------


@pytest.mark.parametrize(
    "offsets",
    [
        pytest.param((1, 0, 0), id="skips-a-posting-number"),
        pytest.param((-1, 0, 0), id="reuses-a-posting-number"),
        pytest.param((0, 1, 0), id="debits-after-off-by-one"),
        pytest.param((0, 0, -1), id="credits-after-off-by-one"),
    ],
)
def test_line_that_does_not_continue_its_account_is_refused(
    database: Database, book: Book, offsets: tuple[int, int, int]
) -> None:
    """The writer states each line's running state of its account (migration 0007); the
    database checks it against the account's previous line before anything is written."""
    with database.admin() as conn:
        before = tenant_snapshot(conn, book.tenant)
        with raises_sqlstate("FN012"), conn.transaction():
            entry_id = insert_raw_entry(conn, book.tenant, [], line_count=2)
            insert_raw_line(
                conn, book.tenant, entry_id, 0, RawLine(book.cash, Side.DEBIT, 5), 1,
                running_offsets=offsets,
            )  # fmt: skip
        assert tenant_snapshot(conn, book.tenant) == before


def test_lines_must_continue_the_balance_row(database: Database, book: Book) -> None:
    """Each line continues the previous line; the statement trigger also requires the run to
    start right after the balance it moves, so a balance that drifted from its lines (written
    around the triggers) stops every posting to the account instead of being built upon."""
    with database.admin() as conn:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(
                "UPDATE balances SET posting_sequence = posting_sequence + 1"
                " WHERE tenant_id = %s AND account_id = %s",
                (book.tenant, book.cash),
            )
        before = tenant_snapshot(conn, book.tenant)
        with raises_sqlstate("FN012") as refused, conn.transaction():
            entry_id = insert_raw_entry(conn, book.tenant, [], line_count=2)
            # The line continues the account's last line (so the row check passes), which is
            # not where the drifted balance says the account is.
            insert_raw_line(
                conn, book.tenant, entry_id, 0, RawLine(book.cash, Side.DEBIT, 3), 1,
                running_offsets=(-1, 0, 0),
            )  # fmt: skip
        assert "do not continue their balances" in str(refused.value)
        assert tenant_snapshot(conn, book.tenant) == before


def test_a_batch_moves_each_balance_and_the_head_once(
    store: PostgresLedgerStore, book: Book
) -> None:
    """Many entries in one statement: one new version of the head row and of each balance,
    not one per entry (the quadratic cost migration 0007 removed)."""

    def transfer_of(amount: int) -> Callable[[date], EntryDraft]:
        return lambda _: transfer_draft(book.cash, book.revenue, amount)

    entries = [
        batches.BatchEntry(f"many-{amount}", bytes(32), transfer_of(amount))
        for amount in range(1, 51)
    ]

    def post_many(conn: psycopg.Connection[Any]) -> tuple[int, dict[str, int]]:
        # These counters include the backend's earlier transactions not yet flushed: a delta.
        before = _updates_so_far(conn)
        results = batches.post_batch(
            PostgresLedgerTx(conn, book.tenant), entries, now(), entries_max=50,
            respond=entry_response,
        )  # fmt: skip
        after = _updates_so_far(conn)
        created = sum(result.status is batches.BatchStatus.CREATED for result in results)
        return created, {table: after[table] - before.get(table, 0) for table in after}

    created, updates = store.database.run(book.tenant, post_many)
    assert created == 50
    assert updates == {"ledger_heads": 1, "balances": 2}
    balance = store(book.tenant, lambda tx: tx.get_balance(book.cash))
    assert balance is not None
    assert (balance.debits_posted, balance.posting_sequence) == (1_000 + sum(range(1, 51)), 51)


def _updates_so_far(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT relname, n_tup_upd FROM pg_stat_xact_user_tables"
        " WHERE relname IN ('ledger_heads', 'balances')"
    ).fetchall()
    return {name: int(count) for name, count in rows}
