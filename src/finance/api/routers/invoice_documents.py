"""An issued invoice's documents: the Mushak-6.3 tax invoice, a void's Mushak-6.7 credit note,
and a generic invoice PDF for tenants outside Bangladesh VAT, each as JSON or PDF.

Documents are read-only views of the invoice's frozen figures, built on every request (nothing
is stored, so they cannot drift from the invoice). A draft or discarded invoice has no tax
invoice and an invoice that was not voided has no credit note: 409 with the code of its state.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import TypeAdapter

from finance.adapters.pdf import render_note, render_tax_invoice
from finance.api.deps import ContainerDep, Viewer
from finance.domain.invoicing.documents import (
    NoteDocument,
    TaxInvoiceDocument,
    credit_note_of_void,
    tax_invoice,
)
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
_PDF: dict[int | str, dict[str, Any]] = {
    200: {"description": "The document as PDF", "content": {"application/pdf": {}}}
}
_TAX_INVOICE_JSON = TypeAdapter(TaxInvoiceDocument)
_NOTE_JSON = TypeAdapter(NoteDocument)
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
_BASE = "/v1/invoices/{invoice_id}"


def _load(app: ContainerDep, caller: Viewer, invoice_id: UUID) -> Invoice:
    return app.store(caller.tenant_id, lambda tx: invoicing.load(tx, invoice_id, None))


def _document(content: bytes, media_type: str, name: str, number: str) -> Response:
    # Invoice numbers carry slashes (DHK/2025-26/000001): not in a file name.
    filename = f"{name}-{_UNSAFE_FILENAME.sub('-', number)}.{media_type.split('/')[1]}"
    return Response(
        content=content,
        media_type=media_type,
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


@router.get(f"{_BASE}/documents/mushak-6.3", response_model=TaxInvoiceDocument)
def mushak_63(
    invoice_id: UUID, app: ContainerDep, caller: Viewer, signatory: Signatory = None
) -> Response:
    """The Mushak-6.3 tax invoice of an issued invoice."""
    document = tax_invoice(_load(app, caller, invoice_id), signatory=signatory)
    content = _TAX_INVOICE_JSON.dump_json(document)
    return _document(content, "application/json", "mushak-6.3", document.number)


@router.get(f"{_BASE}/documents/mushak-6.3.pdf", response_class=Response, responses=_PDF)
def mushak_63_pdf(
    invoice_id: UUID, app: ContainerDep, caller: Viewer, signatory: Signatory = None
) -> Response:
    document = tax_invoice(_load(app, caller, invoice_id), signatory=signatory)
    return _document(render_tax_invoice(document), "application/pdf", "mushak-6.3", document.number)


@router.get(f"{_BASE}/documents/mushak-6.7", response_model=NoteDocument)
def mushak_67(
    invoice_id: UUID, app: ContainerDep, caller: Viewer, signatory: Signatory = None
) -> Response:
    """The Mushak-6.7 credit note of a voided invoice, for its full amount."""
    document = credit_note_of_void(_load(app, caller, invoice_id), signatory=signatory)
    content = _NOTE_JSON.dump_json(document)
    return _document(content, "application/json", "mushak-6.7", document.number)


@router.get(f"{_BASE}/documents/mushak-6.7.pdf", response_class=Response, responses=_PDF)
def mushak_67_pdf(
    invoice_id: UUID, app: ContainerDep, caller: Viewer, signatory: Signatory = None
) -> Response:
    document = credit_note_of_void(_load(app, caller, invoice_id), signatory=signatory)
    return _document(render_note(document), "application/pdf", "mushak-6.7", document.number)


@router.get(f"{_BASE}/pdf", response_class=Response, responses=_PDF)
def invoice_pdf(
    invoice_id: UUID, app: ContainerDep, caller: Viewer, signatory: Signatory = None
) -> Response:
    """A generic invoice (no Mushak heading, the same figures), for tenants outside Bangladesh
    VAT."""
    document = tax_invoice(_load(app, caller, invoice_id), signatory=signatory, generic=True)
    return _document(render_tax_invoice(document), "application/pdf", "invoice", document.number)
