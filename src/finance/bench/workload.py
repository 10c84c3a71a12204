"""The posting workload the benchmarks share: a database of their own, a tenant with accounts,
and worker threads posting 2-line entries through the service layer while latencies are kept.

A benchmark owns its database (a fresh one on the embedded server in a temporary directory, or
a new database on FINANCE_DATABASE_URL's server), so its figures are not skewed by, and never
disturb, a ledger someone uses.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg import sql

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import (
    embedded_server_uri,
    ensure_database,
    ensure_service_login,
)
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.migrate import migrate
from finance.domain.accounts import AccountSpec, AccountType, Side
from finance.domain.entries import EntryDraft, Line, PostedEntry
from finance.services import ledger
from finance.services.ids import new_entry_id
from finance.services.ports import LedgerTransaction

CURRENCY = "USD"
EFFECTIVE = date(2026, 1, 1)


@dataclass(frozen=True)
class BenchDatabase:
    database: Database
    store: PostgresLedgerStore
    admin_url: str


@contextmanager
def bench_database(
    workdir: Path, server_url: str | None, *, pool_max: int = 16
) -> Iterator[BenchDatabase]:
    """A freshly created and migrated database on the given server (or an embedded one in
    `workdir`), dropped afterwards."""
    server = server_url or embedded_server_uri(workdir / "postgres")
    name = f"finance_bench_{uuid.uuid4().hex[:8]}"
    admin_url = ensure_database(server, name)
    migrate(admin_url)
    database = Database(
        ensure_service_login(admin_url), admin_conninfo=admin_url, pool_max=pool_max
    )
    database.open()
    try:
        yield BenchDatabase(database, PostgresLedgerStore(database), admin_url)
    finally:
        database.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass(frozen=True)
class BenchTenant:
    tenant_id: str
    accounts: tuple[UUID, ...]


def new_tenant(bench: BenchDatabase, accounts: int) -> BenchTenant:
    """A tenant with `accounts` plain asset accounts (no limits, so every posting books), with
    the planner's statistics brought up to date for it (see `analyze`)."""
    store = bench.store
    tenant_id = f"bench-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    store(tenant_id, lambda tx: ledger.create_tenant(tx, "Benchmark", now))
    ids = []
    for start in range(0, accounts, 500):

        def open_batch(tx: LedgerTransaction, start: int = start) -> list[UUID]:
            opened = []
            for n in range(start, min(start + 500, accounts)):
                spec = AccountSpec(
                    code=f"A{n:07d}",
                    name=f"Account {n}",
                    type=AccountType.ASSET,
                    currency=CURRENCY,
                )
                opened.append(ledger.open_account(tx, spec, uuid.uuid4(), now).id)
            return opened

        ids.extend(store(tenant_id, open_batch))
    analyze(bench.database)
    return BenchTenant(tenant_id, tuple(ids))


def analyze(database: Database) -> None:
    """Refresh the planner's statistics of every table now, as the owner.

    A benchmark fills tables with thousands of rows in seconds and uses them at once, while
    autovacuum refreshes statistics about a minute later, so without this a run's figures
    depend on when autovacuum woke up rather than on the ledger. Two ways it went wrong:

    * A tenant created since the last ANALYZE is not among the tenant_id values the planner
      knows, so it takes that tenant for one row. For the two accounts of a posting,
      `finance_lock_accounts` then got a nested loop that scans all of the tenant's balances
      and, for each, all of its accounts: 10,000 x 10,000 row visits, 11 s, cancelled by the
      10 s statement timeout (the full run's failure; docs/performance.md).
    * Before the journal tables were ever analyzed, posting slowed down as they grew (from
      about 350 to 165 entries/s over the first 2,000 entries on a fresh database) until
      autovacuum's first ANALYZE."""
    with database.admin() as conn:
        conn.execute("ANALYZE")


def two_line_draft(debit: UUID, credit: UUID, amount: int) -> EntryDraft:
    return EntryDraft(
        lines=(
            Line(debit, Side.DEBIT, amount, CURRENCY),
            Line(credit, Side.CREDIT, amount, CURRENCY),
        ),
        effective_date=EFFECTIVE,
    )


@dataclass
class RunResult:
    name: str
    entries: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)


def _poster(draft: EntryDraft) -> Callable[[LedgerTransaction], PostedEntry]:
    def post(tx: LedgerTransaction) -> PostedEntry:
        return ledger.post_entry(tx, draft, new_entry_id(), datetime.now(UTC))

    return post


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def post_entries(
    store: PostgresLedgerStore,
    tenant: BenchTenant,
    *,
    name: str,
    entries: int,
    workers: int,
    seed: int = 7,
    on_commit: Callable[[int], None] | None = None,
    hot_account: UUID | None = None,
) -> RunResult:
    """Post `entries` 2-line entries between random distinct accounts from `workers` threads.
    With `hot_account`, one side of every entry (debit or credit, at random) is that account
    and the other a random one. `on_commit(sequence)` is called right after each entry's
    transaction commits."""
    others = tuple(a for a in tenant.accounts if a != hot_account)

    def post_one(_worker: int, rng: random.Random) -> int:
        if hot_account is None:
            debit, credit = rng.sample(others, 2)
        else:
            pair = (hot_account, rng.choice(others))
            debit, credit = pair if rng.random() < 0.5 else pair[::-1]
        draft = two_line_draft(debit, credit, rng.randint(1, 100_000))
        posted = store(tenant.tenant_id, _poster(draft))
        if on_commit is not None:
            on_commit(posted.sequence)
        return 1

    return run_workers(name, split(entries, workers), post_one, seed=seed)


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` shares that differ by at most one."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def run_workers(
    name: str,
    shares: Sequence[int],
    step: Callable[[int, random.Random], int],
    *,
    seed: int = 7,
) -> RunResult:
    """One thread per share: worker `w` calls `step(w, rng)` `shares[w]` times, each call timed
    (one latency), each returning how many entries it posted. The wall time runs from the start
    signal to the last worker's end; the first error of any worker is raised after the join."""
    workers = len(shares)
    latencies: list[list[float]] = [[] for _ in range(workers)]
    posted = [0] * workers
    start = threading.Barrier(workers + 1)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        rng = random.Random(seed * 1000 + index)  # noqa: S311 - a repeatable workload
        start.wait()
        try:
            for _ in range(shares[index]):
                began = time.perf_counter()
                posted[index] += step(index, rng)
                latencies[index].append((time.perf_counter() - began) * 1000)
        except BaseException as exc:  # noqa: BLE001 - reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if errors:
        raise errors[0]
    return RunResult(name, sum(posted), seconds, [ms for part in latencies for ms in part])
