"""`finance bench`: benchmarks that print figures (never part of the test suite).

`finance bench proofs` measures the proof machinery: posting with the sealer off and on,
checkpoint lag after commit, and exporting and verifying a long range. `finance bench
throughput` measures posting and reading against pgbench on the same server. Each runs on its
own database: a fresh one on an embedded PostgreSQL in a temporary directory, or a new database
on FINANCE_DATABASE_URL's server (dropped afterwards)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from finance.bench.proofs import (
    LAG_P99_GOAL_S,
    OVERHEAD_GOAL_PCT,
    VERIFY_GOAL_PER_S,
    ProofBenchConfig,
    ProofBenchResult,
    run_proof_bench,
)
from finance.bench.throughput import CLIENTS, ThroughputConfig, run_throughput_bench
from finance.bench.throughput_report import COLUMNS, TABLE_WIDTH, notes, rows, to_json
from finance.bench.workload import bench_database, percentile
from finance.cli import context
from finance.cli.output import console, errors, table

app = typer.Typer(help="Benchmarks: figures printed, nothing asserted.", no_args_is_help=True)


@app.command()
def proofs(
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller runs, about two minutes (development)")
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this JSON file")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Posting threads")] = 4,
) -> None:
    """Posting throughput with the sealer off versus on, checkpoint lag after commit, and the
    time to export and verify a 100,000-entry range (10,000 with --quick). The full run takes
    several minutes."""
    preset = ProofBenchConfig.quick() if quick else ProofBenchConfig.full()
    config = ProofBenchConfig(**{**preset.__dict__, "workers": workers})
    server_url = context.settings().database_url
    with (
        tempfile.TemporaryDirectory(prefix="finance-bench-") as workdir,
        bench_database(Path(workdir), server_url, pool_max=workers + 4) as bench,
    ):
        result = run_proof_bench(bench, Path(workdir), config, progress=_progress)
    _print(result)
    if json_file is not None:
        json_file.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


@app.command()
def throughput(
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller runs, under two minutes (development)")
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this JSON file")
    ] = None,
) -> None:
    """Posting and reading against pgbench's TPC-B-like rate on the same server: the service
    layer at 1, 4 and 8 workers, HTTP at 8 clients, the batch API, a hot account, the sealer
    off and on, bytes per entry, the service's memory, and balance reads after loading
    1,000,000 entries (100,000 with --quick). The full run takes about ten minutes."""
    config = ThroughputConfig.quick() if quick else ThroughputConfig.full()
    server_url = context.settings().database_url
    with (
        tempfile.TemporaryDirectory(prefix="finance-bench-") as workdir,
        bench_database(Path(workdir), server_url, pool_max=CLIENTS + 4) as bench,
    ):
        result = run_throughput_bench(bench, Path(workdir), config, progress=_progress)
    cells = [row.cells() for row in rows(result)]
    table("Throughput benchmark", COLUMNS, cells, width=TABLE_WIDTH)
    for note in notes(result):
        console.print(note, soft_wrap=True)
    if json_file is not None:
        json_file.write_text(json.dumps(to_json(result), indent=2) + "\n", encoding="utf-8")


def _progress(text: str) -> None:
    errors.print(f"bench: {text}")


def _print(result: ProofBenchResult) -> None:
    lag_p99 = percentile(result.lag_s, 99)
    rows = [
        ("posting, sealer off (median)", f"{result.off_per_s:,.0f} entries/s", "", ""),
        ("posting, sealer on (median)", f"{result.on_per_s:,.0f} entries/s", "", ""),
        (
            "proof machinery overhead",
            f"{result.overhead_pct:.1f} %",
            f"< {OVERHEAD_GOAL_PCT:.0f} %",
            _verdict(result.overhead_pct < OVERHEAD_GOAL_PCT),
        ),
        (
            "checkpoint lag after commit p50 / p99 / max",
            f"{percentile(result.lag_s, 50):.2f} / {lag_p99:.2f} / {max(result.lag_s):.2f} s",
            f"p99 < {LAG_P99_GOAL_S:.0f} s",
            _verdict(lag_p99 < LAG_P99_GOAL_S),
        ),
        (
            f"export {result.config.range_entries:,} entries (finance export)",
            f"{result.export_s:.2f} s ({result.bundle_bytes / 1e6:.0f} MB bundle)",
            "",
            "",
        ),
        (
            f"verify the {result.config.range_entries:,}-entry bundle",
            f"{result.verify_s:.2f} s ({result.verify_per_s:,.0f} entries/s)",
            f">= {VERIFY_GOAL_PER_S:,.0f} entries/s",
            _verdict(result.verify_per_s >= VERIFY_GOAL_PER_S),
        ),
        ("of which: the bundle container", f"{result.bundle_read_s:.2f} s", "", ""),
    ]
    table("Proofs benchmark", ["figure", "measured", "goal", ""], rows)
    runs = [*result.sealer_off, *result.sealer_on]
    table(
        "Posting runs",
        ["run", "entries/s", "p50 ms", "p99 ms"],
        [(r.name, f"{r.entries_per_s:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}") for r in runs],
    )


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"
