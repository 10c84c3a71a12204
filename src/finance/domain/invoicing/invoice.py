"""An invoice as an append-only stream of events (event sourcing).

Commands (`draft`, `add_line`, `issue`, `record_payment`, ...) check the invoice's current
state and return the events they produce; `apply` folds an event into the state, and the state
is only ever the fold of its events (`replay`). Each event raises the version by one: a command
decided against version N is appended only if the stream is still at N, which the store checks.

States: draft -> open (issued) -> paid | void | uncollectible; uncollectible -> paid | void;
draft -> discarded. Alongside, the payment status (unpaid, partially paid, paid, overpaid) from
the payments recorded against the amount due. A command the state does not allow is refused
with a code naming the state (`invoice_is_void`...). Nothing issued is ever removed: a void or
a write-off is a new event, and in the ledger a new entry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.domain.invoicing.figures import (
    LINES_PER_INVOICE_MAX,
    InvoiceFigures,
    LineInput,
    invoice_figures,
    line_figures,
)
from finance.domain.invoicing.fiscal import check_location
from finance.domain.invoicing.tax import TaxCode, find_tax_code
from finance.domain.invoicing.tax_ids import Bin, Tin
from finance.domain.metadata import check_text
from finance.domain.money import check_amount_minor, currency_exponent

TEXT_CHARS_MAX = 500


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"
    DISCARDED = "discarded"


class PaymentStatus(enum.StrEnum):
    UNPAID = "unpaid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERPAID = "overpaid"


_STATE_CODE = {
    InvoiceStatus.DRAFT: RejectCode.INVOICE_IS_DRAFT,
    InvoiceStatus.OPEN: RejectCode.INVOICE_IS_OPEN,
    InvoiceStatus.PAID: RejectCode.INVOICE_IS_PAID,
    InvoiceStatus.VOID: RejectCode.INVOICE_IS_VOID,
    InvoiceStatus.UNCOLLECTIBLE: RejectCode.INVOICE_IS_UNCOLLECTIBLE,
    InvoiceStatus.DISCARDED: RejectCode.INVOICE_IS_DISCARDED,
}


@dataclass(frozen=True)
class Party:
    """A customer or the seller: who, where, and their tax identifiers."""

    name: str
    address: str
    tin: Tin | None = None
    bin: Bin | None = None

    def __post_init__(self) -> None:
        _required_text(self.name, "name")
        _required_text(self.address, "address")


@dataclass(frozen=True)
class Header:
    """What a draft says besides its lines; editable until the invoice is issued."""

    customer: Party
    seller: Party
    location: str
    currency: str
    due_date: date | None = None
    issue_date: date | None = None  # None: the day it is issued
    payment_terms: str | None = None
    destination: str | None = None  # destination of supply, on the Mushak-6.3 form
    prices_include_tax: bool = False
    replaces: UUID | None = None  # a void invoice this one replaces

    def __post_init__(self) -> None:
        check_location(self.location)
        currency_exponent(self.currency)
        for name in ("payment_terms", "destination"):
            check_text(getattr(self, name), field=name, chars_max=TEXT_CHARS_MAX)
        if self.issue_date and self.due_date and self.due_date < self.issue_date:
            raise _invalid("the due date is before the issue date")


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    unit: str
    quantity: Decimal
    unit_price_minor: int
    tax_code: str
    discount_minor: int = 0
    discount_percent: Decimal | None = None

    def __post_init__(self) -> None:
        _required_text(self.description, "description")
        _required_text(self.unit, "unit")

    def as_input(self) -> LineInput:
        return LineInput(
            self.quantity, self.unit_price_minor, self.discount_minor, self.discount_percent
        )


# Events: past tense, plain values. `at` is when the command was decided.


@dataclass(frozen=True)
class InvoiceDrafted:
    header: Header
    at: datetime


@dataclass(frozen=True)
class HeaderChanged:
    header: Header
    at: datetime


@dataclass(frozen=True)
class LineAdded:
    line: InvoiceLine
    at: datetime


@dataclass(frozen=True)
class LineRemoved:
    position: int
    at: datetime


@dataclass(frozen=True)
class InvoiceDiscarded:
    at: datetime


@dataclass(frozen=True)
class InvoiceIssued:
    number: str
    fiscal_year: str
    issue_date: date
    due_date: date
    figures: InvoiceFigures
    entry_id: UUID
    at: datetime


@dataclass(frozen=True)
class PaymentRecorded:
    payment_id: str
    amount_minor: int
    received_on: date
    entry_id: UUID
    at: datetime


@dataclass(frozen=True)
class InvoiceVoided:
    credit_note_number: str
    entry_id: UUID
    at: datetime


class NoteKind(enum.StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


@dataclass(frozen=True)
class Note:
    """A credit note (takes part of an issued invoice back) or a debit note (adds to it), with
    its own lines and figures under the rates of the invoice's issue date. A credit note first
    reduces what is still owed; what it takes back beyond that was paid, and becomes the
    customer's credit (`refund_minor`)."""

    kind: NoteKind
    number: str
    reason: str
    lines: tuple[InvoiceLine, ...]
    figures: InvoiceFigures
    to_receivable_minor: int
    refund_minor: int
    entry_id: UUID
    at: datetime


@dataclass(frozen=True)
class NoteIssued:
    note: Note

    @property
    def at(self) -> datetime:
        return self.note.at


@dataclass(frozen=True)
class InvoiceWrittenOff:
    amount_minor: int
    entry_id: UUID
    at: datetime


InvoiceEvent = (
    InvoiceDrafted
    | HeaderChanged
    | LineAdded
    | LineRemoved
    | InvoiceDiscarded
    | InvoiceIssued
    | PaymentRecorded
    | InvoiceVoided
    | InvoiceWrittenOff
    | NoteIssued
)


@dataclass(frozen=True)
class PaymentAllocation:
    """Where a payment goes, in this order: the receivable still owed, then what was written
    off (a recovery), then the customer's credit (an over-payment)."""

    receivable_minor: int
    recovery_minor: int
    credit_minor: int


@dataclass(frozen=True)
class Invoice:
    id: UUID
    version: int
    status: InvoiceStatus
    header: Header
    lines: tuple[InvoiceLine, ...] = ()
    number: str | None = None
    fiscal_year: str | None = None
    issue_date: date | None = None
    due_date: date | None = None
    figures: InvoiceFigures | None = None
    issue_entry_id: UUID | None = None
    settled_minor: int = 0  # payments that reduced the receivable
    written_off_minor: int = 0
    recovered_minor: int = 0  # payments received after a write-off
    credit_minor: int = 0  # payments beyond what was owed: the customer's credit
    issued_at: datetime | None = None
    # A void's credit note, for the full amount.
    credit_note_number: str | None = None
    voided_at: datetime | None = None
    notes: tuple[Note, ...] = ()
    payments: tuple[PaymentRecorded, ...] = ()

    @property
    def total_minor(self) -> int:
        return 0 if self.figures is None else self.figures.total_minor

    def _notes_total(self, kind: NoteKind) -> int:
        return sum(n.figures.total_minor for n in self.notes if n.kind is kind)

    @property
    def credited_minor(self) -> int:
        return self._notes_total(NoteKind.CREDIT)

    @property
    def debited_minor(self) -> int:
        return self._notes_total(NoteKind.DEBIT)

    @property
    def due_minor(self) -> int:
        """What the invoice asks for after its credit and debit notes."""
        return self.total_minor + self.debited_minor - self.credited_minor

    @property
    def refund_minor(self) -> int:
        """What credit notes took back beyond what was owed: the customer's credit."""
        return sum(n.refund_minor for n in self.notes)

    @property
    def paid_minor(self) -> int:
        return self.settled_minor + self.recovered_minor + self.credit_minor

    @property
    def outstanding_minor(self) -> int:
        """The receivable still on the books for this invoice."""
        on_notes = sum(
            n.to_receivable_minor if n.kind is NoteKind.DEBIT else -n.to_receivable_minor
            for n in self.notes
        )
        return self.total_minor + on_notes - self.settled_minor - self.written_off_minor

    @property
    def settled(self) -> bool:
        """Nothing owed and nothing written off that was not recovered."""
        return self.outstanding_minor == 0 and self.recovered_minor == self.written_off_minor

    @property
    def payment_status(self) -> PaymentStatus:
        if self.paid_minor == 0:
            return PaymentStatus.UNPAID
        if self.paid_minor < self.due_minor:
            return PaymentStatus.PARTIALLY_PAID
        if self.paid_minor == self.due_minor:
            return PaymentStatus.PAID
        return PaymentStatus.OVERPAID

    def allocate(self, amount_minor: int) -> PaymentAllocation:
        receivable = min(amount_minor, self.outstanding_minor)
        recovery = min(amount_minor - receivable, self.written_off_minor - self.recovered_minor)
        return PaymentAllocation(receivable, recovery, amount_minor - receivable - recovery)


# Folding events into state.


def replay(invoice_id: UUID, events: list[InvoiceEvent]) -> Invoice:
    """The invoice its events make, from the first."""
    if not events or not isinstance(events[0], InvoiceDrafted):
        raise InvariantViolation(f"the stream of invoice {invoice_id} does not start with a draft")
    invoice = Invoice(invoice_id, 1, InvoiceStatus.DRAFT, events[0].header)
    for event in events[1:]:
        invoice = apply(invoice, event)
    return invoice


def apply(invoice: Invoice, event: InvoiceEvent) -> Invoice:
    next_version = invoice.version + 1
    match event:
        case HeaderChanged(header=header):
            return replace(invoice, version=next_version, header=header)
        case LineAdded(line=line):
            return replace(invoice, version=next_version, lines=(*invoice.lines, line))
        case LineRemoved(position=position):
            lines = invoice.lines[:position] + invoice.lines[position + 1 :]
            return replace(invoice, version=next_version, lines=lines)
        case InvoiceDiscarded():
            return replace(invoice, version=next_version, status=InvoiceStatus.DISCARDED)
        case InvoiceIssued():
            return replace(
                invoice,
                version=next_version,
                status=InvoiceStatus.PAID if event.figures.total_minor == 0 else InvoiceStatus.OPEN,
                number=event.number,
                fiscal_year=event.fiscal_year,
                issue_date=event.issue_date,
                due_date=event.due_date,
                figures=event.figures,
                issue_entry_id=event.entry_id,
                issued_at=event.at,
            )
        case PaymentRecorded(amount_minor=amount):
            share = invoice.allocate(amount)
            paid = replace(
                invoice,
                version=next_version,
                settled_minor=invoice.settled_minor + share.receivable_minor,
                recovered_minor=invoice.recovered_minor + share.recovery_minor,
                credit_minor=invoice.credit_minor + share.credit_minor,
                payments=(*invoice.payments, event),
            )
            if paid.settled and paid.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
                return replace(paid, status=InvoiceStatus.PAID)
            return paid
        case NoteIssued(note=note):
            noted = replace(invoice, version=next_version, notes=(*invoice.notes, note))
            if noted.settled and noted.status is InvoiceStatus.OPEN:
                return replace(noted, status=InvoiceStatus.PAID)  # credited in full
            return noted
        case InvoiceVoided(credit_note_number=note, at=at):
            return replace(
                invoice,
                version=next_version,
                status=InvoiceStatus.VOID,
                credit_note_number=note,
                voided_at=at,
            )
        case InvoiceWrittenOff(amount_minor=amount):
            return replace(
                invoice,
                version=next_version,
                status=InvoiceStatus.UNCOLLECTIBLE,
                written_off_minor=invoice.written_off_minor + amount,
            )
        case InvoiceDrafted():
            raise InvariantViolation(f"invoice {invoice.id} is drafted twice")
    raise InvariantViolation(f"unknown invoice event {event!r}")


# Commands: each checks the state and returns its events.


def draft(header: Header, at: datetime) -> list[InvoiceEvent]:
    return [InvoiceDrafted(header, at)]


def change_header(invoice: Invoice, header: Header, at: datetime) -> list[InvoiceEvent]:
    require_status(invoice, InvoiceStatus.DRAFT)
    return [HeaderChanged(header, at)]


def add_line(
    invoice: Invoice, line: InvoiceLine, tax_codes: dict[str, TaxCode], at: datetime
) -> list[InvoiceEvent]:
    require_status(invoice, InvoiceStatus.DRAFT)
    if len(invoice.lines) >= LINES_PER_INVOICE_MAX:
        raise _invalid(f"an invoice has at most {LINES_PER_INVOICE_MAX} lines")
    # Checked now with the code's first rate, so that a bad line is refused when it is typed;
    # the rate that counts is the one in force on the issue date.
    code = find_tax_code(tax_codes, line.tax_code)
    line_figures(line.as_input(), code, code.rates[-1].valid_from, prices_include_tax=False)
    return [LineAdded(line, at)]


def remove_line(invoice: Invoice, position: int, at: datetime) -> list[InvoiceEvent]:
    require_status(invoice, InvoiceStatus.DRAFT)
    if not 0 <= position < len(invoice.lines):
        raise _invalid(f"the draft has no line {position} (it has {len(invoice.lines)})")
    return [LineRemoved(position, at)]


def discard(invoice: Invoice, at: datetime) -> list[InvoiceEvent]:
    require_status(invoice, InvoiceStatus.DRAFT)
    return [InvoiceDiscarded(at)]


@dataclass(frozen=True)
class IssueRules:
    """Tenant configuration that issuing applies."""

    # A buyer BIN is required from this total up (None: never; 0: always).
    buyer_bin_from_minor: int | None = None
    seller_bin_required: bool = True
    payment_days_default: int = 30


def compute_figures(
    invoice: Invoice, tax_codes: dict[str, TaxCode], issue_date: date
) -> InvoiceFigures:
    include = invoice.header.prices_include_tax
    return invoice_figures(
        [
            line_figures(
                line.as_input(),
                find_tax_code(tax_codes, line.tax_code),
                issue_date,
                prices_include_tax=include,
            )
            for line in invoice.lines
        ]
    )


def issue(
    invoice: Invoice,
    *,
    number: str,
    fiscal_year: str,
    today: date,
    tax_codes: dict[str, TaxCode],
    rules: IssueRules,
    entry_id: UUID,
    at: datetime,
) -> list[InvoiceEvent]:
    """Freeze the figures under the rates in force on the issue date. The number comes from
    the gap-free counter; `entry_id` is the receivable entry the caller will post."""
    require_status(invoice, InvoiceStatus.DRAFT)
    if not invoice.lines:
        raise _invalid("an invoice needs at least one line to be issued")
    header = invoice.header
    issue_date = header.issue_date or today
    if issue_date > today:
        raise _invalid(f"an invoice cannot be issued with a future date ({issue_date.isoformat()})")
    due_date = header.due_date or date.fromordinal(
        issue_date.toordinal() + rules.payment_days_default
    )
    if due_date < issue_date:
        raise _invalid("the due date is before the issue date")
    figures = compute_figures(invoice, tax_codes, issue_date)
    _check_tax_ids(header, figures, rules)
    return [InvoiceIssued(number, fiscal_year, issue_date, due_date, figures, entry_id, at)]


def _check_tax_ids(header: Header, figures: InvoiceFigures, rules: IssueRules) -> None:
    if rules.seller_bin_required:
        if header.seller.bin is None:
            raise _invalid("the seller needs a BIN to issue a tax invoice")
        header.seller.bin.require_current()
    if header.customer.bin is not None:
        header.customer.bin.require_current()
    threshold = rules.buyer_bin_from_minor
    if threshold is not None and figures.total_minor >= threshold and header.customer.bin is None:
        raise LedgerRejection(
            RejectCode.BUYER_BIN_REQUIRED,
            f"an invoice of {figures.total_minor} minor units or more needs the buyer's BIN"
            f" (from {threshold})",
        )


def record_payment(
    invoice: Invoice,
    *,
    payment_id: str,
    amount_minor: int,
    received_on: date,
    entry_id: UUID,
    at: datetime,
) -> list[InvoiceEvent]:
    """A payment against an issued invoice; more than is owed is kept as customer credit.
    A payment id seen before is refused here: the caller's idempotency replays it first."""
    require_status(invoice, InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.PAID)
    _required_text(payment_id, "payment id")
    try:
        check_amount_minor(amount_minor)
    except LedgerRejection as exc:
        raise LedgerRejection(RejectCode.INVALID_PAYMENT, exc.detail) from exc
    if any(p.payment_id == payment_id for p in invoice.payments):
        raise LedgerRejection(
            RejectCode.INVALID_PAYMENT, f"payment {payment_id} is already recorded"
        )
    if invoice.issue_date is not None and received_on < invoice.issue_date:
        raise LedgerRejection(
            RejectCode.INVALID_PAYMENT, "a payment cannot be received before the invoice's issue"
        )
    return [PaymentRecorded(payment_id, amount_minor, received_on, entry_id, at)]


def void(
    invoice: Invoice, *, credit_note_number: str, entry_id: UUID, at: datetime
) -> list[InvoiceEvent]:
    """Cancel an issued invoice: its receivable entry is reversed and a credit note for the
    full amount issued. Payments already received stay, as customer credit."""
    require_status(invoice, InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
    if invoice.notes:
        raise _invalid(
            f"invoice {invoice.id} has credit or debit notes: correct it with another note"
            " instead of voiding it"
        )
    return [InvoiceVoided(credit_note_number, entry_id, at)]


def issue_note(
    invoice: Invoice,
    kind: NoteKind,
    *,
    number: str,
    lines: tuple[InvoiceLine, ...],
    reason: str,
    tax_codes: dict[str, TaxCode],
    entry_id: UUID,
    at: datetime,
) -> list[InvoiceEvent]:
    """A credit note on an open or paid invoice, or a debit note on an open one. Its lines are
    taxed at the rates of the invoice's issue date, like the invoice."""
    if kind is NoteKind.CREDIT:
        require_status(invoice, InvoiceStatus.OPEN, InvoiceStatus.PAID)
    else:
        require_status(invoice, InvoiceStatus.OPEN)
    _required_text(reason, "reason")
    if not 1 <= len(lines) <= LINES_PER_INVOICE_MAX:
        raise _invalid(f"a note has 1 to {LINES_PER_INVOICE_MAX} lines")
    if invoice.issue_date is None:
        raise InvariantViolation(f"issued invoice {invoice.id} has no issue date")
    include = invoice.header.prices_include_tax
    figures = invoice_figures(
        [
            line_figures(
                line.as_input(),
                find_tax_code(tax_codes, line.tax_code),
                invoice.issue_date,
                prices_include_tax=include,
            )
            for line in lines
        ]
    )
    amount = figures.total_minor
    if kind is NoteKind.CREDIT and amount > invoice.due_minor:
        raise _invalid(
            f"a credit note of {amount} minor units is more than the {invoice.due_minor}"
            " the invoice still asks for"
        )
    to_receivable = min(amount, invoice.outstanding_minor) if kind is NoteKind.CREDIT else amount
    refund = amount - to_receivable if kind is NoteKind.CREDIT else 0
    note = Note(kind, number, reason, lines, figures, to_receivable, refund, entry_id, at)
    return [NoteIssued(note)]


def write_off(invoice: Invoice, *, entry_id: UUID, at: datetime) -> list[InvoiceEvent]:
    """Declare the outstanding amount uncollectible (bad debt)."""
    require_status(invoice, InvoiceStatus.OPEN)
    if invoice.outstanding_minor == 0:
        raise InvariantViolation(f"open invoice {invoice.id} owes nothing")
    return [InvoiceWrittenOff(invoice.outstanding_minor, entry_id, at)]


def require_status(invoice: Invoice, *allowed: InvoiceStatus) -> None:
    if invoice.status not in allowed:
        wanted = " or ".join(status.value for status in allowed)
        raise LedgerRejection(
            _STATE_CODE[invoice.status],
            f"invoice {invoice.id} is {invoice.status.value}; this needs it {wanted}",
            context={"status": invoice.status.value},
        )


def _required_text(value: str, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"the {what} is required")
    check_text(value, field=what, chars_max=TEXT_CHARS_MAX)


def _invalid(detail: str) -> LedgerRejection:
    return LedgerRejection(RejectCode.INVALID_INVOICE, detail)
