"""The throughput benchmark (issue 4): how fast the ledger posts and reads, each figure next to
pgbench's TPC-B-like rate on the same server in the same run.

In order, on the benchmark's own database (docs/performance.md, "Throughput"):

1. `pgbench`: the reference (bench/pgbench.py), on a database of its own on the same server.
2. `service_single_{1,4,8}`: 2-line entries between random accounts of a 10,000-account tenant
   through the service layer (`ledger.post_entry`, what the API runs) from 1, 4 and 8 threads.
3. `http_single_8`: the same entries as POST /v1/journal requests to `finance serve` (a process
   of its own) from 8 keep-alive clients; the serve process's peak RSS is the memory figure.
4. `batch_1000`: POST /v1/journal/batch with 1,000 entries a request (skipped until the
   service has the endpoint).
5. `hot_account`: as `service_single_8`, with one side of every entry the same account.
6. The sealer off versus on (bench/proofs.py's runs, at 8 workers); the bytes on disk per entry
   (measured here, over every entry posted so far); then 1,000,000 entries are bulk-loaded
   over a fresh 10,000-account tenant and current and point-in-time balances are read.

Figures only: `goals()` says which goals of issue 4 they meet, nothing here asserts one.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from finance.adapters.postgres.db import Database
from finance.bench import loader
from finance.bench.http import NotMeasured, issue_token, post_batches, post_single, serving
from finance.bench.pgbench import PgbenchConfig, run_pgbench
from finance.bench.proofs import (
    ProofBenchConfig,
    bench_proofs,
    posting_run,
    posting_run_with_sealer,
)
from finance.bench.workload import (
    BenchDatabase,
    BenchTenant,
    RunResult,
    analyze,
    new_tenant,
    post_entries,
)
from finance.services import ledger
from finance.services.ports import LedgerTransaction

SERVICE_WORKERS = (1, 4, 8)
# The issue's "8 clients": pgbench's, the HTTP clients, the hot-account and sealer workers.
CLIENTS = 8
BATCH_SIZE = 1_000
UNIFORM_FOR_HOT = "service_single_8"
RUN_NAMES = (
    "pgbench",
    "service_single_1",
    "service_single_4",
    "service_single_8",
    "http_single_8",
    "batch_1000",
    "hot_account",
)
# The tables an entry adds rows to: the entry and its lines (with every index) and, for an
# entry posted through the API, its idempotency key (which names the entry: migration 0008).
# Balances and accounts are per account, checkpoints per seal interval and Merkle nodes one per
# 256 entries: not counted.
ENTRY_TABLES = ("journal_entries", "journal_lines")
PER_ROW_TABLES = ("idempotency_keys",)

# Goals of issue 4, printed next to the figures.
SERVICE_8_RATIO_GOAL = 0.75
HTTP_8_RATIO_GOAL = 0.5
HTTP_8_P99_GOAL_MS = 25.0
BATCH_RATIO_GOAL = 6.0
HOT_RATIO_GOAL = 0.5
BYTES_PER_ENTRY_GOAL = 800
SERVE_RSS_GOAL_MB = 300.0
BALANCE_P99_GOAL_MS = 2.0
AS_OF_P99_GOAL_MS = 10.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ThroughputConfig:
    pgbench_seconds: float
    service_entries: int  # per run: each worker count, the hot account, the HTTP run
    warm_up_entries: int
    batch_requests: int
    load_entries: int
    balance_reads: int  # per kind: current, as of a sequence, as of a date
    sealer_entries: int
    sealer_rounds: int
    sealer_accounts: int
    accounts: int = 10_000
    pgbench_scale: int = 10
    # One: a batch is one transaction that holds its accounts and the tenant's chain head
    # until it commits, so a second concurrent batch of the same tenant only waits (and past
    # the 5 s lock timeout is refused with 503, as measured against the batch branch).
    batch_clients: int = 1
    seal_interval_s: float = 1.0

    @classmethod
    def quick(cls) -> ThroughputConfig:
        return cls(
            pgbench_seconds=8,
            service_entries=600,
            warm_up_entries=100,
            batch_requests=4,
            load_entries=100_000,
            balance_reads=500,
            sealer_entries=500,
            sealer_rounds=1,
            sealer_accounts=1_000,
        )

    @classmethod
    def full(cls) -> ThroughputConfig:
        return cls(
            pgbench_seconds=30,
            service_entries=3_000,
            warm_up_entries=500,
            batch_requests=16,
            load_entries=1_000_000,
            balance_reads=2_000,
            sealer_entries=2_000,
            sealer_rounds=2,
            sealer_accounts=10_000,
        )


@dataclass(frozen=True)
class Storage:
    entries: int
    bytes_per_entry_by_table: dict[str, float]

    @property
    def bytes_per_entry(self) -> float:
        return sum(self.bytes_per_entry_by_table.values())


@dataclass
class BalanceReads:
    entries_loaded: int
    load_s: float
    current_ms: list[float] = field(default_factory=list)
    as_of_sequence_ms: list[float] = field(default_factory=list)
    as_of_date_ms: list[float] = field(default_factory=list)


@dataclass
class ThroughputResult:
    config: ThroughputConfig
    runs: dict[str, RunResult] = field(default_factory=dict)
    not_measured: dict[str, NotMeasured] = field(default_factory=dict)
    serve_peak_rss_mb: float = 0.0
    serve_rss_after_single_mb: float = 0.0
    sealer_off: list[RunResult] = field(default_factory=list)
    sealer_on: list[RunResult] = field(default_factory=list)
    storage: Storage | None = None
    balance: BalanceReads | None = None

    def ratio_to_pgbench(self, name: str) -> float | None:
        run, reference = self.runs.get(name), self.runs.get("pgbench")
        if run is None or reference is None or reference.entries_per_s <= 0:
            return None
        return run.entries_per_s / reference.entries_per_s

    @property
    def hot_to_uniform(self) -> float | None:
        hot, uniform = self.runs.get("hot_account"), self.runs.get(UNIFORM_FOR_HOT)
        if hot is None or uniform is None or uniform.entries_per_s <= 0:
            return None
        return hot.entries_per_s / uniform.entries_per_s

    @property
    def sealer_off_per_s(self) -> float:
        return statistics.median(r.entries_per_s for r in self.sealer_off)

    @property
    def sealer_on_per_s(self) -> float:
        return statistics.median(r.entries_per_s for r in self.sealer_on)

    @property
    def sealer_overhead_pct(self) -> float:
        off = self.sealer_off_per_s
        return (1 - self.sealer_on_per_s / off) * 100 if off else 0.0


def run_throughput_bench(
    bench: BenchDatabase, workdir: Path, config: ThroughputConfig, progress: Progress | None = None
) -> ThroughputResult:
    """Every measurement on `bench`'s server, in the order of the module's docstring."""
    say = progress or (lambda _text: None)
    result = ThroughputResult(config)
    say(f"pgbench: TPC-B-like, scale {config.pgbench_scale}, {config.pgbench_seconds:.0f} s")
    pgbench = PgbenchConfig(
        seconds=config.pgbench_seconds, scale=config.pgbench_scale, clients=CLIENTS
    )
    result.runs["pgbench"] = run_pgbench(bench.admin_url, workdir, pgbench)
    say(f"opening {config.accounts:,} accounts")
    tenant = new_tenant(bench, config.accounts)
    _warm_up(bench, tenant, config)
    for workers in SERVICE_WORKERS:
        name = f"service_single_{workers}"
        say(f"{name}: {config.service_entries:,} entries")
        result.runs[name] = post_entries(
            bench.store, tenant, name=name, entries=config.service_entries, workers=workers
        )
    say(f"hot_account: {config.service_entries:,} entries, one side always the same account")
    result.runs["hot_account"] = post_entries(
        bench.store,
        tenant,
        name="hot_account",
        entries=config.service_entries,
        workers=CLIENTS,
        hot_account=tenant.accounts[0],
    )
    _http_runs(bench, workdir, tenant, config, result, say)
    _sealer_runs(bench, workdir, config, result, say)
    say("measuring bytes on disk per entry")
    result.storage = measure_storage(bench.database)
    result.balance = _balance_reads(bench, config, say)
    return result


def _warm_up(bench: BenchDatabase, tenant: BenchTenant, config: ThroughputConfig) -> None:
    """Postings whose figures are dropped, then fresh statistics: the journal tables were
    analyzed while empty, and plans made on those statistics read them whole (bench/proofs.py,
    `_warm_up`). It also opens the pool's connections."""
    post_entries(
        bench.store, tenant, name="warm_up", entries=config.warm_up_entries, workers=CLIENTS
    )
    analyze(bench.database)


def _http_runs(
    bench: BenchDatabase,
    workdir: Path,
    tenant: BenchTenant,
    config: ThroughputConfig,
    result: ThroughputResult,
    say: Progress,
) -> None:
    say("starting finance serve")
    service_login = bench.database.conninfo
    with serving(workdir, service_login) as serve:
        token = issue_token(workdir, tenant.tenant_id)
        accounts = tenant.accounts
        # Uncounted: the service's pool connects and its code paths warm up.
        post_single(
            serve, token, accounts, name="warm_up", entries=config.warm_up_entries, clients=CLIENTS
        )
        say(f"http_single_{CLIENTS}: {config.service_entries:,} requests")
        name = "http_single_8"
        result.runs[name] = post_single(
            serve, token, accounts, name=name, entries=config.service_entries, clients=CLIENTS
        )
        result.serve_rss_after_single_mb = serve.peak_rss_mb()
        say(f"batch_{BATCH_SIZE}: {config.batch_requests} requests")
        batch = post_batches(
            serve,
            token,
            accounts,
            name="batch_1000",
            requests=config.batch_requests,
            batch_size=BATCH_SIZE,
            clients=config.batch_clients,
        )
        if isinstance(batch, NotMeasured):
            say(f"batch_{BATCH_SIZE} {batch.status}: {batch.reason}")
            result.not_measured["batch_1000"] = batch
        else:
            result.runs[batch.name] = batch
        result.serve_peak_rss_mb = serve.peak_rss_mb()


def _sealer_runs(
    bench: BenchDatabase,
    workdir: Path,
    config: ThroughputConfig,
    result: ThroughputResult,
    say: Progress,
) -> None:
    """bench/proofs.py's posting runs, sealer off and on alternated, at `CLIENTS`
    workers, each on a fresh tenant."""
    proofs, _signer = bench_proofs(bench, workdir)
    runs = ProofBenchConfig(
        entries_per_run=config.sealer_entries,
        runs_per_mode=config.sealer_rounds,
        workers=CLIENTS,
        accounts=config.sealer_accounts,
        range_entries=0,
        seal_interval_s=config.seal_interval_s,
    )
    for number in range(1, config.sealer_rounds + 1):
        say(f"posting with the sealer off and on ({number}/{config.sealer_rounds})")
        result.sealer_off.append(posting_run(bench, runs, f"sealer_off_{number}"))
        run, _lags = posting_run_with_sealer(bench, proofs, runs, f"sealer_on_{number}")
        result.sealer_on.append(run)


def measure_storage(database: Database) -> Storage:
    """Bytes on disk per entry: the entry tables' total size (heap, indexes, TOAST) over the
    entries, plus the idempotency keys' size over their rows (the service layer's postings
    write no idempotency key, the API's do)."""
    by_table: dict[str, float] = {}
    with database.admin() as conn:

        def size_and_rows(table: str) -> tuple[int, int]:
            row = conn.execute(
                f"SELECT pg_total_relation_size('{table}'), (SELECT count(*) FROM {table})"
            ).fetchone()
            assert row is not None
            return int(row[0]), int(row[1])

        entries = size_and_rows("journal_entries")[1]
        for table in ENTRY_TABLES:
            by_table[table] = size_and_rows(table)[0] / entries if entries else 0.0
        for table in PER_ROW_TABLES:
            size, rows = size_and_rows(table)
            by_table[table] = size / rows if rows else 0.0
    return Storage(entries, by_table)


def _balance_reads(bench: BenchDatabase, config: ThroughputConfig, say: Progress) -> BalanceReads:
    """A fresh tenant of `config.accounts` accounts with `config.load_entries` entries
    bulk-loaded over them (each account in about 2 * load / accounts lines), then single reads
    through the service layer from one thread, each on a random account: the current balance,
    the balance as of a random sequence of the ledger and as of the loaded entries' date (which
    sums every line of the account, the most a point-in-time read by date reads)."""
    say(f"loading {config.load_entries:,} entries over {config.accounts:,} accounts")
    tenant = new_tenant(bench, config.accounts)
    began = time.perf_counter()
    _load(bench.database, tenant, config.load_entries)
    reads = BalanceReads(config.load_entries, time.perf_counter() - began)
    analyze(bench.database)
    say(f"reading balances: {config.balance_reads:,} of each kind")
    rng = random.Random(11)  # noqa: S311 - a repeatable workload
    kinds: list[tuple[list[float], Callable[[], dict[str, Any]]]] = [
        (reads.current_ms, dict),
        (reads.as_of_sequence_ms, lambda: {"as_of_sequence": rng.randrange(config.load_entries)}),
        (reads.as_of_date_ms, lambda: {"as_of_date": loader.EFFECTIVE}),
    ]
    for latencies, options in kinds:
        _read(bench, tenant, rng, options, config.balance_reads // 10)  # warm-up, dropped
        latencies.extend(_read(bench, tenant, rng, options, config.balance_reads))
    return reads


LOAD_CHUNK_ENTRIES = 20_000


def _load(database: Database, tenant: BenchTenant, entries: int) -> None:
    accounts = list(tenant.accounts)
    random.Random(5).shuffle(accounts)  # noqa: S311 - a repeatable workload
    pairs = list(zip(accounts[0::2], accounts[1::2], strict=False))
    for start in range(0, entries, LOAD_CHUNK_ENTRIES):
        count = min(LOAD_CHUNK_ENTRIES, entries - start)
        # Each chunk starts where the last left off in the pairs, so all are used evenly.
        offset = start % len(pairs)
        loader.append_transfers_fast(
            database, tenant.tenant_id, count, pairs[offset:] + pairs[:offset]
        )


def _read(
    bench: BenchDatabase,
    tenant: BenchTenant,
    rng: random.Random,
    options: Callable[[], dict[str, Any]],
    reads: int,
) -> list[float]:
    """`reads` balance reads of random accounts, each its own transaction, timed."""
    latencies = []
    for _ in range(reads):
        account: UUID = rng.choice(tenant.accounts)
        chosen = options()

        def read(tx: LedgerTransaction, account: UUID = account, chosen: Any = chosen) -> object:
            return ledger.account_balance(tx, account, **chosen)

        began = time.perf_counter()
        bench.store(tenant.tenant_id, read)
        latencies.append((time.perf_counter() - began) * 1000)
    return latencies
