"""Invoice documents as PDF, with fpdf2: pure Python, no system libraries (WeasyPrint would need
Pango), so a fresh machine renders with nothing but `pip install`.

The text is set in Helvetica, a PDF core font, which needs no font file but covers Latin-1 only.
A name in another script (a Bangla customer name) is printed with each character it cannot show
replaced by `?`: visibly incomplete rather than a failed request, and the JSON document keeps
the exact text. Shaping Bengali would need a font and a shaping engine this adapter does not
carry.

Output is deterministic: the creation date is the document's issue time, so the same invoice
always renders to the same bytes (a file that can be hashed, cached or compared).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fpdf import FPDF

from finance.domain.invoicing.documents import (
    DocumentForm,
    DocumentLine,
    NoteDocument,
    PartyBlock,
    Signatory,
    TaxInvoiceDocument,
    Totals,
)

_FONT = "Helvetica"
_MARGIN_MM = 10
# Columns of the line table, as wide as landscape A4 allows (277 mm between the margins).
_HEADINGS = (
    "SL", "Description", "Unit", "Quantity", "Unit price", "Total price", "Discount",
    "Value", "SD rate", "SD", "VAT rate", "VAT", "Value incl. all taxes",
)  # fmt: skip
_WIDTHS_MM = (8, 52, 14, 18, 20, 21, 18, 21, 16, 19, 16, 20, 34)
_ALIGN = ("C", "L", "L", "R", "R", "R", "R", "R", "R", "R", "R", "R", "R")
_AUTHORITY = ("Government of the People's Republic of Bangladesh", "National Board of Revenue")
_LINE_MM = 5


def render_tax_invoice(document: TaxInvoiceDocument) -> bytes:
    """Mushak-6.3, or the generic invoice when the document's form is GENERIC."""
    pdf = _new_pdf(document.title, document.number, document.issued_at)
    mushak = document.form is DocumentForm.TAX_INVOICE
    _heading(pdf, document.form, document.title, mushak=mushak)
    _parties(pdf, document.seller, document.buyer, mushak=mushak)
    facts = [
        ("Invoice No.", document.number),
        ("Date of issue", document.issue_date.isoformat()),
        ("Time of issue", document.issued_at_text),
    ]
    if mushak:
        facts.append(("Destination of supply", document.destination or "-"))
    else:
        due = document.due_date.isoformat() if document.due_date else "-"
        facts += [("Due date", due), ("Payment terms", document.payment_terms or "-")]
    _facts(pdf, facts)
    _line_table(pdf, document.lines, document.totals)
    _amounts_note(pdf, document.currency, document.prices_include_tax)
    _signature(pdf, document.signatory)
    return bytes(pdf.output())


def render_note(document: NoteDocument) -> bytes:
    """Mushak-6.7 (credit note) or 6.8 (debit note)."""
    pdf = _new_pdf(document.title, document.number, document.issued_at)
    _heading(pdf, document.form, document.title, mushak=True)
    _parties(pdf, document.seller, document.buyer, mushak=True)
    _facts(
        pdf,
        [
            (f"{document.title} No.", document.number),
            ("Date and time of issue", document.issued_at_text),
            ("Related tax invoice No.", document.related_invoice_number),
            ("Related tax invoice date", document.related_invoice_date.isoformat()),
            ("Reason", document.reason),
        ],
    )
    _line_table(pdf, document.lines, document.totals)
    direction = "credited (reduced)" if document.form is DocumentForm.CREDIT_NOTE else "added"
    _amounts_note(pdf, document.currency, False, f"Amounts {direction}")
    _signature(pdf, document.signatory)
    return bytes(pdf.output())


def _new_pdf(title: str, number: str, issued_at: datetime) -> FPDF:
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_fill_color(230)  # the headings' grey
    pdf.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN_MM)
    pdf.set_creation_date(issued_at)
    pdf.set_title(latin1(f"{title} {number}"))
    pdf.add_page()
    return pdf


def _heading(pdf: FPDF, form: DocumentForm, title: str, *, mushak: bool) -> None:
    if mushak:
        pdf.set_font(_FONT, size=9)
        pdf.cell(0, 5, f"Form {form.value}", align="R", new_x="LMARGIN", new_y="NEXT")
        for text in _AUTHORITY:
            pdf.cell(0, 5, text, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, style="B", size=14)
    pdf.cell(0, 8, title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _parties(pdf: FPDF, seller: PartyBlock, buyer: PartyBlock, *, mushak: bool) -> None:
    seller_label, buyer_label = ("Seller", "Buyer") if mushak else ("From", "Bill to")
    half = (pdf.w - 2 * _MARGIN_MM) / 2
    top = bottom = pdf.get_y()
    for column, (label, party) in enumerate(((seller_label, seller), (buyer_label, buyer))):
        pdf.set_xy(_MARGIN_MM + column * half, top)
        # The Mushak form names each field of each party; a generic invoice heads each block.
        prefix = f"{label} " if mushak else ""
        rows = [(f"{label} name" if mushak else label, party.name)]
        rows.append((f"{prefix}address".capitalize(), party.address))
        if party.bin is not None or mushak:
            rows.append((f"{prefix}BIN", party.bin or "-"))
        if party.tin is not None:
            rows.append((f"{prefix}TIN", party.tin))
        for name, value in rows:
            pdf.set_x(_MARGIN_MM + column * half)
            _labelled(pdf, name, value, half)
        bottom = max(bottom, pdf.get_y())  # the taller of the two blocks
    pdf.set_xy(_MARGIN_MM, bottom + 2)


def _facts(pdf: FPDF, facts: Sequence[tuple[str, str]]) -> None:
    for name, value in facts:
        _labelled(pdf, name, value, pdf.w - 2 * _MARGIN_MM)
    pdf.ln(3)


def _labelled(pdf: FPDF, name: str, value: str, width: float) -> None:
    label_mm = 48
    pdf.set_font(_FONT, style="B", size=9)
    pdf.cell(label_mm, 5, latin1(f"{name}:"))
    pdf.set_font(_FONT, size=9)
    # Left-aligned, and short of the next column by a gap (multi_cell justifies by default).
    pdf.multi_cell(width - label_mm - 4, 5, latin1(value), align="L", new_x="LMARGIN", new_y="NEXT")


def _line_table(pdf: FPDF, lines: Sequence[DocumentLine], totals: Totals) -> None:
    """The lines as a ruled table, headings repeated on each page. Drawn cell by cell rather
    than with fpdf2's `table()`, which wraps every cell twice: about four times the cost, or
    seconds for an invoice of 500 lines."""
    pdf.set_font(_FONT, size=8)
    headings = list(zip(_HEADINGS, _WIDTHS_MM, _ALIGN, strict=True))
    _row(pdf, headings, heading=True)
    for line in lines:
        texts = [latin1(text) for text in _line_cells(line)]
        if not _row(pdf, list(zip(texts, _WIDTHS_MM, _ALIGN, strict=True))):
            _row(pdf, headings, heading=True)
            _row(pdf, list(zip(texts, _WIDTHS_MM, _ALIGN, strict=True)))
    amounts = (totals.amount, totals.discount, totals.value, None, totals.sd, None, totals.vat)
    total = [("Total", sum(_WIDTHS_MM[:5]), "R")]
    total += [
        ("" if m is None else m.text, w, "R")
        for m, w in zip(amounts, _WIDTHS_MM[5:-1], strict=True)
    ]
    total.append((totals.total.text, _WIDTHS_MM[-1], "R"))
    if not _row(pdf, total, heading=True):
        _row(pdf, headings, heading=True)
        _row(pdf, total, heading=True)


Cell = tuple[str, float, str]  # text, width in mm, alignment


def _row(pdf: FPDF, cells: Sequence[Cell], *, heading: bool = False) -> bool:
    """Draw one row, each cell as tall as the row; False (and a new page, nothing drawn) when
    the row does not fit on this page."""
    pdf.set_font(_FONT, style="B" if heading else "", size=8)
    counts = [_wrapped_lines(pdf, text, width) for text, width, _ in cells]
    height = _LINE_MM * max(counts)
    if pdf.get_y() + height > pdf.page_break_trigger and pdf.get_y() > _MARGIN_MM + height:
        pdf.add_page()
        return False
    x, y = pdf.l_margin, pdf.get_y()
    for (text, width, align), count in zip(cells, counts, strict=True):
        pdf.rect(x, y, width, height, style="DF" if heading else "D")
        pdf.set_xy(x, y)
        if count == 1:
            pdf.cell(width, _LINE_MM, text, align=align)
        else:
            pdf.multi_cell(width, _LINE_MM, text, align=align)
        x += width
    pdf.set_xy(pdf.l_margin, y + height)
    return True


def _wrapped_lines(pdf: FPDF, text: str, width: float) -> int:
    # Most cells fit on one line: measuring is cheap, wrapping (a dry run) is not.
    if "\n" not in text and pdf.get_string_width(text) <= width - 2 * pdf.c_margin:
        return 1
    lines = pdf.multi_cell(width, _LINE_MM, text, dry_run=True, output="LINES")
    if not isinstance(lines, list):  # fpdf2's return type depends on `output`
        raise TypeError(f"fpdf2 returned {type(lines).__name__} for output=LINES")
    return len(lines)


def _line_cells(line: DocumentLine) -> tuple[str, ...]:
    return (
        str(line.position),
        line.description,
        line.unit,
        line.quantity,
        line.unit_price.text,
        line.amount.text,
        line.discount.text,
        line.value.text,
        "-" if line.sd_rate is None else line.sd_rate.text,
        line.sd.text,
        "exempt" if line.vat_rate is None else line.vat_rate.text,
        line.vat.text,
        line.total.text,
    )


def _amounts_note(
    pdf: FPDF, currency: str, prices_include_tax: bool, prefix: str = "Amounts"
) -> None:
    text = f"{prefix} in {currency}."
    if prices_include_tax:
        text += " Prices include VAT and SD."
    pdf.ln(2)
    pdf.set_font(_FONT, size=8)
    pdf.cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")


def _signature(pdf: FPDF, signatory: Signatory) -> None:
    pdf.ln(10)
    pdf.set_font(_FONT, size=9)
    pdf.cell(0, 5, "Signature: ______________________________", new_x="LMARGIN", new_y="NEXT")
    _labelled(pdf, "Authorised person", signatory.authorised_person, pdf.w - 2 * _MARGIN_MM)
    _labelled(pdf, "For", signatory.organisation, pdf.w - 2 * _MARGIN_MM)


def latin1(text: str) -> str:
    """`text` as the core font can print it: each character outside Latin-1, and each control
    character but a newline, becomes `?`."""
    return "".join(char if char == "\n" or _printable(ord(char)) else "?" for char in text)


def _printable(code: int) -> bool:
    return 0x20 <= code < 0x7F or 0xA0 <= code <= 0xFF
