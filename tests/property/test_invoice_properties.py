"""Any sequence of invoice commands: the entries they post keep the trial balance at zero, the
receivable equals what the invoice says is outstanding, and replaying the events gives the
state the commands saw."""

from __future__ import annotations

import uuid
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from finance.domain.errors import LedgerRejection
from finance.domain.invoicing import invoice as inv
from finance.domain.invoicing.invoice import (
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceStatus,
    NoteKind,
)
from finance.domain.invoicing.postings import (
    issue_entry,
    payment_entry,
    void_settlement_entry,
    write_off_entry,
)
from tests.invoicing import ACCOUNTS, AT, CASH, CODES, TODAY, Book

lines = st.builds(
    InvoiceLine,
    description=st.just("item"),
    unit=st.just("pcs"),
    quantity=st.decimals(min_value=Decimal("0.01"), max_value=100, places=2),
    unit_price_minor=st.integers(0, 10**7),
    tax_code=st.sampled_from(sorted(CODES)),
)
commands = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.integers(1, 10**9)),
        st.tuples(st.just("void"), st.just(0)),
        st.tuples(st.just("write_off"), st.just(0)),
        st.tuples(st.just("credit"), st.integers(1, 10**6)),
        st.tuples(st.just("debit"), st.integers(1, 10**6)),
    ),
    max_size=8,
)


@given(st.lists(lines, min_size=1, max_size=5), st.booleans(), commands)
def test_every_step_keeps_the_books_straight(
    drafted: list[InvoiceLine], inclusive: bool, steps: list[tuple[str, int]]
) -> None:
    book = Book()
    header = book.invoice.header
    if inclusive:
        book.do(
            inv.change_header(
                book.invoice,
                header.__class__(**{**header.__dict__, "prices_include_tax": True}),
                AT,
            )
        )
    issued = book.issued(*drafted) if any(True for _ in drafted) else book.invoice
    if issued.total_minor == 0:
        assert issued.status is InvoiceStatus.PAID
        return
    for name, amount in steps:
        before = book.invoice
        try:
            if name == "pay":
                share = before.allocate(amount)
                book.do(pay(before, amount))
                book.post(payment_entry(before, share, CASH, ACCOUNTS, TODAY))
            elif name == "void":
                book.do(inv.void(before, credit_note_number="CN", entry_id=uuid.uuid4(), at=AT))
                book.post(issue_entry(issued, ACCOUNTS), reverse=True)
                settlement = void_settlement_entry(before, ACCOUNTS, TODAY)
                if settlement is not None:
                    book.post(settlement)
            elif name == "write_off":
                book.do(inv.write_off(before, entry_id=uuid.uuid4(), at=AT))
                book.post(write_off_entry(before, ACCOUNTS, TODAY))
            else:
                kind = NoteKind.CREDIT if name == "credit" else NoteKind.DEBIT
                book.note(kind, InvoiceLine("note", "pcs", Decimal(1), amount, "VAT15"))
        except LedgerRejection:
            assert book.invoice == before  # a refused command changes nothing
            continue
        check(book)


def pay(invoice: Invoice, amount_minor: int) -> list[InvoiceEvent]:
    return inv.record_payment(
        invoice,
        payment_id=uuid.uuid4().hex,
        amount_minor=amount_minor,
        received_on=TODAY,
        entry_id=uuid.uuid4(),
        at=AT,
    )


def check(book: Book) -> None:
    invoice = book.invoice
    assert sum(book.balances.values()) == 0
    assert invoice.version == len(book.events)
    if invoice.status is InvoiceStatus.VOID:
        assert book.balances[ACCOUNTS.receivable] == 0
        assert book.balances[ACCOUNTS.revenue] == 0
        assert book.balances[ACCOUNTS.bad_debt] == 0
        assert -book.balances[ACCOUNTS.customer_credit] == invoice.paid_minor
    else:
        assert book.balances[ACCOUNTS.receivable] == invoice.outstanding_minor
        assert (
            -book.balances[ACCOUNTS.customer_credit] == invoice.credit_minor + invoice.refund_minor
        )
        # Revenue and taxes are the invoice's figures, less credit notes, plus debit notes.
        taxes = ACCOUNTS.revenue, ACCOUNTS.vat_payable, ACCOUNTS.sd_payable
        assert -sum(book.balances[a] for a in taxes) == invoice.due_minor
        net_bad_debt = invoice.written_off_minor - invoice.recovered_minor
        assert book.balances[ACCOUNTS.bad_debt] == net_bad_debt
    assert book.balances[CASH] == invoice.paid_minor
    assert invoice.outstanding_minor >= 0
    if invoice.status is InvoiceStatus.PAID:
        assert invoice.outstanding_minor == 0
        assert invoice.paid_minor + invoice.refund_minor >= invoice.due_minor
