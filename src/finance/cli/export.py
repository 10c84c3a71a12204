"""`finance export` (seed runbook `finance:export <from> <to>`) and `finance exports list`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from finance import limits
from finance.adapters.bundle_stores.select import open_bundle_store
from finance.adapters.postgres.export_log import PostgresExportLog
from finance.bootstrap import SystemClock
from finance.cli import context
from finance.cli.output import console, emit_json, errors, table
from finance.services.export import DateRange, Exporter, ExportRecord, ExportResult, SequenceRange
from finance.services.export import Progress as ProgressCallback

app = typer.Typer(help="Audit bundles exported so far (the ledger_proofs table).")

_SEQUENCE_RE = re.compile(r"[0-9]{1,16}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Tenant = Annotated[str, typer.Option(help="Tenant id")]


def export(
    tenant: Tenant,
    first: Annotated[
        str, typer.Option("--from", help="First entry: a sequence number, or a date YYYY-MM-DD")
    ],
    last: Annotated[
        str,
        typer.Option("--to", help="Last entry, inclusive: a sequence number, or a date (UTC)"),
    ],
    since_checkpoint: Annotated[
        int | None,
        typer.Option(
            "--since-checkpoint",
            min=0,
            help="The checkpoint the auditor already holds: the bundle proves the range is "
            "consistent with it",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the export record as JSON")
    ] = False,
) -> None:
    """Write a signed audit bundle of a range of entries to the export store and record it.

    Exporting the same range again gives the same bundle (with Ed25519 keys, the same bytes)
    and replaces nothing. Exits 1 if the range does not exist or no checkpoint can be signed."""
    span = parse_span(first, last)
    config = context.settings()
    store = open_bundle_store(config)
    with context.database(config) as db:
        exporter = Exporter(context.proofs(config, db), store, PostgresExportLog(db), SystemClock())
        with _progress_bar(enabled=not as_json) as progress:
            result = exporter.export(
                tenant, span, since_checkpoint=since_checkpoint, progress=progress
            )
    if as_json:
        emit_json(_record_json(result.record) | {"already_stored": result.already_stored})
        return
    _print_result(result)


@app.command("list")
def list_exports(
    tenant: Tenant,
    limit: Annotated[
        int, typer.Option(min=1, max=limits.PAGE_SIZE_MAX, help="How many, newest first")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The tenant's exports, newest first: range, checkpoint, bundle hash and location."""
    config = context.settings()
    with context.database(config) as db:
        found = PostgresExportLog(db).list(tenant, limit)
    if as_json:
        emit_json([_record_json(record) for record in found])
        return
    table(
        f"Exports of {tenant}",
        ["entries", "checkpoint", "since", "sha256", "location", "exported at"],
        [
            (
                f"{r.start_id}..{r.end_id}",
                r.checkpoint_seq,
                r.since_seq,
                r.bundle_sha256,
                r.location,
                r.exported_at.isoformat(),
            )
            for r in found
        ],
    )


def parse_span(first: str, last: str) -> SequenceRange | DateRange:
    """Both sequence numbers or both dates; ValueError (exit 2) otherwise."""
    if _SEQUENCE_RE.fullmatch(first) and _SEQUENCE_RE.fullmatch(last):
        return SequenceRange(int(first), int(last))
    if _DATE_RE.fullmatch(first) and _DATE_RE.fullmatch(last):
        try:
            return DateRange(date.fromisoformat(first), date.fromisoformat(last))
        except ValueError as exc:
            raise ValueError(f"--from/--to: {exc}") from None
    raise ValueError(
        f"--from {first!r} --to {last!r}: give two sequence numbers or two dates (YYYY-MM-DD)"
    )


@contextmanager
def _progress_bar(*, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr while entries are read, when stderr is a terminal."""
    if not enabled or not errors.is_terminal:
        yield None
        return
    columns = (
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, transient=True) as bar:
        task = bar.add_task("entries", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _print_result(result: ExportResult) -> None:
    record = result.record
    verb = "already stored" if result.already_stored else "exported"
    since = "" if record.since_seq is None else f", consistent with checkpoint {record.since_seq}"
    # soft_wrap: a path or hash is never broken across lines, whatever the terminal width.
    console.print(
        f"{verb}: {record.tenant_id} entries {record.start_id}..{record.end_id} "
        f"({result.entries}) against checkpoint {record.checkpoint_seq}{since}",
        soft_wrap=True,
    )
    console.print(f"bundle {record.location}", soft_wrap=True)
    console.print(f"sha256 {record.bundle_sha256} ({record.bundle_size} bytes)", soft_wrap=True)


def _record_json(record: ExportRecord) -> dict[str, object]:
    data = asdict(record)
    data["id"] = str(record.id)
    data["exported_at"] = record.exported_at.isoformat()
    return data
