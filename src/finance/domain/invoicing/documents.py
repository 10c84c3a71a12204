"""The documents an issued invoice gives: the Mushak-6.3 tax invoice, and the Mushak-6.7 credit
note (6.8 debit note) that adjusts it. Pure values built from the invoice's frozen figures, so
a document says exactly what was issued and posted, never a recomputation under today's rates.

Every amount is kept twice: integer minor units (`minor`) for machines and the display string
of `finance.domain.money.format_minor` (`text`) for people, so the JSON and the PDF cannot
disagree. A note is one model for both directions: its `kind` says whether its amounts reduce
(credit) or increase (debit) what the related invoice charged, and its lines are whatever the
caller adjusts; a void's credit note adjusts every line by its full amount.

Times on a Mushak form are Bangladesh Standard Time (UTC+06:00, without daylight saving since
2009), the time the National Board of Revenue reads; the generic invoice keeps UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.domain.invoicing.figures import InvoiceFigures, LineFigures
from finance.domain.invoicing.invoice import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    NoteKind,
    Party,
    require_status,  # names a refused state by its code (invoice_is_draft...)
)
from finance.domain.invoicing.tax import Levy
from finance.domain.money import format_minor

BANGLADESH_TIME = timezone(timedelta(hours=6), "BST")


class DocumentForm(enum.StrEnum):
    """The form a document is printed on; `GENERIC` is an invoice outside Bangladesh VAT."""

    TAX_INVOICE = "Mushak-6.3"
    CREDIT_NOTE = "Mushak-6.7"
    DEBIT_NOTE = "Mushak-6.8"
    GENERIC = "invoice"


_NOTE_FORMS = {NoteKind.CREDIT: DocumentForm.CREDIT_NOTE, NoteKind.DEBIT: DocumentForm.DEBIT_NOTE}


_TITLES = {
    DocumentForm.TAX_INVOICE: "Tax Invoice",
    DocumentForm.CREDIT_NOTE: "Credit Note",
    DocumentForm.DEBIT_NOTE: "Debit Note",
    DocumentForm.GENERIC: "Invoice",
}
# Issued in every state but these: a draft has no number and a discarded draft never had one.
_ISSUED = (
    InvoiceStatus.OPEN,
    InvoiceStatus.PAID,
    InvoiceStatus.VOID,
    InvoiceStatus.UNCOLLECTIBLE,
)


@dataclass(frozen=True)
class Money:
    minor: int
    text: str

    @classmethod
    def of(cls, amount_minor: int, currency: str) -> Money:
        return cls(amount_minor, format_minor(amount_minor, currency))


@dataclass(frozen=True)
class Rate:
    """A levy as printed: a percentage, or an amount per unit of quantity."""

    percent: str | None
    per_unit_minor: int | None
    text: str

    @classmethod
    def of(cls, levy: Levy | None, currency: str, unit: str) -> Rate | None:
        if levy is None:
            return None
        if levy.percent is not None:
            percent = format(levy.percent.normalize(), "f")
            return cls(percent, None, f"{percent}%")
        per_unit = levy.per_unit_minor or 0
        return cls(None, per_unit, f"{format_minor(per_unit, currency)}/{unit}")


@dataclass(frozen=True)
class PartyBlock:
    name: str
    address: str
    bin: str | None  # shown NNNNNNNNN-NNNN
    tin: str | None

    @classmethod
    def of(cls, party: Party) -> PartyBlock:
        bin_ = None if party.bin is None else str(party.bin)
        tin = None if party.tin is None else str(party.tin)
        return cls(party.name, party.address, bin_, tin)


@dataclass(frozen=True)
class DocumentLine:
    """One row of the form (Mushak-6.3 columns 1 to 11)."""

    position: int  # from 1, as printed
    description: str
    unit: str
    quantity: str
    unit_price: Money
    amount: Money  # quantity x unit price, before the discount
    discount: Money
    value: Money  # the value of the supply: amount - discount
    sd_rate: Rate | None
    sd: Money
    vat_rate: Rate | None
    vat: Money
    total: Money  # value including all taxes
    supply: str  # taxable, zero_rated or exempt


@dataclass(frozen=True)
class Totals:
    amount: Money
    discount: Money
    value: Money
    sd: Money
    vat: Money
    total: Money


@dataclass(frozen=True)
class Signatory:
    """Who signs: the seller, by its authorised person (the seller's name unless named)."""

    organisation: str
    authorised_person: str


@dataclass(frozen=True)
class TaxInvoiceDocument:
    """Mushak-6.3 (or, with `form` GENERIC, the same figures without the Mushak heading)."""

    form: DocumentForm
    title: str
    invoice_id: str
    number: str
    issue_date: date
    issued_at: datetime
    issued_at_text: str
    due_date: date | None
    currency: str
    seller: PartyBlock
    buyer: PartyBlock
    destination: str | None
    payment_terms: str | None
    prices_include_tax: bool
    lines: tuple[DocumentLine, ...]
    totals: Totals
    signatory: Signatory


@dataclass(frozen=True)
class NoteDocument:
    """Mushak-6.7 (credit) or 6.8 (debit) note: which invoice it adjusts and by how much."""

    form: DocumentForm
    kind: NoteKind
    title: str
    invoice_id: str
    number: str
    issued_at: datetime
    issued_at_text: str
    related_invoice_number: str
    related_invoice_date: date
    reason: str
    currency: str
    seller: PartyBlock
    buyer: PartyBlock
    lines: tuple[DocumentLine, ...]  # the adjustment of each line, as positive amounts
    totals: Totals
    signatory: Signatory


@dataclass(frozen=True)
class Adjustment:
    """A line a note adjusts, with the figures of the adjustment (not of the original line)."""

    line: InvoiceLine
    figures: LineFigures


def tax_invoice(
    invoice: Invoice, *, signatory: str | None = None, generic: bool = False
) -> TaxInvoiceDocument:
    """The tax invoice of an issued invoice; a draft or a discarded one is refused with the
    code of its state (`invoice_is_draft`, `invoice_is_discarded`)."""
    require_status(invoice, *_ISSUED)
    figures = _issued_figures(invoice)
    number, issue_date, issued_at = invoice.number, invoice.issue_date, invoice.issued_at
    if number is None or issue_date is None or issued_at is None:
        raise InvariantViolation(f"issued invoice {invoice.id} has no number, date or time")
    header, currency = invoice.header, invoice.header.currency
    form = DocumentForm.GENERIC if generic else DocumentForm.TAX_INVOICE
    pairs = zip(invoice.lines, figures.lines, strict=True)
    lines = tuple(_line(i, a, currency) for i, a in enumerate(pairs, start=1))
    return TaxInvoiceDocument(
        form=form,
        title=_TITLES[form],
        invoice_id=str(invoice.id),
        number=number,
        issue_date=issue_date,
        issued_at=issued_at,
        issued_at_text=_time_text(issued_at, generic=generic),
        due_date=invoice.due_date,
        currency=currency,
        seller=PartyBlock.of(header.seller),
        buyer=PartyBlock.of(header.customer),
        destination=header.destination,
        payment_terms=header.payment_terms,
        prices_include_tax=header.prices_include_tax,
        lines=lines,
        totals=_totals(lines, currency),
        signatory=_signatory(header.seller, signatory),
    )


def credit_note_of_void(invoice: Invoice, *, signatory: str | None = None) -> NoteDocument:
    """The credit note a void issued: every line credited by its full amount."""
    require_status(invoice, InvoiceStatus.VOID)
    figures = _issued_figures(invoice)
    if invoice.credit_note_number is None or invoice.voided_at is None:
        raise InvariantViolation(f"void invoice {invoice.id} has no credit note number or time")
    adjustments = [
        Adjustment(line, line_figures)
        for line, line_figures in zip(invoice.lines, figures.lines, strict=True)
    ]
    return note(
        invoice,
        kind=NoteKind.CREDIT,
        number=invoice.credit_note_number,
        issued_at=invoice.voided_at,
        reason="Invoice cancelled (void): full amount credited",
        adjustments=adjustments,
        signatory=signatory,
    )


def issued_note(invoice: Invoice, position: int, *, signatory: str | None = None) -> NoteDocument:
    """The document of the invoice's `position`-th credit or debit note (from 1, in the order
    they were issued): Mushak-6.7 or 6.8 with the note's own lines and figures."""
    require_status(invoice, *_ISSUED)  # a draft's refusal names its state, not a missing note
    if not 1 <= position <= len(invoice.notes):
        raise LedgerRejection(
            RejectCode.INVOICE_NOT_FOUND,
            f"invoice {invoice.id} has no note {position} (it has {len(invoice.notes)})",
        )
    issued = invoice.notes[position - 1]
    adjustments = [
        Adjustment(line, line_figures)
        for line, line_figures in zip(issued.lines, issued.figures.lines, strict=True)
    ]
    return note(
        invoice,
        kind=issued.kind,
        number=issued.number,
        issued_at=issued.at,
        reason=issued.reason,
        adjustments=adjustments,
        signatory=signatory,
    )


def note(
    invoice: Invoice,
    *,
    kind: NoteKind,
    number: str,
    issued_at: datetime,
    reason: str,
    adjustments: Sequence[Adjustment],
    signatory: str | None = None,
) -> NoteDocument:
    """A credit or debit note against an issued invoice for the given adjustments: a void's
    full credit, or later a partial credit or a debit for a price change."""
    require_status(invoice, *_ISSUED)
    if not adjustments:
        raise InvariantViolation(f"a {kind.value} note of invoice {invoice.id} adjusts nothing")
    if invoice.number is None or invoice.issue_date is None:
        raise InvariantViolation(f"issued invoice {invoice.id} has no number or date")
    header, currency = invoice.header, invoice.header.currency
    lines = tuple(
        _line(i, (a.line, a.figures), currency) for i, a in enumerate(adjustments, start=1)
    )
    return NoteDocument(
        form=_NOTE_FORMS[kind],
        kind=kind,
        title=_TITLES[_NOTE_FORMS[kind]],
        invoice_id=str(invoice.id),
        number=number,
        issued_at=issued_at,
        issued_at_text=_time_text(issued_at, generic=False),
        related_invoice_number=invoice.number,
        related_invoice_date=invoice.issue_date,
        reason=reason,
        currency=currency,
        seller=PartyBlock.of(header.seller),
        buyer=PartyBlock.of(header.customer),
        lines=lines,
        totals=_totals(lines, currency),
        signatory=_signatory(header.seller, signatory),
    )


def _issued_figures(invoice: Invoice) -> InvoiceFigures:
    if invoice.figures is None or len(invoice.figures.lines) != len(invoice.lines):
        raise InvariantViolation(f"issued invoice {invoice.id} has no figures for its lines")
    return invoice.figures


def _line(position: int, pair: tuple[InvoiceLine, LineFigures], currency: str) -> DocumentLine:
    line, figures = pair

    def money(amount_minor: int) -> Money:
        return Money.of(amount_minor, currency)

    return DocumentLine(
        position=position,
        description=line.description,
        unit=line.unit,
        quantity=format(line.quantity.normalize(), "f"),
        unit_price=money(line.unit_price_minor),
        amount=money(figures.gross_minor),
        discount=money(figures.discount_minor),
        value=money(figures.value_minor),
        sd_rate=Rate.of(figures.rate.sd, currency, line.unit),
        sd=money(figures.sd_minor),
        vat_rate=Rate.of(figures.rate.vat, currency, line.unit),
        vat=money(figures.vat_minor),
        total=money(figures.total_minor),
        supply=figures.supply.value,
    )


def _totals(lines: Sequence[DocumentLine], currency: str) -> Totals:
    """Sums of the printed lines, so a document's totals always equal its rows."""

    def total(pick: str) -> Money:
        return Money.of(sum(getattr(line, pick).minor for line in lines), currency)

    return Totals(
        amount=total("amount"),
        discount=total("discount"),
        value=total("value"),
        sd=total("sd"),
        vat=total("vat"),
        total=total("total"),
    )


def _signatory(seller: Party, person: str | None) -> Signatory:
    named = person.strip() if person is not None else ""
    return Signatory(seller.name, named or seller.name)


def _time_text(at: datetime, *, generic: bool) -> str:
    if generic:
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return at.astimezone(BANGLADESH_TIME).strftime("%Y-%m-%d %H:%M BST (UTC+06:00)")
