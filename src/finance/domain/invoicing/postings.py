"""The journal entries an invoice's events post: what moves money is always a balanced entry.

- issued: debit receivable (total); credit revenue (value), VAT payable (VAT), SD payable (SD);
- payment: debit cash or clearing (amount); credit receivable (what was owed), bad debt (a
  recovery after a write-off), customer credit (the excess);
- written off: debit bad debt, credit receivable (the outstanding amount);
- voided: the issue entry's reversal (`reversal_of`), then a settlement entry: debit receivable
  (settled + written off); credit customer credit (settled + recovered), bad debt (written off
  - recovered);
- credit note: debit revenue, VAT payable, SD payable (its figures); credit receivable (what it
  takes off the amount owed), customer credit (the rest, already paid);
- debit note: debit receivable (its total); credit revenue, VAT payable, SD payable.

Lines of zero are left out (an exempt invoice has no VAT line). Entry types name the event, and
`source`/`source_id` tie each entry to its invoice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from finance.domain.accounts import Side
from finance.domain.entries import EntryDraft, Line
from finance.domain.errors import InvariantViolation
from finance.domain.invoicing.invoice import Invoice, Note, NoteKind, PaymentAllocation

SOURCE = "invoice"


@dataclass(frozen=True)
class InvoiceAccounts:
    """The tenant's accounts that invoices post to, all in the invoice's currency."""

    receivable: UUID
    revenue: UUID
    vat_payable: UUID
    sd_payable: UUID
    customer_credit: UUID
    bad_debt: UUID


def _lines(currency: str, sides: Iterable[tuple[UUID, Side, int]]) -> tuple[Line, ...]:
    return tuple(
        Line(account, side, amount, currency) for account, side, amount in sides if amount > 0
    )


def _entry(invoice: Invoice, kind: str, day: date, lines: tuple[Line, ...]) -> EntryDraft:
    return EntryDraft(
        lines=lines,
        effective_date=day,
        type=f"INVOICE_{kind}",
        memo=f"invoice {invoice.number} {kind.lower().replace('_', ' ')}",
        source=SOURCE,
        source_id=str(invoice.id),
    )


def issue_entry(invoice: Invoice, accounts: InvoiceAccounts) -> EntryDraft | None:
    """None for an invoice of nothing (free items only): there is nothing to post."""
    figures, day = invoice.figures, invoice.issue_date
    if figures is None or day is None:
        raise InvariantViolation(f"invoice {invoice.id} is not issued")
    if figures.total_minor == 0:
        return None
    lines = _lines(
        invoice.header.currency,
        [
            (accounts.receivable, Side.DEBIT, figures.total_minor),
            (accounts.revenue, Side.CREDIT, figures.value_minor),
            (accounts.vat_payable, Side.CREDIT, figures.vat_minor),
            (accounts.sd_payable, Side.CREDIT, figures.sd_minor),
        ],
    )
    return _entry(invoice, "ISSUED", day, lines)


def payment_entry(
    invoice: Invoice,
    share: PaymentAllocation,
    cash: UUID,
    accounts: InvoiceAccounts,
    received_on: date,
) -> EntryDraft:
    amount = share.receivable_minor + share.recovery_minor + share.credit_minor
    lines = _lines(
        invoice.header.currency,
        [
            (cash, Side.DEBIT, amount),
            (accounts.receivable, Side.CREDIT, share.receivable_minor),
            (accounts.bad_debt, Side.CREDIT, share.recovery_minor),
            (accounts.customer_credit, Side.CREDIT, share.credit_minor),
        ],
    )
    return _entry(invoice, "PAYMENT", received_on, lines)


def write_off_entry(invoice: Invoice, accounts: InvoiceAccounts, day: date) -> EntryDraft:
    amount = invoice.outstanding_minor
    lines = _lines(
        invoice.header.currency,
        [(accounts.bad_debt, Side.DEBIT, amount), (accounts.receivable, Side.CREDIT, amount)],
    )
    return _entry(invoice, "WRITTEN_OFF", day, lines)


def void_settlement_entry(
    invoice: Invoice, accounts: InvoiceAccounts, day: date
) -> EntryDraft | None:
    """After the issue entry's reversal, what the customer paid becomes their credit and a
    write-off is taken back; None when nothing was paid or written off."""
    lines = _lines(
        invoice.header.currency,
        [
            (accounts.receivable, Side.DEBIT, invoice.settled_minor + invoice.written_off_minor),
            (
                accounts.customer_credit,
                Side.CREDIT,
                invoice.settled_minor + invoice.recovered_minor,
            ),
            (accounts.bad_debt, Side.CREDIT, invoice.written_off_minor - invoice.recovered_minor),
        ],
    )
    return _entry(invoice, "VOID_SETTLEMENT", day, lines) if lines else None


def note_entry(invoice: Invoice, note: Note, accounts: InvoiceAccounts) -> EntryDraft | None:
    """None for a note of nothing."""
    f = note.figures
    if f.total_minor == 0:
        return None
    taxes = [
        (accounts.revenue, f.value_minor),
        (accounts.vat_payable, f.vat_minor),
        (accounts.sd_payable, f.sd_minor),
    ]
    if note.kind is NoteKind.CREDIT:
        sides = [(account, Side.DEBIT, amount) for account, amount in taxes] + [
            (accounts.receivable, Side.CREDIT, note.to_receivable_minor),
            (accounts.customer_credit, Side.CREDIT, note.refund_minor),
        ]
    else:
        sides = [(accounts.receivable, Side.DEBIT, f.total_minor)] + [
            (account, Side.CREDIT, amount) for account, amount in taxes
        ]
    kind = "CREDIT_NOTE" if note.kind is NoteKind.CREDIT else "DEBIT_NOTE"
    return _entry(invoice, kind, note.at.date(), _lines(invoice.header.currency, sides))
