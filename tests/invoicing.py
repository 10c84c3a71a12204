"""Invoices in memory for the domain tests: a tax code table, parties, the accounts invoices
post to, and `Book`, an invoice's event stream with the balances its entries leave."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from finance.domain.accounts import Side
from finance.domain.entries import EntryDraft
from finance.domain.invoicing import invoice as inv
from finance.domain.invoicing.invoice import (
    Header,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    IssueRules,
    NoteIssued,
    NoteKind,
    Party,
)
from finance.domain.invoicing.postings import (
    InvoiceAccounts,
    issue_entry,
    note_entry,
    payment_entry,
)
from finance.domain.invoicing.tax import Levy, Supply, TaxCode, TaxRate
from finance.domain.invoicing.tax_ids import Bin

AT = datetime(2025, 9, 1, 10, 0, tzinfo=UTC)
TODAY = date(2025, 9, 1)
CODES = {
    "VAT15-SD20": TaxCode(
        "VAT15-SD20",
        "VAT 15 % with SD 20 %",
        Supply.TAXABLE,
        (TaxRate(date(2019, 7, 1), vat=Levy(Decimal(15)), sd=Levy(Decimal(20))),),
    ),
    "VAT15": TaxCode(
        "VAT15", "VAT 15 %", Supply.TAXABLE, (TaxRate(date(2019, 7, 1), Levy(Decimal(15))),)
    ),
}
SELLER = Party("Seller Ltd", "Gulshan, Dhaka", bin=Bin.parse("001234567-0101"))
BUYER = Party("Buyer Ltd", "Agrabad, Chattogram", bin=Bin.parse("009876543-0202"))
ACCOUNTS = InvoiceAccounts(*(uuid.uuid4() for _ in range(6)))
CASH = uuid.uuid4()
RULES = IssueRules(buyer_bin_from_minor=None)


class Book:
    """An invoice and its stream, with the balances its entries leave in each account."""

    def __init__(self, header: Header | None = None) -> None:
        self.id = uuid.uuid4()
        self.events: list[InvoiceEvent] = inv.draft(
            header or Header(BUYER, SELLER, "DHK", "BDT"), AT
        )
        self.balances: dict[UUID, int] = defaultdict(int)  # debit positive

    @property
    def invoice(self) -> Invoice:
        return inv.replay(self.id, self.events)

    def do(self, events: list[InvoiceEvent]) -> Invoice:
        self.events.extend(events)
        return self.invoice

    def post(self, entry: EntryDraft | None, *, reverse: bool = False) -> None:
        """Book `entry` (None: the step posts nothing, as for an invoice of nothing)."""
        for line in entry.lines if entry is not None else ():
            sign = 1 if (line.side is Side.DEBIT) != reverse else -1
            self.balances[line.account_id] += sign * line.amount_minor
        assert sum(self.balances.values()) == 0

    def issued(self, *lines: InvoiceLine) -> Invoice:
        for line in lines:
            self.do(inv.add_line(self.invoice, line, CODES, AT))
        events = inv.issue(
            self.invoice,
            number="DHK/2025-26/000001",
            fiscal_year="2025-26",
            today=TODAY,
            tax_codes=CODES,
            rules=RULES,
            entry_id=uuid.uuid4(),
            at=AT,
        )
        invoice = self.do(events)
        self.post(issue_entry(invoice, ACCOUNTS))
        return invoice

    def pay(self, amount: int, payment_id: str | None = None) -> Invoice:
        before = self.invoice
        share = before.allocate(amount)
        invoice = self.do(
            inv.record_payment(before, payment_id=payment_id or uuid.uuid4().hex,
                               amount_minor=amount, received_on=TODAY, entry_id=uuid.uuid4(), at=AT)
        )  # fmt: skip
        self.post(payment_entry(before, share, CASH, ACCOUNTS, TODAY))
        return invoice

    def note(self, kind: NoteKind, *lines: InvoiceLine, reason: str = "correction") -> Invoice:
        before = self.invoice
        events = inv.issue_note(
            before, kind, number=f"{kind.value}-{len(before.notes) + 1}", lines=lines,
            reason=reason, tax_codes=CODES, entry_id=uuid.uuid4(), at=AT,
        )  # fmt: skip
        invoice = self.do(events)
        issued = events[0]
        assert isinstance(issued, NoteIssued)
        self.post(note_entry(before, issued.note, ACCOUNTS))
        return invoice
