"""The proofs benchmark (issue 3): what the proof machinery costs and how fast it is.

1. Posting throughput through the service layer with the sealer off and on, alternated in the
   same run on the same database (off, on, off, on, ...) after a warm-up run that is not
   counted, each run on a fresh tenant whose statistics are analyzed before it starts. The sealer
   is the real background thread of `finance serve`, signing with an Ed25519 key file.
2. Checkpoint lag: for every entry posted while the sealer ran, the time from its commit (as the
   poster saw it) to the `signed_at` of the first checkpoint that covers it.
3. Export and verification of one long range: a ledger of N entries (bulk-loaded), sealed and
   signed, exported as `finance export` does (to a local bundle store in the work directory),
   and the bundle verified offline as `finance verify` does.

Figures only: nothing here asserts a goal. `finance bench proofs` prints them next to the goals.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from finance.adapters.bundle_stores.local import LocalBundleStore
from finance.adapters.postgres.db import Database
from finance.adapters.postgres.export_log import PostgresExportLog
from finance.adapters.postgres.proof_store import PostgresProofStore
from finance.adapters.signers.local import LocalSigner
from finance.bench.loader import append_entries_fast
from finance.bench.workload import (
    BenchDatabase,
    RunResult,
    analyze,
    new_tenant,
    percentile,
    post_entries,
)
from finance.bootstrap import SystemClock
from finance.proofs.audit_bundle import package_path, verify_bundle
from finance.proofs.bundle import read_bundle
from finance.proofs.signatures import TrustStore
from finance.proofs.signing import public_key_pem
from finance.services.export import Exporter, SequenceRange
from finance.services.proofs import Proofs
from finance.workers.sealer import Sealer

SIGNER_ID = "bench.local"
# Goals of issue 3, printed next to the figures.
OVERHEAD_GOAL_PCT = 10.0
LAG_P99_GOAL_S = 2.0
VERIFY_GOAL_PER_S = 20_000.0


@dataclass(frozen=True)
class ProofBenchConfig:
    entries_per_run: int
    runs_per_mode: int
    workers: int
    accounts: int
    range_entries: int
    seal_interval_s: float = 1.0

    @classmethod
    def quick(cls) -> ProofBenchConfig:
        return cls(
            entries_per_run=1_500, runs_per_mode=2, workers=4, accounts=1_000, range_entries=10_000
        )

    @classmethod
    def full(cls) -> ProofBenchConfig:
        return cls(
            entries_per_run=5_000,
            runs_per_mode=3,
            workers=4,
            accounts=10_000,
            range_entries=100_000,
        )


@dataclass
class ProofBenchResult:
    config: ProofBenchConfig
    sealer_off: list[RunResult] = field(default_factory=list)
    sealer_on: list[RunResult] = field(default_factory=list)
    lag_s: list[float] = field(default_factory=list)
    export_s: float = 0.0
    package_bytes: int = 0
    bundle_bytes: int = 0
    verify_s: float = 0.0
    bundle_read_s: float = 0.0

    @property
    def off_per_s(self) -> float:
        return statistics.median(r.entries_per_s for r in self.sealer_off)

    @property
    def on_per_s(self) -> float:
        return statistics.median(r.entries_per_s for r in self.sealer_on)

    @property
    def overhead_pct(self) -> float:
        return (1 - self.on_per_s / self.off_per_s) * 100 if self.off_per_s else 0.0

    @property
    def verify_per_s(self) -> float:
        return self.config.range_entries / self.verify_s if self.verify_s else 0.0

    def to_json(self) -> dict[str, Any]:
        runs = [*self.sealer_off, *self.sealer_on]
        return {
            "config": self.config.__dict__,
            "results": [
                {
                    "name": run.name,
                    "entries_per_s": round(run.entries_per_s, 1),
                    "p50_ms": round(run.p50_ms, 2),
                    "p99_ms": round(run.p99_ms, 2),
                }
                for run in runs
            ],
            "sealer_off_entries_per_s": round(self.off_per_s, 1),
            "sealer_on_entries_per_s": round(self.on_per_s, 1),
            "sealer_overhead_pct": round(self.overhead_pct, 2),
            "checkpoint_lag_s": {
                "p50": round(percentile(self.lag_s, 50), 3),
                "p99": round(percentile(self.lag_s, 99), 3),
                "max": round(max(self.lag_s, default=0.0), 3),
                "entries": len(self.lag_s),
            },
            "export": {
                "entries": self.config.range_entries,
                "seconds": round(self.export_s, 3),
                "package_bytes": self.package_bytes,
                "bundle_bytes": self.bundle_bytes,
            },
            "verify": {
                "seconds": round(self.verify_s, 3),
                "entries_per_s": round(self.verify_per_s, 1),
                "bundle_read_seconds": round(self.bundle_read_s, 3),
            },
        }


def run_proof_bench(
    bench: BenchDatabase, workdir: Path, config: ProofBenchConfig, progress: Any = None
) -> ProofBenchResult:
    """All three measurements on `bench`'s database. `progress(text)` is told what runs."""
    say = progress or (lambda _text: None)
    proofs, signer = bench_proofs(bench, workdir)
    result = ProofBenchResult(config)
    say("warming up")
    _warm_up(bench, config)
    for round_number in range(config.runs_per_mode):
        say(f"posting with the sealer off ({round_number + 1}/{config.runs_per_mode})")
        result.sealer_off.append(posting_run(bench, config, f"sealer_off_{round_number + 1}"))
        say(f"posting with the sealer on ({round_number + 1}/{config.runs_per_mode})")
        run, lags = posting_run_with_sealer(bench, proofs, config, f"sealer_on_{round_number + 1}")
        result.sealer_on.append(run)
        result.lag_s.extend(lags)
    say(f"loading and sealing a {config.range_entries:,}-entry ledger")
    _export_and_verify(bench, proofs, signer, workdir, config, result, say)
    return result


def bench_proofs(bench: BenchDatabase, workdir: Path) -> tuple[Proofs, LocalSigner]:
    """The proof use cases on `bench`'s database, signing with an Ed25519 key file in
    `workdir` (created on first use)."""
    signer = LocalSigner(workdir / "keys" / "bench-signer.pem")
    proofs = Proofs(
        PostgresProofStore(bench.database),
        SystemClock(),
        signer_id=SIGNER_ID,
        signers=[(SIGNER_ID, signer)],
    )
    return proofs, signer


def _warm_up(bench: BenchDatabase, config: ProofBenchConfig) -> None:
    """A short posting run whose figures are dropped, so that the first measured run starts
    where the others do. Statistics taken while the journal tables were still empty (by the
    ANALYZE after opening the accounts) made the planner read them whole for every posting:
    the first run posted 98 entries/s against 360 to 520 for the others, until autovacuum
    analyzed again. It also opens the pool's connections."""
    tenant = new_tenant(bench, config.accounts)
    post_entries(
        bench.store,
        tenant,
        name="warm_up",
        entries=max(1, config.entries_per_run // 5),
        workers=config.workers,
    )


def posting_run(bench: BenchDatabase, config: ProofBenchConfig, name: str) -> RunResult:
    """`config.entries_per_run` entries from `config.workers` threads on a fresh tenant."""
    tenant = new_tenant(bench, config.accounts)
    return post_entries(
        bench.store, tenant, name=name, entries=config.entries_per_run, workers=config.workers
    )


def posting_run_with_sealer(
    bench: BenchDatabase, proofs: Proofs, config: ProofBenchConfig, name: str
) -> tuple[RunResult, list[float]]:
    """As `posting_run`, with the sealer thread of `finance serve` working; then the lag of
    every entry posted (commit to the signed checkpoint that covers it)."""
    tenant = new_tenant(bench, config.accounts)
    # The previous runs' tenants are sealed first, so this run's sealer works on its own entries.
    _catch_up(proofs)
    commits: dict[int, float] = {}
    with _sealer(proofs, config.seal_interval_s):
        run = post_entries(
            bench.store,
            tenant,
            name=name,
            entries=config.entries_per_run,
            workers=config.workers,
            on_commit=lambda sequence: commits.__setitem__(sequence, time.time()),
        )
        _wait_until_signed(bench.database, tenant.tenant_id, config.entries_per_run)
    return run, _lags(bench.admin_url, tenant.tenant_id, commits)


@contextmanager
def _sealer(proofs: Proofs, interval_s: float) -> Iterator[Sealer]:
    sealer = Sealer(proofs, interval_s=interval_s)
    sealer.start()
    try:
        yield sealer
    finally:
        sealer.stop()


def _catch_up(proofs: Proofs) -> None:
    for item in proofs.backlog():
        while proofs.seal(item.tenant_id, wait=True) is not None:
            pass
        proofs.sign_pending(item.tenant_id)


def _wait_until_signed(
    database: Database, tenant_id: str, size: int, timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with database.transaction(tenant_id) as conn:
            row = conn.execute(
                "SELECT coalesce(max(tree_size), 0) FROM checkpoints"
                " WHERE tenant_id = %s AND signatures IS NOT NULL",
                (tenant_id,),
            ).fetchone()
        if row is not None and row[0] >= size:
            return
        time.sleep(0.05)
    raise TimeoutError(f"no signed checkpoint covered {size} entries within {timeout_s} s")


def _lags(admin_url: str, tenant_id: str, commits: dict[int, float]) -> list[float]:
    """Per entry: the signed_at of the first checkpoint covering it minus its commit time."""
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT tree_size, signed_at FROM checkpoints WHERE tenant_id = %s ORDER BY seq",
            (tenant_id,),
        ).fetchall()
    lags = []
    covered = 0
    for tree_size, signed_at in rows:
        signed = signed_at.timestamp()
        for sequence in range(covered, tree_size):
            if sequence in commits:
                lags.append(max(0.0, signed - commits[sequence]))
        covered = tree_size
    return lags


def _export_and_verify(
    bench: BenchDatabase,
    proofs: Proofs,
    signer: LocalSigner,
    workdir: Path,
    config: ProofBenchConfig,
    result: ProofBenchResult,
    say: Any,
) -> None:
    tenant = new_tenant(bench, 2)
    debit, credit = tenant.accounts
    for start in range(0, config.range_entries, 20_000):
        count = min(20_000, config.range_entries - start)
        append_entries_fast(bench.database, tenant.tenant_id, count, debit, credit)
    # One entry more than the range, so that the range starts after genesis, as most do.
    append_entries_fast(bench.database, tenant.tenant_id, 1, debit, credit)
    # As after opening accounts: the export's reads are planned on current statistics.
    analyze(bench.database)
    proofs.checkpoint_now(tenant.tenant_id)
    first, last = 1, config.range_entries
    say(f"exporting entries {first}..{last}")
    exporter = Exporter(
        proofs,
        LocalBundleStore(workdir / "exports"),
        PostgresExportLog(bench.database),
        SystemClock(),
    )
    began = time.perf_counter()
    exported = exporter.export(tenant.tenant_id, SequenceRange(first, last))
    result.export_s = time.perf_counter() - began
    bundle = Path(exported.record.location).read_bytes()
    result.bundle_bytes = len(bundle)
    trust = TrustStore.from_pems([(public_key_pem(signer.public_key_spki()).encode(), signer.alg)])
    began = time.perf_counter()
    package = read_bundle(bundle, trust).files[package_path(first, last)]
    result.bundle_read_s = time.perf_counter() - began
    result.package_bytes = len(package)
    say("verifying the bundle")
    began = time.perf_counter()
    verify_bundle(bundle, trust, expect_start=first, expect_end=last)
    result.verify_s = time.perf_counter() - began
