"""Shared helpers for the integration tests: tenants, accounts, postings, raw SQL, threads.

Everything runs against the worker's real PostgreSQL database. Tests isolate themselves by
tenant; raw SQL helpers run on the owner (superuser) connection from `Database.admin()`, which
bypasses row-level security and privileges, so only the triggers and constraints stand between
it and the tables.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import pytest

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore, PostgresLedgerTx
from finance.domain.accounts import AccountSpec, AccountType, Side
from finance.domain.entries import EntryDraft, Line, PostedEntry
from finance.proofs.chain import chain_hash, entry_body
from finance.services import ledger
from finance.services.ports import LedgerTransaction, TransactionRunner

T = TypeVar("T")
Conn = psycopg.Connection[Any]

USD = "USD"
EUR = "EUR"
DAY = date(2024, 6, 1)

# Every table that holds tenant rows, with the column naming the tenant.
TENANT_TABLES: tuple[tuple[str, str], ...] = (
    ("tenants", "id"),
    ("ledger_heads", "tenant_id"),
    ("accounts", "tenant_id"),
    ("balances", "tenant_id"),
    ("journal_entries", "tenant_id"),
    ("journal_lines", "tenant_id"),
    ("idempotency_keys", "tenant_id"),
)


def now() -> datetime:
    return datetime.now(UTC)


def new_tenant(store: PostgresLedgerStore) -> str:
    """A fresh tenant with an empty ledger (for tests that need more than one)."""
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    store(tenant_id, lambda tx: ledger.create_tenant(tx, "Integration tenant", now()))
    return tenant_id


def open_account(
    store: PostgresLedgerStore,
    tenant: str,
    code: str,
    account_type: AccountType = AccountType.ASSET,
    *,
    currency: str = USD,
    debits_must_not_exceed_credits: bool = False,
    credits_must_not_exceed_debits: bool = False,
) -> UUID:
    spec = AccountSpec(
        code=code,
        name=code.title(),
        type=account_type,
        currency=currency,
        debits_must_not_exceed_credits=debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=credits_must_not_exceed_debits,
    )
    account = store(tenant, lambda tx: ledger.open_account(tx, spec, uuid.uuid4(), now()))
    return account.id


def transfer_draft(
    debit: UUID,
    credit: UUID,
    amount: int,
    *,
    currency: str = USD,
    effective_date: date = DAY,
    memo: str | None = None,
) -> EntryDraft:
    return EntryDraft(
        lines=(
            Line(debit, Side.DEBIT, amount, currency),
            Line(credit, Side.CREDIT, amount, currency),
        ),
        effective_date=effective_date,
        memo=memo,
    )


def post(store: PostgresLedgerStore, tenant: str, draft: EntryDraft) -> PostedEntry:
    return store(tenant, lambda tx: ledger.post_entry(tx, draft, uuid.uuid4(), now()))


def transfer(
    store: PostgresLedgerStore,
    tenant: str,
    debit: UUID,
    credit: UUID,
    amount: int,
    *,
    effective_date: date = DAY,
    memo: str | None = None,
) -> PostedEntry:
    draft = transfer_draft(debit, credit, amount, effective_date=effective_date, memo=memo)
    return post(store, tenant, draft)


def counting_key_writes(database: Database, counts: dict[str, int]) -> TransactionRunner:
    """The store, noting in `counts` the rows its transaction inserted, updated and deleted in
    idempotency_keys. The backend's counters may still hold earlier transactions' counts (they
    are flushed when it is idle), but do not move during one: the difference is this one's."""

    def key_writes(conn: Conn) -> tuple[int, int, int]:
        row = conn.execute(
            "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables"
            " WHERE relname = 'idempotency_keys'"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def run(tenant_id: str, work: Callable[[LedgerTransaction], T]) -> T:
        def inner(conn: Conn) -> T:
            before = key_writes(conn)
            result = work(PostgresLedgerTx(conn, tenant_id))
            after = key_writes(conn)
            names = ("inserted", "updated", "deleted")
            counts.update({name: a - b for name, a, b in zip(names, after, before, strict=True)})
            return result

        return database.run(tenant_id, inner)

    return run


# Raw SQL ----------------------------------------------------------------------------------


def scalar(conn: Conn, query: str, params: Sequence[object] = ()) -> Any:
    row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return row[0]


def count_rows(conn: Conn, table: str, column: str, tenant: str) -> int:
    return int(scalar(conn, f"SELECT count(*) FROM {table} WHERE {column} = %s", (tenant,)))


def tenant_snapshot(conn: Conn, tenant: str) -> dict[str, object]:
    """Row counts of every tenant table, the chain head and every balance: what "nothing was
    written" compares against."""
    snap: dict[str, object] = {
        table: count_rows(conn, table, column, tenant) for table, column in TENANT_TABLES
    }
    snap["head"] = conn.execute(
        "SELECT next_sequence, head_hash FROM ledger_heads WHERE tenant_id = %s", (tenant,)
    ).fetchone()
    snap["balances"] = conn.execute(
        "SELECT account_id, debits_posted, credits_posted, posting_sequence FROM balances"
        " WHERE tenant_id = %s ORDER BY account_id",
        (tenant,),
    ).fetchall()
    return snap


@dataclass(frozen=True)
class RawLine:
    account_id: UUID
    side: Side
    amount_minor: int
    currency: str = USD


def insert_raw_entry(
    conn: Conn,
    tenant: str,
    lines: Sequence[RawLine],
    *,
    line_count: int | None = None,
    sequence_offset: int = 0,
    prev_hash: bytes | None = None,
    reversal_of: UUID | None = None,
    effective_date: date = DAY,
    line_sequence_offset: int = 0,
    line_effective_date: date | None = None,
) -> UUID:
    """INSERT an entry and its lines by hand, at the right chain position with a correct hash
    unless told otherwise (the `line_*` arguments make the lines' copies of the entry's
    sequence and date disagree with it). Must run inside a transaction block (the tenant
    setting is local)."""
    assert conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    conn.execute("SELECT set_config('finance.tenant_id', %s, true)", (tenant,))
    head = conn.execute("SELECT * FROM finance_lock_chain_head()").fetchone()
    assert head is not None
    assert head[0] is not None, f"tenant {tenant} has no ledger head"
    sequence = int(head[0]) + sequence_offset
    prev = bytes(head[1]) if prev_hash is None else prev_hash
    entry_id = uuid.uuid4()
    posted_at = now()
    body = entry_body(
        ledger_id=tenant,
        sequence=sequence,
        entry_uuid=entry_id,
        posted_at=posted_at,
        effective_date=effective_date,
        entry_type="ADJUSTMENT",
        memo="typed by hand",
        source=None,
        source_id=None,
        reversal_of=reversal_of,
        postings=[(ln.account_id, ln.side, ln.amount_minor, ln.currency) for ln in lines],
        metadata={},
    )
    conn.execute(
        "INSERT INTO journal_entries (tenant_id, id, sequence, hash, prev_hash, posted_at,"
        " effective_date, type, memo, reversal_of, line_count)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, 'ADJUSTMENT', 'typed by hand', %s, %s)",
        (
            tenant,
            entry_id,
            sequence,
            chain_hash(prev, body),
            prev,
            posted_at,
            effective_date,
            reversal_of,
            len(lines) if line_count is None else line_count,
        ),
    )
    for number, line in enumerate(lines):
        insert_raw_line(
            conn,
            tenant,
            entry_id,
            number,
            line,
            sequence + line_sequence_offset,
            effective_date if line_effective_date is None else line_effective_date,
        )
    return entry_id


def insert_raw_line(
    conn: Conn,
    tenant: str,
    entry_id: UUID,
    line_number: int,
    line: RawLine,
    entry_sequence: int,
    effective_date: date = DAY,
    *,
    running_offsets: tuple[int, int, int] = (0, 0, 0),
) -> None:
    """INSERT one line by hand; `running_offsets` are added to the running state it claims for
    its account (posting number, debits after, credits after) to make it lie."""
    # As the service writes a line: with its account's running state after it, continuing
    # the balance (a line on an unknown account has none, and its trigger refuses it first).
    debit = line.amount_minor if line.side is Side.DEBIT else 0
    conn.execute(
        "INSERT INTO journal_lines (tenant_id, entry_id, line_number, account_id, side,"
        " amount_minor, currency, entry_sequence, effective_date, account_posting_sequence,"
        " debits_after, credits_after)"
        " SELECT %(tenant)s, %(entry)s, %(number)s, %(account)s, %(side)s, %(amount)s,"
        "  %(currency)s, %(sequence)s, %(date)s, b.posting_sequence + 1 + %(posting_offset)s,"
        "  b.debits_posted + %(debit)s, b.credits_posted + %(credit)s"
        " FROM (SELECT 1) one LEFT JOIN balances b"
        "   ON b.tenant_id = %(tenant)s AND b.account_id = %(account)s",
        {
            "tenant": tenant,
            "entry": entry_id,
            "number": line_number,
            "account": line.account_id,
            "side": line.side.value,
            "amount": line.amount_minor,
            "currency": line.currency,
            "sequence": entry_sequence,
            "date": effective_date,
            "debit": debit + running_offsets[1],
            "credit": line.amount_minor - debit + running_offsets[2],
            "posting_offset": running_offsets[0],
        },
    )


@contextmanager
def raises_sqlstate(sqlstate: str) -> Iterator[pytest.ExceptionInfo[psycopg.Error]]:
    """Like `pytest.raises(psycopg.Error)`, and the error must carry this SQLSTATE."""
    with pytest.raises(psycopg.Error) as info:
        yield info
    assert info.value.sqlstate == sqlstate, f"expected {sqlstate}, got {info.value!r}"


# Threads -----------------------------------------------------------------------------------


def run_concurrently(workers: int, work: Callable[[int], T]) -> list[T | Exception]:
    """Run `work(i)` on `workers` threads released together by a barrier; return each result
    or the exception it raised, in worker order."""
    barrier = threading.Barrier(workers)
    results: dict[int, T | Exception] = {}

    def runner(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - handed back to the test to assert on
            results[index] = exc

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    assert len(results) == workers
    return [results[i] for i in range(workers)]


def wait_for_lock_waiters(conn: Conn, waiters: int = 1, timeout_s: float = 10.0) -> None:
    """Block until `waiters` backends of this database wait on a heavyweight lock (a row lock
    held by another transaction), so a test knows its second writer is queued."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        waiting = scalar(
            conn,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        if int(waiting) >= waiters:
            return
        time.sleep(0.01)
    raise AssertionError(f"no {waiters} backend(s) queued on a lock within {timeout_s}s")


class HeldTransaction:
    """Runs a unit of work on its own thread and keeps its transaction open (its locks held)
    until `release()`, which commits it and returns what the work returned (or raises)."""

    def __init__(
        self, store: PostgresLedgerStore, tenant: str, work: Callable[[LedgerTransaction], object]
    ) -> None:
        self._worked = threading.Event()
        self._release = threading.Event()
        self._outcome: list[object] = []

        def held(tx: LedgerTransaction) -> object:
            value = work(tx)
            self._worked.set()
            assert self._release.wait(30), "held transaction never released"
            return value

        def run() -> None:
            try:
                self._outcome.append(store(tenant, held))
            except Exception as exc:  # noqa: BLE001 - re-raised by release()
                self._outcome.append(exc)
                self._worked.set()

        self._thread = threading.Thread(target=run)
        self._thread.start()
        assert self._worked.wait(30), "held work did not finish"

    def release(self) -> object:
        self._release.set()
        self._thread.join(30)
        assert not self._thread.is_alive()
        outcome = self._outcome[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class Background:
    """`work()` on a thread of its own; `outcome()` joins it and returns its result or the
    exception it raised (for the test to assert on)."""

    def __init__(self, work: Callable[[], object]) -> None:
        self._outcome: list[object] = []

        def run() -> None:
            try:
                self._outcome.append(work())
            except Exception as exc:  # noqa: BLE001 - handed back by outcome()
                self._outcome.append(exc)

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def outcome(self) -> object:
        self._thread.join(30)
        assert not self._thread.is_alive(), "background work hung"
        return self._outcome[0]


def balance_of(store: PostgresLedgerStore, tenant: str, account: UUID) -> ledger.AccountBalance:
    """The current balance of an account, through the service."""
    return store(tenant, lambda tx: ledger.account_balance(tx, account))


def post_many(
    store: PostgresLedgerStore,
    tenant: str,
    count: int,
    debit: UUID,
    credit: UUID,
    *,
    per_transaction: int = 200,
) -> list[PostedEntry]:
    """Post `count` small transfers through the use case, many per transaction."""
    posted: list[PostedEntry] = []
    while len(posted) < count:
        batch, first = min(per_transaction, count - len(posted)), len(posted)

        def work(
            tx: LedgerTransaction, batch: int = batch, first: int = first
        ) -> list[PostedEntry]:
            draft = transfer_draft
            return [
                ledger.post_entry(tx, draft(debit, credit, first + i + 1), uuid.uuid4(), now())
                for i in range(batch)
            ]

        posted.extend(store(tenant, work))
    return posted
