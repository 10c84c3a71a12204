"""/v1/accounts: open, list, read, close; balances and statements."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from finance import limits
from finance.api.deps import (
    Accountant,
    Admin,
    ContainerDep,
    IdempotencyKey,
    Viewer,
    idempotent_write,
)
from finance.api.pagination import (
    Cursor,
    Limit,
    decode_code_cursor,
    decode_int_cursor,
    page_of,
)
from finance.api.schemas import (
    AccountCreate,
    AccountLineOut,
    AccountLinePage,
    AccountOut,
    AccountPage,
    BalanceOut,
    IsoDate,
    render,
)
from finance.domain.accounts import AccountSpec
from finance.proofs.strict_json import JSON_INT_MAX
from finance.services import ledger, queries
from finance.services.ports import LedgerTransaction

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


@router.post("", status_code=201, response_model=AccountOut)
def create_account(
    request: Request,
    body: AccountCreate,
    app: ContainerDep,
    caller: Accountant,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    spec = AccountSpec(
        code=body.code,
        name=body.name,
        type=body.type,
        currency=body.currency,
        debits_must_not_exceed_credits=body.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=body.credits_must_not_exceed_debits,
        metadata=body.metadata,
    )

    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        account = ledger.open_account(tx, spec, uuid4(), app.clock.now())
        return 201, render(AccountOut.of(account))

    payload = body.model_dump(mode="json")
    return idempotent_write(request, app, caller, idempotency_key, payload, operation)


@router.get("", response_model=AccountPage)
def list_accounts(
    app: ContainerDep,
    caller: Viewer,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    cursor: Cursor = None,
) -> AccountPage:
    after = decode_code_cursor(cursor)
    accounts = app.store(caller.tenant_id, lambda tx: queries.list_accounts(tx, after, limit + 1))
    page, next_cursor = page_of(accounts, limit, lambda account: account.code)
    return AccountPage(data=[AccountOut.of(a) for a in page], next_cursor=next_cursor)


@router.get("/{account_id}", response_model=AccountOut)
def get_account(account_id: UUID, app: ContainerDep, caller: Viewer) -> AccountOut:
    account = app.store(caller.tenant_id, lambda tx: ledger.get_account(tx, account_id))
    return AccountOut.of(account)


@router.post("/{account_id}/close", response_model=AccountOut)
def close_account(
    request: Request,
    account_id: UUID,
    app: ContainerDep,
    caller: Admin,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        account = ledger.close_account(tx, account_id, app.clock.now())
        return 200, render(AccountOut.of(account))

    return idempotent_write(request, app, caller, idempotency_key, None, operation)


@router.get("/{account_id}/balance", response_model=BalanceOut)
def get_balance(
    account_id: UUID,
    app: ContainerDep,
    caller: Viewer,
    as_of: Annotated[IsoDate | None, Query(description="End of this effective date")] = None,
    # Bounded like every sequence a client can name (a JSON-safe integer): it is echoed in
    # the response, and a larger one would reach the database as a number it cannot compare.
    as_of_sequence: Annotated[
        int | None,
        Query(ge=0, le=JSON_INT_MAX, description="Right after the entry with this sequence"),
    ] = None,
) -> BalanceOut:
    item = app.store(
        caller.tenant_id,
        lambda tx: ledger.account_balance(
            tx, account_id, as_of_sequence=as_of_sequence, as_of_date=as_of
        ),
    )
    return BalanceOut.of(item)


@router.get("/{account_id}/entries", response_model=AccountLinePage)
def account_entries(
    account_id: UUID,
    app: ContainerDep,
    caller: Viewer,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    cursor: Cursor = None,
) -> AccountLinePage:
    after = decode_int_cursor(cursor)
    lines = app.store(
        caller.tenant_id,
        lambda tx: queries.account_statement(tx, account_id, after, limit + 1),
    )
    # The account's posting number, not the entry's sequence: an entry can touch the account
    # twice, and a page may end between its two lines.
    page, next_cursor = page_of(lines, limit, lambda line: line.account_posting_sequence)
    return AccountLinePage(data=[AccountLineOut.of(ln) for ln in page], next_cursor=next_cursor)
