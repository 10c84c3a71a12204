"""`finance post` and `finance balance`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID, uuid4

import typer
from pydantic import TypeAdapter, ValidationError

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.api.schemas import (
    JOURNAL_PATH,
    BalanceOut,
    BatchEntryCreate,
    EntryCreate,
    EntryOut,
    entry_response,
    rejection_document,
)
from finance.cli import context
from finance.cli.output import CliError, console, emit_json, table
from finance.domain.entries import PostedEntry
from finance.services import batches, ledger
from finance.services.idempotency import (
    IdempotentRequest,
    request_fingerprint,
    run_idempotent_posting,
)
from finance.services.ports import LedgerTransaction

Tenant = Annotated[str, typer.Option(help="Tenant id")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]


def read_text(source: str) -> str:
    try:
        return sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror}", exit_code=2) from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"cannot read {source}: not UTF-8 text", exit_code=2) from exc


def read_entry(source: str) -> EntryCreate:
    """An entry in the API's JSON shape, from a file or `-` for stdin."""
    text = read_text(source)
    try:
        return EntryCreate.model_validate_json(text)
    except ValidationError as exc:
        raise CliError(f"invalid entry in {source}: {_first_error(exc, 'entry')}") from exc


def read_batch(source: str) -> list[BatchEntryCreate]:
    """Batch items (an entry of POST /v1/journal/batch: the entry, `idempotency_key` and
    `linked`), as a JSON array or as JSON lines (one item per non-blank line)."""
    text = read_text(source)
    if text.lstrip().startswith("["):
        try:
            return _BATCH_ITEMS.validate_json(text)
        except ValidationError as exc:
            raise CliError(f"invalid batch in {source}: {_first_error(exc, 'batch')}") from exc
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(BatchEntryCreate.model_validate_json(line))
        except ValidationError as exc:
            where = f"{source} line {number}"
            raise CliError(f"invalid batch item in {where}: {_first_error(exc, 'item')}") from exc
    if not items:
        raise CliError(f"no batch items in {source}")
    return items


_BATCH_ITEMS = TypeAdapter(list[BatchEntryCreate])


def _first_error(exc: ValidationError, what: str) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or what
    return f"{where}: {first['msg']}"


def post(
    tenant: Tenant,
    source: Annotated[str, typer.Argument(help="JSON file with the entry, or - for stdin")] = "-",
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Retry-safe key; the same key and entry replay the first result"),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            help="Post a batch instead: a file of items (JSON lines or a JSON array) as in"
            " POST /v1/journal/batch, each with its idempotency_key; - for stdin",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Post a journal entry (same JSON body as POST /v1/journal), or a batch of them.

    The key, fingerprint and stored response are exactly the API's, so a key used from both
    the CLI and the API replays the same bytes. A batch prints one line per entry (created,
    replayed or refused) and exits 1 if any entry was refused."""
    if batch is not None:
        if idempotency_key is not None:
            raise CliError("--idempotency-key is for one entry; batch items carry their own")
        post_batch(tenant, batch, as_json=as_json)
        return
    body = read_entry(source)
    key = idempotency_key or f"cli-{uuid4()}"
    fingerprint = request_fingerprint("POST", JOURNAL_PATH, body.idempotency_body())

    def post(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
        now = datetime.now(UTC)
        return ledger.post_entry(tx, body.to_draft(now.date()), entry_id, now)

    config = context.settings()
    with context.database(config) as db:
        result = run_idempotent_posting(
            PostgresLedgerStore(db),
            tenant,
            IdempotentRequest(key, fingerprint),
            post,
            entry_response,
        )
    entry = EntryOut.model_validate_json(result.body)
    if as_json:
        emit_json(entry.model_dump(mode="json"))
        return
    replayed = " (replayed)" if result.replayed else ""
    console.print(f"posted entry {entry.sequence} {entry.id}{replayed}")
    console.print(f"hash {entry.hash}")


def post_batch(tenant: str, source: str, *, as_json: bool) -> None:
    """`finance post --batch`: the use case of POST /v1/journal/batch, on the database."""
    entries = [item.to_batch_entry() for item in read_batch(source)]
    config = context.settings()

    def work(tx: LedgerTransaction) -> list[batches.BatchResult]:
        return batches.post_batch(
            tx,
            entries,
            datetime.now(UTC),
            entries_max=config.batch_entries_max,
            respond=entry_response,
        )

    results = context.in_tenant(config, tenant, work)
    if as_json:
        emit_json([_result_json(index, result) for index, result in enumerate(results)])
    else:
        for index, result in enumerate(results):
            console.print(_result_line(index, result))
    refused = sum(result.status is batches.BatchStatus.REFUSED for result in results)
    if refused:
        raise CliError(f"{refused} of {len(results)} entries refused; the others were posted")


def _result_json(index: int, result: batches.BatchResult) -> dict[str, object]:
    """One result as POST /v1/journal/batch returns it."""
    out: dict[str, object] = {"index": index, "status": result.status.value}
    if result.rejection is not None:
        out["error"] = rejection_document(result.rejection)
    elif result.body is not None:
        out["entry"] = json.loads(result.body)
    return out


def _result_line(index: int, result: batches.BatchResult) -> str:
    if result.rejection is not None:
        return f"{index} refused {result.rejection.code.value}: {result.rejection.detail}"
    entry = EntryOut.model_validate_json(result.body or b"")
    return f"{index} {result.status.value} entry {entry.sequence} {entry.id}"


def balance(
    tenant: Tenant,
    account: Annotated[str, typer.Argument(help="Account id or code")],
    as_of: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="End of this effective date")
    ] = None,
    as_of_sequence: Annotated[
        int | None, typer.Option(min=0, help="Right after the entry with this sequence")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Balance of one account, now or at a point in time."""
    as_of_date: date | None = as_of.date() if as_of else None

    def read(tx: LedgerTransaction) -> ledger.AccountBalance:
        found = ledger.find_account(tx, account)
        return ledger.account_balance(
            tx, found.id, as_of_sequence=as_of_sequence, as_of_date=as_of_date
        )

    item = context.in_tenant(context.settings(), tenant, read)
    out = BalanceOut.of(item)
    if as_json:
        emit_json(out.model_dump(mode="json"))
        return
    table(
        f"Balance of {item.account.code}",
        ["currency", "debits", "credits", "balance", "postings", "as of"],
        [
            (
                out.currency,
                out.debits_posted,
                out.credits_posted,
                out.balance,
                out.posting_sequence,
                as_of_date or (f"entry {as_of_sequence}" if as_of_sequence is not None else "now"),
            )
        ],
    )
