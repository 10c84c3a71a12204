"""The invoice aggregate: lifecycle, payment status, refusals naming the state, and the
entries each step posts (worked examples with exact figures, BDT minor units)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.invoicing import invoice as inv
from finance.domain.invoicing.invoice import (
    Header,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceStatus,
    IssueRules,
    NoteKind,
    Party,
    PaymentStatus,
)
from finance.domain.invoicing.postings import issue_entry, void_settlement_entry, write_off_entry
from finance.domain.invoicing.tax_ids import Bin
from tests.invoicing import ACCOUNTS, AT, BUYER, CASH, CODES, RULES, SELLER, TODAY, Book

GOODS = InvoiceLine("Goods", "pcs", Decimal(3), 100_000, "VAT15-SD20", discount_percent=Decimal(10))
SERVICE = InvoiceLine("Service", "hour", Decimal("1.5"), 333, "VAT15")


def test_issuing_freezes_figures_and_posts_receivable_revenue_vat_and_sd() -> None:
    book = Book()
    invoice = book.issued(GOODS, SERVICE)
    assert invoice.status is InvoiceStatus.OPEN
    assert invoice.version == 4  # drafted, two lines, issued
    assert invoice.number == "DHK/2025-26/000001"
    assert invoice.due_date == date(2025, 10, 1)  # 30 days by default
    assert invoice.figures is not None
    assert (invoice.figures.value_minor, invoice.figures.sd_minor, invoice.figures.vat_minor) == (
        270_500,
        54_000,
        48_675,
    )
    assert invoice.total_minor == 373_175
    assert book.balances[ACCOUNTS.receivable] == 373_175
    assert book.balances[ACCOUNTS.revenue] == -270_500
    assert book.balances[ACCOUNTS.vat_payable] == -48_675
    assert book.balances[ACCOUNTS.sd_payable] == -54_000


def test_partial_payments_then_paid() -> None:
    book = Book()
    book.issued(GOODS)  # 372,600
    assert book.invoice.payment_status is PaymentStatus.UNPAID
    invoice = book.pay(100_000)
    assert (invoice.status, invoice.payment_status) == (
        InvoiceStatus.OPEN,
        PaymentStatus.PARTIALLY_PAID,
    )
    assert invoice.outstanding_minor == 272_600
    invoice = book.pay(272_600)
    assert (invoice.status, invoice.payment_status) == (InvoiceStatus.PAID, PaymentStatus.PAID)
    assert book.balances[ACCOUNTS.receivable] == 0
    assert book.balances[CASH] == 372_600


def test_an_overpayment_is_kept_as_customer_credit() -> None:
    book = Book()
    book.issued(GOODS)
    invoice = book.pay(400_000)
    assert (invoice.status, invoice.payment_status) == (InvoiceStatus.PAID, PaymentStatus.OVERPAID)
    assert invoice.credit_minor == 27_400
    assert book.balances[ACCOUNTS.customer_credit] == -27_400
    assert book.balances[ACCOUNTS.receivable] == 0
    # A further payment on a paid invoice is credit too.
    assert book.pay(1_000).credit_minor == 28_400


def test_void_after_a_partial_payment_reverses_and_credits_the_customer() -> None:
    book = Book()
    issued = book.issued(GOODS)
    book.pay(100_000)
    before = book.invoice
    invoice = book.do(inv.void(before, credit_note_number="CN/1", entry_id=uuid.uuid4(), at=AT))
    book.post(issue_entry(issued, ACCOUNTS), reverse=True)
    book.post(void_settlement_entry(before, ACCOUNTS, TODAY))
    assert invoice.status is InvoiceStatus.VOID
    assert book.balances[ACCOUNTS.receivable] == 0
    assert book.balances[ACCOUNTS.revenue] == 0
    assert book.balances[ACCOUNTS.vat_payable] == 0
    assert book.balances[ACCOUNTS.customer_credit] == -100_000
    assert book.balances[CASH] == 100_000


def test_a_void_without_payments_needs_no_settlement() -> None:
    book = Book()
    book.issued(GOODS)
    assert void_settlement_entry(book.invoice, ACCOUNTS, TODAY) is None


def test_write_off_then_recovery_makes_it_paid() -> None:
    book = Book()
    book.issued(GOODS)
    book.pay(72_600)
    before = book.invoice
    invoice = book.do(inv.write_off(before, entry_id=uuid.uuid4(), at=AT))
    book.post(write_off_entry(before, ACCOUNTS, TODAY))
    assert invoice.status is InvoiceStatus.UNCOLLECTIBLE
    assert invoice.written_off_minor == 300_000
    assert book.balances[ACCOUNTS.bad_debt] == 300_000
    assert book.balances[ACCOUNTS.receivable] == 0
    invoice = book.pay(100_000)
    assert invoice.status is InvoiceStatus.UNCOLLECTIBLE  # recovered in part
    assert book.balances[ACCOUNTS.bad_debt] == 200_000
    invoice = book.pay(200_000)
    assert (invoice.status, invoice.payment_status) == (InvoiceStatus.PAID, PaymentStatus.PAID)
    assert book.balances[ACCOUNTS.bad_debt] == 0


def test_void_of_an_uncollectible_invoice_takes_the_write_off_back() -> None:
    book = Book()
    issued = book.issued(GOODS)
    book.pay(72_600)
    before = book.invoice
    book.do(inv.write_off(before, entry_id=uuid.uuid4(), at=AT))
    book.post(write_off_entry(before, ACCOUNTS, TODAY))
    book.pay(50_000)
    before = book.invoice
    book.do(inv.void(before, credit_note_number="CN/2", entry_id=uuid.uuid4(), at=AT))
    book.post(issue_entry(issued, ACCOUNTS), reverse=True)
    book.post(void_settlement_entry(before, ACCOUNTS, TODAY))
    assert book.balances[ACCOUNTS.receivable] == 0
    assert book.balances[ACCOUNTS.bad_debt] == 0
    assert book.balances[ACCOUNTS.revenue] == 0
    assert book.balances[ACCOUNTS.customer_credit] == -122_600  # everything received
    assert book.balances[CASH] == 122_600


def pay_one(invoice: Invoice) -> list[InvoiceEvent]:
    return inv.record_payment(
        invoice, payment_id="p", amount_minor=1, received_on=TODAY, entry_id=uuid.uuid4(), at=AT
    )


def void_it(invoice: Invoice) -> list[InvoiceEvent]:
    return inv.void(invoice, credit_note_number="CN", entry_id=uuid.uuid4(), at=AT)


def write_it_off(invoice: Invoice) -> list[InvoiceEvent]:
    return inv.write_off(invoice, entry_id=uuid.uuid4(), at=AT)


def issue_it(invoice: Invoice, rules: IssueRules = RULES) -> list[InvoiceEvent]:
    return inv.issue(
        invoice,
        number="n",
        fiscal_year="2025-26",
        today=TODAY,
        tax_codes=CODES,
        rules=rules,
        entry_id=uuid.uuid4(),
        at=AT,
    )


@pytest.mark.parametrize(
    ("setup", "command", "code"),
    [
        ("draft", pay_one, RejectCode.INVOICE_IS_DRAFT),
        ("draft", write_it_off, RejectCode.INVOICE_IS_DRAFT),
        ("open", lambda i: inv.add_line(i, SERVICE, CODES, AT), RejectCode.INVOICE_IS_OPEN),
        ("open", lambda i: inv.discard(i, AT), RejectCode.INVOICE_IS_OPEN),
        ("open", issue_it, RejectCode.INVOICE_IS_OPEN),
        ("paid", void_it, RejectCode.INVOICE_IS_PAID),
        ("paid", write_it_off, RejectCode.INVOICE_IS_PAID),
        ("void", write_it_off, RejectCode.INVOICE_IS_VOID),
        ("void", pay_one, RejectCode.INVOICE_IS_VOID),
        ("void", void_it, RejectCode.INVOICE_IS_VOID),
        (
            "discarded",
            lambda i: inv.change_header(i, i.header, AT),
            RejectCode.INVOICE_IS_DISCARDED,
        ),
        ("discarded", issue_it, RejectCode.INVOICE_IS_DISCARDED),
    ],
)
def test_a_command_the_state_does_not_allow_is_refused_naming_the_state(
    setup: str, command: object, code: RejectCode
) -> None:
    book = Book()
    if setup == "discarded":
        book.do(inv.discard(book.invoice, AT))
    elif setup != "draft":
        book.issued(GOODS)
        if setup == "paid":
            book.pay(372_600)
        elif setup == "void":
            book.do(void_it(book.invoice))
    with pytest.raises(LedgerRejection) as refused:
        command(book.invoice)  # type: ignore[operator]
    assert refused.value.code is code
    assert refused.value.context["status"] == setup


def test_issuing_checks_tax_ids() -> None:
    legacy_buyer = Party("Old Co", "Dhaka", bin=Bin.parse("123456789"))
    no_bin_buyer = Party("Walk-in", "Dhaka")
    from_total = IssueRules(buyer_bin_from_minor=372_600)
    cases = [
        (Header(legacy_buyer, SELLER, "DHK", "BDT"), RULES, RejectCode.LEGACY_BIN_REFUSED),
        (Header(BUYER, Party("S", "Dhaka"), "DHK", "BDT"), RULES, RejectCode.INVALID_INVOICE),
        (Header(no_bin_buyer, SELLER, "DHK", "BDT"), from_total, RejectCode.BUYER_BIN_REQUIRED),
    ]
    for header, rules, code in cases:
        book = Book(header)
        book.do(inv.add_line(book.invoice, GOODS, CODES, AT))
        with pytest.raises(LedgerRejection) as refused:
            issue_it(book.invoice, rules)
        assert refused.value.code is code
    # Under the threshold the walk-in customer needs no BIN.
    book = Book(Header(no_bin_buyer, SELLER, "DHK", "BDT"))
    book.do(inv.add_line(book.invoice, SERVICE, CODES, AT))
    assert book.do(issue_it(book.invoice, from_total)).status is InvoiceStatus.OPEN


def test_drafts_are_editable_and_an_empty_one_cannot_be_issued() -> None:
    book = Book()
    book.do(inv.add_line(book.invoice, GOODS, CODES, AT))
    book.do(inv.add_line(book.invoice, SERVICE, CODES, AT))
    invoice = book.do(inv.remove_line(book.invoice, 0, AT))
    assert invoice.lines == (SERVICE,)
    invoice = book.do(inv.change_header(invoice, Header(BUYER, SELLER, "CTG", "BDT"), AT))
    assert invoice.header.location == "CTG"
    invoice = book.do(inv.remove_line(invoice, 0, AT))
    with pytest.raises(LedgerRejection) as refused:
        issue_it(invoice)
    assert refused.value.code is RejectCode.INVALID_INVOICE
    with pytest.raises(LedgerRejection) as refused:
        inv.add_line(invoice, InvoiceLine("x", "pcs", Decimal(1), 1, "NOPE"), CODES, AT)
    assert refused.value.code is RejectCode.TAX_CODE_NOT_FOUND


def test_a_payment_id_is_recorded_once() -> None:
    book = Book()
    book.issued(GOODS)
    book.pay(1_000, "pay-1")
    with pytest.raises(LedgerRejection) as refused:
        book.pay(1_000, "pay-1")
    assert refused.value.code is RejectCode.INVALID_PAYMENT


ONE_GOODS = InvoiceLine("Goods returned", "pcs", Decimal(1), 100_000, "VAT15-SD20")  # 138,000


def test_a_credit_note_on_an_open_invoice_reduces_what_is_owed() -> None:
    book = Book()
    book.issued(GOODS)  # 372,600
    invoice = book.note(NoteKind.CREDIT, ONE_GOODS)
    assert (invoice.credited_minor, invoice.due_minor, invoice.outstanding_minor) == (
        138_000,
        234_600,
        234_600,
    )
    assert book.balances[ACCOUNTS.receivable] == 234_600
    assert book.balances[ACCOUNTS.vat_payable] == -48_600 + 18_000
    assert book.balances[ACCOUNTS.sd_payable] == -54_000 + 20_000
    paid = book.pay(234_600)
    assert (paid.status, paid.payment_status) == (InvoiceStatus.PAID, PaymentStatus.PAID)


def test_a_credit_note_on_a_paid_invoice_becomes_customer_credit() -> None:
    book = Book()
    book.issued(GOODS)
    book.pay(372_600)
    invoice = book.note(NoteKind.CREDIT, ONE_GOODS)
    assert (invoice.refund_minor, invoice.payment_status) == (138_000, PaymentStatus.OVERPAID)
    assert book.balances[ACCOUNTS.customer_credit] == -138_000
    assert book.balances[ACCOUNTS.receivable] == 0


def test_crediting_everything_settles_and_more_is_refused() -> None:
    book = Book()
    book.issued(SERVICE)  # 575
    credit_all = InvoiceLine("All", "hour", Decimal("1.5"), 333, "VAT15")
    invoice = book.note(NoteKind.CREDIT, credit_all)
    assert (invoice.status, invoice.due_minor) == (InvoiceStatus.PAID, 0)
    with pytest.raises(LedgerRejection) as refused:
        book.note(NoteKind.CREDIT, InvoiceLine("More", "hour", Decimal(1), 1, "VAT15"))
    assert refused.value.code is RejectCode.INVALID_INVOICE


def test_a_debit_note_adds_to_an_open_invoice_only() -> None:
    book = Book()
    book.issued(SERVICE)
    invoice = book.note(NoteKind.DEBIT, ONE_GOODS)
    assert (invoice.debited_minor, invoice.outstanding_minor) == (138_000, 138_575)
    assert book.balances[ACCOUNTS.receivable] == 138_575
    book.pay(138_575)
    with pytest.raises(LedgerRejection) as refused:
        book.note(NoteKind.DEBIT, ONE_GOODS)
    assert refused.value.code is RejectCode.INVOICE_IS_PAID


def test_an_invoice_with_notes_is_corrected_by_notes_not_voided() -> None:
    book = Book()
    book.issued(GOODS)
    book.note(NoteKind.CREDIT, ONE_GOODS)
    with pytest.raises(LedgerRejection) as refused:
        void_it(book.invoice)
    assert refused.value.code is RejectCode.INVALID_INVOICE


def test_an_invoice_cannot_be_issued_with_a_future_date() -> None:
    book = Book(Header(BUYER, SELLER, "DHK", "BDT", issue_date=date(2025, 9, 2)))
    book.do(inv.add_line(book.invoice, SERVICE, CODES, AT))
    with pytest.raises(LedgerRejection) as refused:
        issue_it(book.invoice)  # today is 2025-09-01
    assert refused.value.code is RejectCode.INVALID_INVOICE
    assert "future" in refused.value.detail
