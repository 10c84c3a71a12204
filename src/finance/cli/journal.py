"""`finance post` and `finance balance`."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated
from uuid import uuid4

import typer
from pydantic import ValidationError

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.api.schemas import JOURNAL_PATH, BalanceOut, EntryCreate, EntryOut, render
from finance.cli import context
from finance.cli.output import CliError, console, emit_json, table
from finance.services import ledger
from finance.services.idempotency import IdempotentRequest, request_fingerprint, run_idempotent
from finance.services.ports import LedgerTransaction

Tenant = Annotated[str, typer.Option(help="Tenant id")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]


def read_entry(source: str) -> EntryCreate:
    """An entry in the API's JSON shape, from a file or `-` for stdin."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror}", exit_code=2) from exc
    try:
        return EntryCreate.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "entry"
        raise CliError(f"invalid entry in {source}: {where}: {first['msg']}") from exc


def post(
    tenant: Tenant,
    source: Annotated[str, typer.Argument(help="JSON file with the entry, or - for stdin")] = "-",
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Retry-safe key; the same key and entry replay the first result"),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Post a journal entry (same JSON body as POST /v1/journal).

    The key, fingerprint and stored response are exactly the API's, so a key used from both
    the CLI and the API replays the same bytes."""
    body = read_entry(source)
    key = idempotency_key or f"cli-{uuid4()}"
    fingerprint = request_fingerprint("POST", JOURNAL_PATH, body.idempotency_body())

    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        now = datetime.now(UTC)
        entry = ledger.post_entry(tx, body.to_draft(now.date()), uuid4(), now)
        return 201, render(EntryOut.of(entry))

    config = context.settings()
    with context.database(config) as db:
        result = run_idempotent(
            PostgresLedgerStore(db), tenant, IdempotentRequest(key, fingerprint), operation
        )
    entry = EntryOut.model_validate_json(result.body)
    if as_json:
        emit_json(entry.model_dump(mode="json"))
        return
    replayed = " (replayed)" if result.replayed else ""
    console.print(f"posted entry {entry.sequence} {entry.id}{replayed}")
    console.print(f"hash {entry.hash}")


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
