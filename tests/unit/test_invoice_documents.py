"""Invoice documents: the Mushak-6.3 tax invoice, the 6.7 credit note of a void, a 6.8 debit
note, and their PDFs read back as text (worked example: GOODS + SERVICE, BDT minor units)."""

from __future__ import annotations

import io
import uuid
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from finance.adapters.pdf import latin1, render_note, render_tax_invoice
from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.domain.invoicing import invoice as inv
from finance.domain.invoicing.documents import (
    Adjustment,
    DocumentForm,
    DocumentLine,
    Money,
    Rate,
    credit_note_of_void,
    issued_note,
    note,
    tax_invoice,
)
from finance.domain.invoicing.figures import line_figures
from finance.domain.invoicing.invoice import Header, Invoice, InvoiceLine, NoteKind, Party
from finance.domain.invoicing.tax import Levy, Supply, TaxCode, TaxRate
from tests.invoicing import AT, BUYER, CODES, SELLER, Book
from tests.unit.test_invoice import GOODS, SERVICE

NUMBER = "DHK/2025-26/000001"
CREDIT_NOTE = "CN/DHK/2025-26/000001"


def pdf_text(content: bytes) -> str:
    """The text of every page, with runs of whitespace made single spaces."""
    assert content.startswith(b"%PDF-")
    pages = PdfReader(io.BytesIO(content)).pages
    return " ".join(" ".join(page.extract_text().split()) for page in pages)


def issued(*lines: InvoiceLine, header: Header | None = None) -> Book:
    book = Book(header)
    book.issued(*(lines or (GOODS, SERVICE)))
    return book


def voided(book: Book) -> Invoice:
    return book.do(
        inv.void(book.invoice, credit_note_number=CREDIT_NOTE, entry_id=uuid.uuid4(), at=AT)
    )


def bdt(amount_minor: int) -> Money:
    return Money.of(amount_minor, "BDT")


def test_the_tax_invoice_of_the_worked_example() -> None:
    document = tax_invoice(issued().invoice)
    assert (document.form, document.title, document.number) == (
        DocumentForm.TAX_INVOICE,
        "Tax Invoice",
        NUMBER,
    )
    assert document.issue_date == date(2025, 9, 1)
    assert document.issued_at == AT
    assert document.issued_at_text == "2025-09-01 16:00 BST (UTC+06:00)"  # 10:00 UTC
    assert (document.seller.name, document.seller.bin) == ("Seller Ltd", "001234567-0101")
    assert (document.buyer.address, document.buyer.bin) == ("Agrabad, Chattogram", "009876543-0202")
    totals = document.totals
    assert (totals.value, totals.sd, totals.vat, totals.total) == (
        bdt(270_500), bdt(54_000), bdt(48_675), bdt(373_175),
    )  # fmt: skip
    assert (totals.value.text, totals.total.text) == ("2705.00", "3731.75")
    assert (totals.amount, totals.discount) == (bdt(300_500), bdt(30_000))
    assert (document.signatory.organisation, document.signatory.authorised_person) == (
        "Seller Ltd",
        "Seller Ltd",
    )


def test_each_line_of_the_tax_invoice() -> None:
    goods, service = tax_invoice(issued().invoice).lines
    assert goods == DocumentLine(
        position=1,
        description="Goods",
        unit="pcs",
        quantity="3",
        unit_price=bdt(100_000),
        amount=bdt(300_000),
        discount=bdt(30_000),  # 10 %
        value=bdt(270_000),
        sd_rate=Rate("20", None, "20%"),
        sd=bdt(54_000),
        vat_rate=Rate("15", None, "15%"),
        vat=bdt(48_600),  # 15 % of 2,700.00 + 540.00
        total=bdt(372_600),
        supply="taxable",
    )
    assert (service.position, service.quantity, service.unit_price.text) == (2, "1.5", "3.33")
    assert (service.amount, service.value, service.sd_rate, service.sd) == (
        bdt(500), bdt(500), None, bdt(0),
    )  # fmt: skip
    assert (service.vat, service.total) == (bdt(75), bdt(575))


def test_a_per_unit_levy_is_printed_per_unit() -> None:
    code = TaxCode(
        "CIG",
        "cigarettes",
        Supply.TAXABLE,
        (TaxRate(date(2019, 7, 1), vat=Levy(Decimal(15)), sd=Levy(per_unit_minor=250)),),
    )
    book = Book()
    line = InvoiceLine("Sticks", "stick", Decimal(1000), 100, "CIG")
    book.do(inv.add_line(book.invoice, line, {**CODES, "CIG": code}, AT))
    # Book.issued takes the fixture's codes: issue here with the extra code.
    events = inv.issue(
        book.invoice, number=NUMBER, fiscal_year="2025-26", today=AT.date(),
        tax_codes={**CODES, "CIG": code}, rules=inv.IssueRules(), entry_id=uuid.uuid4(), at=AT,
    )  # fmt: skip
    (sticks,) = tax_invoice(book.do(events)).lines
    assert sticks.sd_rate == Rate(None, 250, "2.50/stick")
    assert sticks.sd == bdt(250_000)  # 1000 sticks x 2.50


def test_a_named_signatory_signs_for_the_seller() -> None:
    invoice = issued().invoice
    named = tax_invoice(invoice, signatory="  Rahim Uddin ").signatory
    assert (named.organisation, named.authorised_person) == ("Seller Ltd", "Rahim Uddin")
    assert tax_invoice(invoice, signatory=" ").signatory.authorised_person == "Seller Ltd"


def test_a_draft_or_discarded_invoice_has_no_tax_invoice() -> None:
    book = Book()
    book.do(inv.add_line(book.invoice, GOODS, CODES, AT))
    with pytest.raises(LedgerRejection) as draft:
        tax_invoice(book.invoice)
    assert draft.value.code is RejectCode.INVOICE_IS_DRAFT
    discarded = book.do(inv.discard(book.invoice, AT))
    with pytest.raises(LedgerRejection) as gone:
        tax_invoice(discarded)
    assert gone.value.code is RejectCode.INVOICE_IS_DISCARDED


def test_a_paid_or_void_invoice_keeps_its_tax_invoice() -> None:
    paid = issued(GOODS).pay(372_600)
    assert tax_invoice(paid).totals.total == bdt(372_600)
    assert tax_invoice(voided(issued(GOODS))).number == NUMBER


def test_the_generic_invoice_has_the_same_figures_without_the_mushak_form() -> None:
    invoice = issued().invoice
    generic = tax_invoice(invoice, generic=True)
    mushak = tax_invoice(invoice)
    assert (generic.form, generic.title) == (DocumentForm.GENERIC, "Invoice")
    assert (generic.lines, generic.totals) == (mushak.lines, mushak.totals)
    assert generic.issued_at_text == "2025-09-01 10:00 UTC"
    assert generic.due_date == date(2025, 10, 1)


def test_the_credit_note_of_a_void_credits_every_line_in_full() -> None:
    book = issued()
    original = tax_invoice(book.invoice)
    document = credit_note_of_void(voided(book), signatory="Rahim Uddin")
    assert (document.form, document.kind, document.title) == (
        DocumentForm.CREDIT_NOTE,
        NoteKind.CREDIT,
        "Credit Note",
    )
    assert (document.number, document.issued_at) == (CREDIT_NOTE, AT)
    assert (document.related_invoice_number, document.related_invoice_date) == (
        NUMBER,
        date(2025, 9, 1),
    )
    assert (document.lines, document.totals) == (original.lines, original.totals)
    assert document.totals.total == bdt(373_175)
    assert document.signatory.authorised_person == "Rahim Uddin"


def test_only_a_void_invoice_has_a_credit_note() -> None:
    with pytest.raises(LedgerRejection) as refused:
        credit_note_of_void(issued().invoice)
    assert refused.value.code is RejectCode.INVOICE_IS_OPEN


def test_a_partial_debit_note_is_the_same_document_with_its_own_lines() -> None:
    invoice = issued().invoice
    # A later price rise on one of the three pieces: 1 x 50.00 more, under the same code.
    code = CODES["VAT15-SD20"]
    extra = line_figures(
        replace(GOODS, quantity=Decimal(1), unit_price_minor=5_000, discount_percent=None)
        .as_input(),
        code, AT.date(), prices_include_tax=False,
    )  # fmt: skip
    document = note(
        invoice,
        kind=NoteKind.DEBIT,
        number="DN/DHK/2025-26/000001",
        issued_at=AT,
        reason="Price revised",
        adjustments=[Adjustment(GOODS, extra)],
    )
    assert (document.form, document.title) == (DocumentForm.DEBIT_NOTE, "Debit Note")
    assert document.related_invoice_number == NUMBER
    assert (document.totals.value, document.totals.sd, document.totals.vat) == (
        bdt(5_000), bdt(1_000), bdt(900),
    )  # fmt: skip
    assert document.totals.total == bdt(6_900)
    with pytest.raises(InvariantViolation):
        note(invoice, kind=NoteKind.CREDIT, number="CN/1", issued_at=AT, reason="-",
             adjustments=[])  # fmt: skip


def test_an_issued_note_is_printed_with_its_own_lines() -> None:
    book = issued()
    one_piece = replace(GOODS, quantity=Decimal(1))  # 10 % off, like the invoice's line
    noted = book.do(
        inv.issue_note(
            book.invoice, NoteKind.CREDIT, number="CN/DHK/2025-26/000002", lines=(one_piece,),
            reason="One piece returned", tax_codes=CODES, entry_id=uuid.uuid4(), at=AT,
        )
    )  # fmt: skip
    document = issued_note(noted, 1, signatory="Rahim Uddin")
    assert (document.form, document.kind, document.number) == (
        DocumentForm.CREDIT_NOTE, NoteKind.CREDIT, "CN/DHK/2025-26/000002",
    )  # fmt: skip
    assert (document.reason, document.related_invoice_number) == ("One piece returned", NUMBER)
    (line,) = document.lines
    assert (line.quantity, line.value, line.sd, line.vat) == ("1", bdt(90_000), bdt(18_000),
                                                               bdt(16_200))  # fmt: skip
    assert document.totals.total == bdt(124_200)
    with pytest.raises(LedgerRejection) as missing:
        issued_note(noted, 2)
    assert missing.value.code is RejectCode.INVOICE_NOT_FOUND
    text = pdf_text(render_note(document))
    assert "Credit Note No.: CN/DHK/2025-26/000002" in text
    assert "1 Goods pcs 1 1000.00 1000.00 100.00 900.00 20% 180.00 15% 162.00 1242.00" in text


# PDFs -------------------------------------------------------------------------------------

FIGURES_OF_LINES = (
    "1 Goods pcs 3 1000.00 3000.00 300.00 2700.00 20% 540.00 15% 486.00 3726.00",
    "2 Service hour 1.5 3.33 5.00 0.00 5.00 - 0.00 15% 0.75 5.75",
    "Total 3005.00 300.00 2705.00 540.00 486.75 3731.75",
)


def assert_worked_example(text: str) -> None:
    assert "001234567-0101" in text
    assert "009876543-0202" in text
    for row in FIGURES_OF_LINES:
        assert row in text


def test_the_mushak_63_pdf_shows_the_form_and_its_figures() -> None:
    text = pdf_text(render_tax_invoice(tax_invoice(issued().invoice, signatory="Rahim Uddin")))
    assert "Form Mushak-6.3" in text
    assert "National Board of Revenue" in text
    assert f"Invoice No.: {NUMBER}" in text
    assert "Date of issue: 2025-09-01" in text
    assert "Time of issue: 2025-09-01 16:00 BST" in text
    assert "Seller name: Seller Ltd" in text
    assert "Buyer address: Agrabad, Chattogram" in text
    assert_worked_example(text)
    assert "Authorised person: Rahim Uddin" in text
    assert "Amounts in BDT." in text


def test_the_mushak_67_pdf_names_the_related_invoice() -> None:
    text = pdf_text(render_note(credit_note_of_void(voided(issued()))))
    assert "Form Mushak-6.7" in text
    assert f"Credit Note No.: {CREDIT_NOTE}" in text
    assert f"Related tax invoice No.: {NUMBER}" in text
    assert "Related tax invoice date: 2025-09-01" in text
    assert_worked_example(text)
    assert "Amounts credited (reduced) in BDT." in text


def test_the_generic_pdf_has_no_mushak_heading() -> None:
    text = pdf_text(render_tax_invoice(tax_invoice(issued().invoice, generic=True)))
    assert "Mushak" not in text
    assert "National Board of Revenue" not in text
    assert f"Invoice No.: {NUMBER}" in text
    assert "Due date: 2025-10-01" in text
    assert "Bill to: Buyer Ltd" in text
    assert_worked_example(text)


def test_a_long_invoice_wraps_and_repeats_its_headings_on_each_page() -> None:
    words = " ".join(f"part-{n}" for n in range(40))  # several lines in its column
    lines = [replace(SERVICE, description=f"Item {n} {words}") for n in range(1, 41)]
    document = tax_invoice(issued(*lines).invoice)
    content = render_tax_invoice(document)
    pages = [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(content)).pages]
    assert len(pages) > 2
    assert all("SL Description Unit Quantity" in page for page in pages)
    text = " ".join(pages)
    for n in range(1, 41):
        assert f"Item {n} part-0" in text
    assert "part-39" in text
    assert document.totals.total == bdt(40 * 575)
    assert "Total 200.00 0.00 200.00 0.00 30.00 230.00" in text


def test_a_long_address_pushes_what_follows_below_it() -> None:
    seller = replace(SELLER, address="House 12, Road 34, Gulshan Avenue, Dhaka 1212, " * 3)
    book = issued(GOODS, header=Header(BUYER, seller, "DHK", "BDT"))
    content = render_tax_invoice(tax_invoice(book.invoice))
    heights: dict[str, float] = {}  # the baseline of each text, up the page

    def seen(text: str, _cm: object, matrix: list[float], *_: object) -> None:
        heights.setdefault(text.strip(), matrix[5])

    PdfReader(io.BytesIO(content)).pages[0].extract_text(visitor_text=seen)
    address_lines = [y for text, y in heights.items() if "Gulshan" in text]
    assert len(address_lines) > 1  # wrapped
    assert heights["Seller BIN:"] < min(address_lines)
    assert heights["Invoice No.:"] < heights["Seller BIN:"] < heights["Buyer BIN:"]


def test_the_same_invoice_renders_to_the_same_bytes() -> None:
    invoice = issued().invoice
    first = render_tax_invoice(tax_invoice(invoice))
    assert first == render_tax_invoice(tax_invoice(invoice))
    assert b"D:20250901100000Z" in first  # the creation date is the issue time


def test_letters_outside_latin_1_are_replaced_visibly() -> None:
    bangla = Party("রহিম ট্রেডার্স Ltd", "ঢাকা, Dhaka", bin=BUYER.bin)
    book = issued(GOODS, header=Header(bangla, SELLER, "DHK", "BDT", destination="Café ঢাকা"))
    document = tax_invoice(book.invoice)
    assert document.buyer.name == "রহিম ট্রেডার্স Ltd"  # the document keeps the exact text
    text = pdf_text(render_tax_invoice(document))
    assert f"Buyer name: {'?' * 4} {'?' * 9} Ltd" in text  # one per code point
    assert "Destination of supply: Café ????" in text
    assert latin1("a\u0085b\tc\nd\u20ac") == "a?b?c\nd?"
