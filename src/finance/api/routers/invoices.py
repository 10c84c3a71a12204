"""/v1/invoices, /v1/tax-codes and /v1/invoicing/settings.

Every write is idempotent under its Idempotency-Key. A write to an existing invoice may send
`If-Match` with the version it last read (the `ETag` of GET): a stale one is a 409
`invoice_version_conflict`, so that two people editing one draft cannot overwrite each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Request
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
from finance.api.invoice_schemas import (
    InvoiceDraftIn,
    InvoiceOut,
    InvoicePage,
    InvoiceSettingsIn,
    NoteIn,
    PaymentIn,
    TaxCodeIn,
    TaxCodeList,
    TaxCodeOut,
    summary_of,
)
from finance.api.pagination import Cursor, Limit, decode_uuid_cursor, page_of
from finance.api.schemas import IsoDate, render
from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.invoicing.invoice import Invoice, InvoiceStatus, NoteKind
from finance.services import invoicing
from finance.services.ids import new_entry_id
from finance.services.ports import InvoiceFilter, LedgerTransaction

router = APIRouter(tags=["invoices"])

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=32,
        description="The invoice's version as last read (its ETag); refused if it changed",
    ),
]
TaxCodePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]


def expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise LedgerRejection(
            RejectCode.VALIDATION_FAILED, 'If-Match is the invoice\'s version, e.g. "3"'
        )
    return int(raw)


def _invoice_response(status: int, invoice: Invoice) -> tuple[int, bytes]:
    return status, render(InvoiceOut.of(invoice))


# Settings and tax codes --------------------------------------------------------------------


@router.put("/v1/invoicing/settings", response_model=InvoiceSettingsIn)
def put_settings(
    request: Request,
    body: InvoiceSettingsIn,
    app: ContainerDep,
    caller: Admin,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        invoicing.configure(tx, body.to_settings(), app.clock.now())
        return 200, render(body)

    payload = body.model_dump(mode="json")
    return idempotent_write(request, app, caller, idempotency_key, payload, operation)


@router.get("/v1/invoicing/settings", response_model=InvoiceSettingsIn)
def get_settings(app: ContainerDep, caller: Viewer) -> InvoiceSettingsIn:
    settings = app.store(caller.tenant_id, lambda tx: tx.invoices.settings())
    if settings is None:
        raise LedgerRejection(
            RejectCode.INVOICE_NOT_FOUND, "invoicing is not configured for this tenant"
        )
    return InvoiceSettingsIn.of(settings)


@router.put("/v1/tax-codes/{code}", response_model=TaxCodeOut)
def put_tax_code(
    request: Request,
    code: TaxCodePath,
    body: TaxCodeIn,
    app: ContainerDep,
    caller: Admin,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    definition = body.to_code(code)

    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        saved = invoicing.define_tax_code(tx, definition, app.clock.now())
        return 200, render(TaxCodeOut.of(saved))

    payload = body.model_dump(mode="json")
    return idempotent_write(request, app, caller, idempotency_key, payload, operation)


@router.get("/v1/tax-codes", response_model=TaxCodeList)
def list_tax_codes(app: ContainerDep, caller: Viewer) -> TaxCodeList:
    codes = app.store(caller.tenant_id, lambda tx: tx.invoices.tax_codes())
    return TaxCodeList(data=[TaxCodeOut.of(codes[name]) for name in sorted(codes)])


@router.get("/v1/tax-codes/{code}", response_model=TaxCodeOut)
def get_tax_code(code: TaxCodePath, app: ContainerDep, caller: Viewer) -> TaxCodeOut:
    codes = app.store(caller.tenant_id, lambda tx: tx.invoices.tax_codes())
    if code not in codes:
        raise LedgerRejection(RejectCode.TAX_CODE_NOT_FOUND, f"no tax code {code!r}")
    return TaxCodeOut.of(codes[code])


# Invoices ----------------------------------------------------------------------------------


@router.post("/v1/invoices", status_code=201, response_model=InvoiceOut)
def create_invoice(
    request: Request,
    body: InvoiceDraftIn,
    app: ContainerDep,
    caller: Accountant,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    header, lines = body.to_header(), body.to_lines()

    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        invoice_id = new_entry_id()  # time-ordered, like entries: lists page by id
        return _invoice_response(
            201, invoicing.create_draft(tx, invoice_id, header, lines, app.clock.now())
        )

    payload = body.model_dump(mode="json")
    return idempotent_write(request, app, caller, idempotency_key, payload, operation)


@router.get("/v1/invoices", response_model=InvoicePage)
def list_invoices(
    app: ContainerDep,
    caller: Viewer,
    status: InvoiceStatus | None = None,
    customer: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
    fiscal_year: Annotated[str | None, Query(pattern=r"^[0-9]{4}(-[0-9]{2})?$")] = None,
    issued_from: IsoDate | None = None,
    issued_to: IsoDate | None = None,
    limit: Limit = limits.PAGE_SIZE_DEFAULT,
    cursor: Cursor = None,
) -> InvoicePage:
    flt = InvoiceFilter(
        status=None if status is None else status.value,
        customer_name=customer,
        fiscal_year=fiscal_year,
        issued_from=issued_from,
        issued_to=issued_to,
    )
    after = decode_uuid_cursor(cursor)
    rows = app.store(caller.tenant_id, lambda tx: tx.invoices.list_invoices(flt, after, limit + 1))
    page, next_cursor = page_of(rows, limit, lambda row: str(row["id"]))
    return InvoicePage(data=[summary_of(row) for row in page], next_cursor=next_cursor)


@router.get("/v1/invoices/{invoice_id}", response_model=InvoiceOut)
def get_invoice(invoice_id: UUID, app: ContainerDep, caller: Viewer) -> Response:
    invoice = app.store(caller.tenant_id, lambda tx: invoicing.load(tx, invoice_id, None))
    return Response(
        content=render(InvoiceOut.of(invoice)),
        media_type="application/json",
        headers={"ETag": f'"{invoice.version}"'},
    )


@router.put("/v1/invoices/{invoice_id}", response_model=InvoiceOut)
def update_invoice(
    request: Request,
    invoice_id: UUID,
    body: InvoiceDraftIn,
    app: ContainerDep,
    caller: Accountant,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    header, lines, version = body.to_header(), body.to_lines(), expected_version(if_match)

    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        updated = invoicing.update_draft(
            tx, invoice_id, header, lines, app.clock.now(), expected_version=version
        )
        return _invoice_response(200, updated)

    payload = {"body": body.model_dump(mode="json"), "if_match": version}
    return idempotent_write(request, app, caller, idempotency_key, payload, operation)


Step = Callable[..., Invoice]


def _step(
    request: Request,
    app: ContainerDep,
    caller: Accountant,
    invoice_id: UUID,
    idempotency_key: str | None,
    if_match: str | None,
    step: Step,
) -> Response:
    version = expected_version(if_match)

    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        done = step(tx, invoice_id, app.clock.now(), expected_version=version)
        return _invoice_response(200, done)

    return idempotent_write(request, app, caller, idempotency_key, {"if_match": version}, operation)


def _add_step_route(action: str, step: Step, summary: str) -> None:
    """POST /v1/invoices/{invoice_id}/<action>: a state change with no body."""

    def endpoint(
        request: Request,
        invoice_id: UUID,
        app: ContainerDep,
        caller: Accountant,
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response:
        return _step(request, app, caller, invoice_id, idempotency_key, if_match, step)

    name = f"{action.replace('-', '_')}_invoice"
    endpoint.__name__ = name
    router.add_api_route(
        f"/v1/invoices/{{invoice_id}}/{action}",
        endpoint,
        methods=["POST"],
        response_model=InvoiceOut,
        name=name,
        summary=summary,
    )


for _action, _step_of, _summary in (
    ("issue", invoicing.issue, "Number the invoice, freeze its figures, post its receivable"),
    ("void", invoicing.void, "Reverse an issued invoice and issue its credit note"),
    ("write-off", invoicing.write_off, "Write what is outstanding off as bad debt"),
    ("discard", invoicing.discard, "Discard a draft (no number, nothing posted)"),
):
    _add_step_route(_action, _step_of, _summary)


@router.post("/v1/invoices/{invoice_id}/payments", response_model=InvoiceOut)
def record_payment(
    request: Request,
    invoice_id: UUID,
    body: PaymentIn,
    app: ContainerDep,
    caller: Accountant,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        paid = invoicing.record_payment(
            tx,
            invoice_id,
            payment_id=body.payment_id or str(idempotency_key),
            amount_minor=body.amount_minor,
            received_on=body.received_on,
            now=app.clock.now(),
            cash_account=body.cash_account_id,
        )
        return _invoice_response(200, paid)

    payload = body.model_dump(mode="json")
    return idempotent_write(request, app, caller, idempotency_key, payload, operation)


def _note(
    request: Request,
    app: ContainerDep,
    caller: Accountant,
    invoice_id: UUID,
    body: NoteIn,
    kind: NoteKind,
    idempotency_key: str | None,
    if_match: str | None,
) -> Response:
    version, lines = expected_version(if_match), body.to_lines()

    def operation(tx: LedgerTransaction) -> tuple[int, bytes]:
        noted = invoicing.issue_note(
            tx, invoice_id, kind, lines, body.reason, app.clock.now(), expected_version=version
        )
        return _invoice_response(201, noted)

    payload = {"body": body.model_dump(mode="json"), "if_match": version}
    return idempotent_write(request, app, caller, idempotency_key, payload, operation)


def _add_note_route(action: str, kind: NoteKind, summary: str) -> None:
    """POST /v1/invoices/{invoice_id}/<action>: a credit or debit note (201)."""

    def endpoint(
        request: Request,
        invoice_id: UUID,
        body: NoteIn,
        app: ContainerDep,
        caller: Accountant,
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response:
        return _note(request, app, caller, invoice_id, body, kind, idempotency_key, if_match)

    name = f"{kind.value}_note"
    endpoint.__name__ = name
    router.add_api_route(
        f"/v1/invoices/{{invoice_id}}/{action}",
        endpoint,
        methods=["POST"],
        status_code=201,
        response_model=InvoiceOut,
        name=name,
        summary=summary,
    )


_add_note_route("credit-notes", NoteKind.CREDIT, "Take part of an issued invoice back (Mushak-6.7)")
_add_note_route("debit-notes", NoteKind.DEBIT, "Add to an open invoice (Mushak-6.8)")
