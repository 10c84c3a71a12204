"""/v1/journal: post, read, list and reverse entries; /v1/trial-balance."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from finance import limits
from finance.api.deps import (
    Accountant,
    ContainerDep,
    IdempotencyKey,
    Viewer,
    idempotent_posting,
)
from finance.api.pagination import Cursor, Limit, decode_code_cursor, decode_int_cursor, page_of
from finance.api.schemas import (
    JOURNAL_BATCH_PATH,
    JOURNAL_PATH,
    BatchCreate,
    BatchOut,
    CurrencyTotalsOut,
    EntryCreate,
    EntryOut,
    EntryPage,
    IsoDate,
    ReversalCreate,
    TrialBalanceAccountOut,
    TrialBalanceOut,
    entry_response,
    render_batch,
)
from finance.domain.entries import ENTRY_TYPE_PATTERN, PostedEntry
from finance.services import batches, ledger, queries
from finance.services.ports import EntryFilter, LedgerTransaction

router = APIRouter(tags=["journal"])


@router.post(JOURNAL_PATH, status_code=201, response_model=EntryOut)
def post_entry(
    request: Request,
    body: EntryCreate,
    app: ContainerDep,
    caller: Accountant,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    def post(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
        now = app.clock.now()
        return ledger.post_entry(tx, body.to_draft(now.date()), entry_id, now)

    payload = body.idempotency_body()
    return idempotent_posting(request, app, caller, idempotency_key, payload, post)


@router.post(JOURNAL_BATCH_PATH, response_model=BatchOut)
def post_batch(body: BatchCreate, app: ContainerDep, caller: Accountant) -> Response:
    """Post up to FINANCE_BATCH_ENTRIES_MAX entries in one transaction, each with its own
    idempotency key (no Idempotency-Key header): one result per entry, in order. Whole-request
    problems (too many entries, a key twice, a chain left open) are errors; an entry refused
    is a result, and refuses the rest of its linked chain but nothing else."""
    entries = [item.to_batch_entry() for item in body.entries]

    def work(tx: LedgerTransaction) -> list[batches.BatchResult]:
        return batches.post_batch(
            tx,
            entries,
            app.clock.now(),
            entries_max=app.settings.batch_entries_max,
            respond=entry_response,
        )

    results = app.store(caller.tenant_id, work)
    return Response(content=render_batch(results), media_type="application/json")


@router.get(JOURNAL_PATH, response_model=EntryPage)
def list_entries(
    app: ContainerDep,
    caller: Viewer,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    cursor: Cursor = None,
    effective_from: IsoDate | None = None,
    effective_to: IsoDate | None = None,
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
    entries = app.store(
        caller.tenant_id, lambda tx: queries.list_entries(tx, flt, after, limit + 1)
    )
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

    def post(tx: LedgerTransaction, reversal_id: UUID) -> PostedEntry:
        return ledger.reverse_entry(
            tx,
            entry_id,
            reversal_id,
            app.clock.now(),
            effective_date=options.effective_date,
            memo=options.memo,
        )

    payload = options.model_dump(mode="json", exclude_unset=True)
    return idempotent_posting(request, app, caller, idempotency_key, payload, post)


@router.get("/v1/trial-balance", response_model=TrialBalanceOut)
def trial_balance(
    app: ContainerDep,
    caller: Viewer,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    cursor: Cursor = None,
) -> TrialBalanceOut:
    """Totals per currency over all accounts on every page; the accounts themselves are
    paged by code like GET /v1/accounts."""
    after = decode_code_cursor(cursor)
    result = app.store(caller.tenant_id, lambda tx: queries.trial_balance(tx, after, limit + 1))
    page, next_cursor = page_of(result.accounts, limit, lambda item: item.account.code)
    return TrialBalanceOut(
        balanced=result.balanced,
        currencies=[CurrencyTotalsOut.of(c) for c in result.currencies],
        accounts=[TrialBalanceAccountOut.of(a) for a in page],
        next_cursor=next_cursor,
    )
