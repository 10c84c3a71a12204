"""An issued invoice's documents: the Mushak-6.3 tax invoice, a void's Mushak-6.7 credit note,
and a generic invoice PDF for tenants outside Bangladesh VAT, each as JSON or PDF.

Documents are read-only views of the invoice's frozen figures, built on every request (nothing
is stored, so they cannot drift from the invoice). A draft or discarded invoice has no tax
invoice and an invoice that was not voided has no credit note: 409 with the code of its state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Protocol, TypeVar
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import TypeAdapter

from finance.adapters.pdf import render_note, render_tax_invoice
from finance.api.deps import ContainerDep, Viewer
from finance.domain.invoicing.documents import (
    NoteDocument,
    TaxInvoiceDocument,
    credit_note_of_void,
    issued_note,
    tax_invoice,
)
from finance.domain.invoicing.figures import LINES_PER_INVOICE_MAX
from finance.domain.invoicing.invoice import Invoice
from finance.services import invoicing

router = APIRouter(tags=["invoices"])

SIGNATORY_CHARS_MAX = 200
Signatory = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=SIGNATORY_CHARS_MAX,
        description="The authorised person who signs for the seller (default: the seller)",
    ),
]
# Only a bound on the path parameter; a position past the invoice's notes is a 404 anyway.
NotePosition = Annotated[int, Path(ge=1, le=LINES_PER_INVOICE_MAX)]
# A draft, a discarded invoice, or (for a credit note) one not voided has no such document.
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The invoice's state has no such document (invoice_is_draft...)"}
}
_PDF: dict[int | str, dict[str, Any]] = {
    200: {"description": "The document as PDF", "content": {"application/pdf": {}}},
    **_CONFLICT,
}
_TAX_INVOICE_JSON = TypeAdapter(TaxInvoiceDocument)
_NOTE_JSON = TypeAdapter(NoteDocument)
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
_BASE = "/v1/invoices/{invoice_id}"
_MUSHAK_63, _MUSHAK_67 = "mushak-6.3", "mushak-6.7"


class _Numbered(Protocol):
    @property
    def number(self) -> str: ...


Document = TypeVar("Document", bound=_Numbered)
_JSON, _PDF_TYPE = "application/json", "application/pdf"


def _respond(
    app: ContainerDep,
    caller: Viewer,
    invoice_id: UUID,
    build: Callable[[Invoice], Document],
    encode: Callable[[Document], bytes],
    media_type: str,
    name: str,
) -> Response:
    invoice = app.store(caller.tenant_id, lambda tx: invoicing.load(tx, invoice_id, None))
    document = build(invoice)
    # Invoice numbers carry slashes (DHK/2025-26/000001): not in a file name.
    filename = f"{name}-{_UNSAFE_FILENAME.sub('-', document.number)}.{media_type.split('/')[1]}"
    return Response(
        content=encode(document),
        media_type=media_type,
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


@router.get(f"{_BASE}/documents/mushak-6.3", response_model=TaxInvoiceDocument, responses=_CONFLICT)
def mushak_63(
    invoice_id: UUID, app: ContainerDep, caller: Viewer, signatory: Signatory = None
) -> Response:
    """The Mushak-6.3 tax invoice of an issued invoice."""
    build = partial(tax_invoice, signatory=signatory)
    return _respond(app, caller, invoice_id, build, _TAX_INVOICE_JSON.dump_json, _JSON, _MUSHAK_63)


@router.get(f"{_BASE}/documents/mushak-6.3.pdf", response_class=Response, responses=_PDF)
def mushak_63_pdf(
    invoice_id: UUID, app: ContainerDep, caller: Viewer, signatory: Signatory = None
) -> Response:
    build = partial(tax_invoice, signatory=signatory)
    return _respond(app, caller, invoice_id, build, render_tax_invoice, _PDF_TYPE, _MUSHAK_63)


@router.get(f"{_BASE}/documents/mushak-6.7", response_model=NoteDocument, responses=_CONFLICT)
def mushak_67(
    invoice_id: UUID, app: ContainerDep, caller: Viewer, signatory: Signatory = None
) -> Response:
    """The Mushak-6.7 credit note of a voided invoice, for its full amount."""
    build = partial(credit_note_of_void, signatory=signatory)
    return _respond(app, caller, invoice_id, build, _NOTE_JSON.dump_json, _JSON, _MUSHAK_67)


@router.get(f"{_BASE}/documents/mushak-6.7.pdf", response_class=Response, responses=_PDF)
def mushak_67_pdf(
    invoice_id: UUID, app: ContainerDep, caller: Viewer, signatory: Signatory = None
) -> Response:
    build = partial(credit_note_of_void, signatory=signatory)
    return _respond(app, caller, invoice_id, build, render_note, _PDF_TYPE, _MUSHAK_67)


# The PDF route first: "2.pdf" would otherwise reach the JSON route as a position, and fail.
@router.get(f"{_BASE}/documents/notes/{{position}}.pdf", response_class=Response, responses=_PDF)
def note_pdf(
    invoice_id: UUID,
    position: NotePosition,
    app: ContainerDep,
    caller: Viewer,
    signatory: Signatory = None,
) -> Response:
    build = partial(issued_note, position=position, signatory=signatory)
    return _respond(app, caller, invoice_id, build, render_note, _PDF_TYPE, "note")


@router.get(
    f"{_BASE}/documents/notes/{{position}}", response_model=NoteDocument, responses=_CONFLICT
)
def note_json(
    invoice_id: UUID,
    position: NotePosition,
    app: ContainerDep,
    caller: Viewer,
    signatory: Signatory = None,
) -> Response:
    """The Mushak-6.7 (credit) or 6.8 (debit) note issued `position`-th on this invoice (from 1,
    the order of the invoice's `notes`)."""
    build = partial(issued_note, position=position, signatory=signatory)
    return _respond(app, caller, invoice_id, build, _NOTE_JSON.dump_json, _JSON, "note")


@router.get(f"{_BASE}/pdf", response_class=Response, responses=_PDF)
def invoice_pdf(
    invoice_id: UUID, app: ContainerDep, caller: Viewer, signatory: Signatory = None
) -> Response:
    """A generic invoice (no Mushak heading, the same figures), for tenants outside Bangladesh
    VAT."""
    build = partial(tax_invoice, signatory=signatory, generic=True)
    return _respond(app, caller, invoice_id, build, render_tax_invoice, _PDF_TYPE, "invoice")
