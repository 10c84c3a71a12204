"""Aging buckets and the VAT return summary, from invoices in memory."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from finance.domain.errors import LedgerRejection
from finance.domain.invoicing import invoice as inv
from finance.domain.invoicing.invoice import Invoice, Party
from finance.domain.invoicing.reports import RateKey, aging, bucket_of, vat_return
from finance.domain.invoicing.tax import Supply
from tests.invoicing import AT, Book
from tests.unit.test_invoice import GOODS, SERVICE


@pytest.mark.parametrize(
    ("days_overdue", "bucket"),
    [(-5, "current"), (0, "current"), (1, "1_30"), (30, "1_30"), (31, "31_60"), (60, "31_60"),
     (61, "61_90"), (90, "61_90"), (91, "over_90"), (400, "over_90")],
)  # fmt: skip
def test_buckets_by_days_past_due(days_overdue: int, bucket: str) -> None:
    due = date(2025, 10, 1)
    assert bucket_of(due, due + timedelta(days=days_overdue)) == bucket


def issued(customer: str = "Buyer Ltd", *lines: object) -> Book:
    book = Book()
    header = replace(book.invoice.header, customer=Party(customer, "Dhaka"))
    book.do(inv.change_header(book.invoice, header, AT))
    book.issued(*(lines or (GOODS,)))  # type: ignore[arg-type]
    return book


def test_aging_sums_what_each_customer_still_owes() -> None:
    a1, a2, b = issued("A"), issued("A"), issued("B", SERVICE)
    a2.pay(72_600)
    paid = issued("C")
    paid.pay(372_600)
    voided = issued("D")
    voided.do(inv.void(voided.invoice, credit_note_number="CN", entry_id=uuid.uuid4(), at=AT))
    due = a1.invoice.due_date
    assert due == date(2025, 10, 1)
    rows = aging(
        [a1.invoice, a2.invoice, b.invoice, paid.invoice, voided.invoice], date(2025, 11, 15)
    )
    assert [(r.customer, r.invoices, r.buckets["31_60"], r.total_minor) for r in rows] == [
        ("A", 2, 372_600 + 300_000, 672_600),
        ("B", 1, 575, 575),
    ]


def test_the_vat_return_sums_output_by_rate_and_takes_back_credit_notes() -> None:
    first = issued("A", GOODS, SERVICE).invoice
    second = issued("B", SERVICE).invoice
    book = issued("C", GOODS)
    voided_at = datetime(2025, 9, 20, tzinfo=UTC)
    book.do(inv.void(book.invoice, credit_note_number="CN", entry_id=uuid.uuid4(), at=voided_at))
    report = vat_return([first, second, book.invoice], date(2025, 9, 1), date(2025, 9, 30))
    sd20 = RateKey("BDT", Supply.TAXABLE, "15%", "20%")
    plain = RateKey("BDT", Supply.TAXABLE, "15%", "none")
    with_sd = report.output[sd20]
    assert (with_sd.value_minor, with_sd.sd_minor, with_sd.vat_minor) == (540_000, 108_000, 97_200)
    assert (report.output[plain].value_minor, report.output[plain].vat_minor) == (1_000, 150)
    assert report.credit_notes[sd20].vat_minor == -48_600
    assert (report.invoices_issued, report.credit_notes_issued) == (3, 1)
    assert report.net("BDT") == (54_000, 48_600 + 150)


def test_a_credit_note_counts_in_the_period_it_is_issued() -> None:
    book = issued("C", GOODS)
    book.do(inv.void(book.invoice, credit_note_number="CN", entry_id=uuid.uuid4(),
                     at=datetime(2025, 10, 3, tzinfo=UTC)))  # fmt: skip
    invoice: Invoice = book.invoice
    september = vat_return([invoice], date(2025, 9, 1), date(2025, 9, 30))
    october = vat_return([invoice], date(2025, 10, 1), date(2025, 10, 31))
    assert (september.invoices_issued, september.credit_notes_issued) == (1, 0)
    assert (october.invoices_issued, october.credit_notes_issued) == (0, 1)
    assert october.net("BDT") == (-54_000, -48_600)


def test_a_period_must_make_sense() -> None:
    with pytest.raises(LedgerRejection):
        vat_return([], date(2025, 9, 30), date(2025, 9, 1))
    with pytest.raises(LedgerRejection):
        vat_return([], date(2000, 1, 1), date(2025, 9, 1))
