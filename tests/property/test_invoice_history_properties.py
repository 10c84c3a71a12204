"""Any history of invoice commands on the real database: the ledger stays balanced and equal
to its journal, the receivable equals what the invoices say is owed, and a rebuilt read model
equals the live one."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.integrity import run_checks
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.errors import LedgerRejection
from finance.domain.invoicing.invoice import InvoiceLine, InvoiceStatus, NoteKind
from finance.services import invoicing
from finance.services.ports import LedgerTransaction
from tests.integration.helpers import new_tenant
from tests.integration.test_invoicing import NOW, Books, make_books, read_models
from tests.unit.test_invoice import GOODS, SERVICE

COMMANDS = ("draft", "issue", "pay", "void", "write_off", "credit", "debit", "discard")
steps = st.lists(
    st.tuples(st.sampled_from(COMMANDS), st.integers(0, 3), st.integers(1, 400_000)),
    min_size=1,
    max_size=14,
)


def run_step(books: Books, ids: list[Any], name: str, pick: int, amount: int) -> None:
    if name == "draft" or not ids:
        ids.append(books.draft(GOODS if amount % 2 else SERVICE).id)
        return
    invoice_id = ids[pick % len(ids)]
    note_line = InvoiceLine("note", "pcs", Decimal(1), amount % 50_000 + 1, "VAT15")

    def work(tx: LedgerTransaction) -> object:
        if name == "pay":
            return invoicing.record_payment(
                tx, invoice_id, payment_id=f"p-{len(ids)}-{amount}-{pick}", amount_minor=amount,
                received_on=NOW.date(), now=NOW,
            )  # fmt: skip
        if name in ("credit", "debit"):
            kind = NoteKind.CREDIT if name == "credit" else NoteKind.DEBIT
            return invoicing.issue_note(tx, invoice_id, kind, [note_line], "adjust", NOW)
        command = {
            "issue": invoicing.issue,
            "void": invoicing.void,
            "write_off": invoicing.write_off,
            "discard": invoicing.discard,
        }[name]
        return command(tx, invoice_id, NOW)

    # A command refused in this state: the checks below show it left nothing behind.
    with contextlib.suppress(LedgerRejection):
        books(work)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=steps)
def test_any_history_keeps_the_books_and_rebuilds_to_the_live_model(
    store: PostgresLedgerStore, database: Database, history: list[tuple[str, int, int]]
) -> None:
    books = make_books(store, new_tenant(store))
    ids: list[Any] = []
    for name, pick, amount in history:
        run_step(books, ids, name, pick, amount)
    with database.admin() as conn:
        problems = [r for r in run_checks(conn, [books.tenant]) if not r.ok]
    assert problems == []
    invoices = [books(lambda tx, i=i: invoicing.load(tx, i, None)) for i in ids]
    owed = sum(i.outstanding_minor for i in invoices if i.status is not InvoiceStatus.VOID)
    assert books.balance(books.accounts.receivable) == owed
    live = read_models(books)
    assert {row["id"]: row["version"] for row in live.values()} == {
        i.id: i.version for i in invoices
    }
    with database.admin() as conn, conn.transaction():
        conn.execute("DELETE FROM invoices WHERE tenant_id = %s", (books.tenant,))
    books(invoicing.rebuild_read_model)
    assert read_models(books) == live
