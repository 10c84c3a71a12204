"""/v1/journal: post, read, list and reverse entries; /v1/trial-balance."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from finance import limits
from finance.api.deps import (
    Accountant,
    ContainerDep,
    IdempotencyKey,
    Viewer,
    idempotent_write,
    render,
)
from finance.api.pagination import Cursor, Limit, decode_int_cursor, page_of
from finance.api.schemas import (
    CurrencyTotalsOut,
    EntryCreate,
    EntryOut,
    EntryPage,
    ReversalCreate,
    TrialBalanceAccountOut,
    TrialBalanceOut,
)
from finance.domain.entries import ENTRY_TYPE_PATTERN, REVERSAL_TYPE, EntryDraft, Line
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services import ledger
from finance.services.ports import EntryFilter, LedgerTransaction

router = APIRouter(tags=["journal"])


def draft_from(body: EntryCreate, today: date) -> EntryDraft:
    if body.type == REVERSAL_TYPE:
        raise LedgerRejection(
            RejectCode.VALIDATION_FAILED,
            "REVERSAL entries are made with POST /v1/journal/{id}/reverse",
        )
    return EntryDraft(
        lines=tuple(Line(ln.account_id, ln.side, ln.amount, ln.currency) for ln in body.lines),
        effective_date=body.effective_date or today,
        type=body.type,
        memo=body.memo,
        source=body.source,
        source_id=body.source_id,
        metadata=body.metadata,
    )


@router.post("/v1/journal", status_code=201, response_model=EntryOut)
def post_entry(
    request: Request,
    body: EntryCreate,
    app: ContainerDep,
    caller: Accountant,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        now = app.clock.now()
        entry = ledger.post_entry(tx, draft_from(body, now.date()), uuid4(), now)
        return 201, render(EntryOut.of(entry))

    payload = body.model_dump(mode="json", exclude_unset=True)
    return idempotent_write(request, app, caller, idempotency_key, payload, operation)


@router.get("/v1/journal", response_model=EntryPage)
def list_entries(
    app: ContainerDep,
    caller: Viewer,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    cursor: Cursor = None,
    effective_from: date | None = None,
    effective_to: date | None = None,
    type: Annotated[
        str | None,
        Query(max_length=limits.ENTRY_TYPE_CHARS_MAX, pattern=ENTRY_TYPE_PATTERN),
    ] = None,
    source: Annotated[str | None, Query(max_length=limits.SOURCE_CHARS_MAX)] = None,
    source_id: Annotated[str | None, Query(max_length=limits.SOURCE_CHARS_MAX)] = None,
    account_id: UUID | None = None,
    reversal_of: UUID | None = None,
) -> EntryPage:
    flt = EntryFilter(
        effective_from, effective_to, type, source, source_id, account_id, reversal_of
    )
    after = decode_int_cursor(cursor)
    entries = app.store(caller.tenant_id, lambda tx: tx.list_entries(flt, after, limit + 1))
    page, next_cursor = page_of(entries, limit, lambda entry: entry.sequence)
    return EntryPage(data=[EntryOut.of(e) for e in page], next_cursor=next_cursor)


@router.get("/v1/journal/{entry_id}", response_model=EntryOut)
def get_entry(entry_id: UUID, app: ContainerDep, caller: Viewer) -> EntryOut:
    entry = app.store(caller.tenant_id, lambda tx: ledger.get_entry(tx, entry_id))
    return EntryOut.of(entry)


@router.post("/v1/journal/{entry_id}/reverse", status_code=201, response_model=EntryOut)
def reverse_entry(
    request: Request,
    entry_id: UUID,
    app: ContainerDep,
    caller: Accountant,
    idempotency_key: IdempotencyKey = None,
    body: ReversalCreate | None = None,
) -> Response:
    options = body or ReversalCreate()

    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        entry = ledger.reverse_entry(
            tx,
            entry_id,
            uuid4(),
            app.clock.now(),
            effective_date=options.effective_date,
            memo=options.memo,
        )
        return 201, render(EntryOut.of(entry))

    payload = options.model_dump(mode="json", exclude_unset=True)
    return idempotent_write(request, app, caller, idempotency_key, payload, operation)


@router.get("/v1/trial-balance", response_model=TrialBalanceOut)
def trial_balance(app: ContainerDep, caller: Viewer) -> TrialBalanceOut:
    currencies, accounts = app.store(caller.tenant_id, lambda tx: tx.trial_balance())
    totals = [CurrencyTotalsOut.of(c) for c in currencies]
    return TrialBalanceOut(
        balanced=all(t.balanced for t in totals),
        currencies=totals,
        accounts=[TrialBalanceAccountOut.of(a) for a in accounts],
    )


def utc_today() -> date:
    return datetime.now(UTC).date()
