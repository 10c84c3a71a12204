"""`finance torture`: the fault-injection bank test (docs/reliability.md).

Runs on a PostgreSQL and a `finance serve` of its own in a temporary directory (never on
FINANCE_DATABASE_URL), all on 127.0.0.1, and removes everything at the end. Exit 0 when no
violation was found, 1 when one was (or the run could not be made), 130 on Ctrl-C.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from finance.bench.http import HttpBenchError
from finance.cli.output import CliError, console, errors, table
from finance.torture.postgres import PostgresError
from finance.torture.run import TortureConfig, TortureResult, run_torture

# The figures printed, in order, with their labels.
FIGURES = (
    ("sent", "postings sent (one idempotency key each)"),
    ("attempts", "requests made"),
    ("retries", "retries (same key, same body)"),
    ("acknowledged", "acknowledged (201, or 200 replayed)"),
    ("replayed", "acknowledgements that were replays"),
    ("refused", "refused (4xx problem)"),
    ("refused_overdraft", "refused: overdraft"),
    ("unknown_answers", "answers of unknown outcome (cut, timeout, 5xx...)"),
    ("unknown_at_end", "postings still unknown at the end"),
    ("unknown_committed", "of those, found committed"),
    ("refusals_superseded", "refusals superseded by an earlier attempt"),
    ("faults_serve_kill", "faults: finance serve killed (SIGKILL)"),
    ("faults_postgres_restart", "faults: PostgreSQL stopped in immediate mode"),
    ("faults_client_cut", "faults: connections cut mid-request"),
    ("faults_injected", "faults injected"),
    ("entries", "journal entries at the end"),
    ("checkpoints_verified", "signed checkpoints verified"),
    ("violations", "violations"),
)


def torture(
    seconds: Annotated[
        float, typer.Option(min=5, max=86_400, help="How long the clients post (and faults run)")
    ] = 60,
    clients: Annotated[int, typer.Option(min=1, max=64, help="Concurrent HTTP clients")] = 4,
    accounts: Annotated[
        int, typer.Option(min=4, max=10_000, help="Asset accounts, over two currencies")
    ] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the transfers and of the faults' details")] = 1,
    fault_interval: Annotated[
        float, typer.Option(min=1, max=3_600, help="Seconds between two faults")
    ] = 5,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this JSON file")
    ] = None,
) -> None:
    """Post random transfers from concurrent clients while killing the service, crashing
    PostgreSQL and cutting connections; then check that every acknowledged posting exists
    exactly once, nothing else does, the books balance and the proofs verify. Exit 1 on any
    violation."""
    config = TortureConfig(seconds, clients, accounts, seed, fault_interval)
    try:
        result = run_torture(config, progress=_progress)
    except (HttpBenchError, PostgresError) as exc:
        raise CliError(f"torture run failed: {exc}") from exc
    _print(result)
    if json_file is not None:
        json_file.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    violations = result.report.violations
    if violations:
        first = violations[0]
        raise CliError(f"{len(violations)} violation(s); first: {first.code}: {first.detail}")


def _progress(text: str) -> None:
    errors.print(f"torture: {text}")


def _print(result: TortureResult) -> None:
    figures = result.report.figures
    table(
        f"Torture run: {result.config.seconds:.0f} s, {result.config.clients} clients,"
        f" seed {result.config.seed} ({result.elapsed_s:.0f} s in all)",
        ["figure", "value"],
        [(label, f"{figures[name]:,}") for name, label in FIGURES],
    )
    for violation in result.report.listed():
        console.print(f"violation: {violation.code}: {violation.detail}", soft_wrap=True)
