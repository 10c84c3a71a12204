"""Invoices on the real database: each step's events, read model and ledger entries commit
together; numbers are gap-free; stale versions are refused; the stream is immutable; a rebuilt
read model equals the live one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountType
from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.invoicing import invoice as inv
from finance.domain.invoicing.fiscal import Series
from finance.domain.invoicing.invoice import Header, Invoice, InvoiceStatus, Party, PaymentStatus
from finance.domain.invoicing.postings import InvoiceAccounts
from finance.domain.invoicing.settings import InvoiceSettings
from finance.domain.invoicing.tax_ids import Bin
from finance.services import invoicing, ledger
from finance.services.ports import EntryFilter, LedgerTransaction
from tests.integration.helpers import open_account, raises_sqlstate
from tests.invoicing import BUYER, CODES, RULES, SELLER
from tests.unit.test_invoice import GOODS, SERVICE

NOW = datetime(2025, 9, 1, 9, 30, tzinfo=UTC)
HEADER = Header(BUYER, SELLER, "DHK", "BDT", issue_date=date(2025, 9, 1))


@dataclass(frozen=True)
class Books:
    store: PostgresLedgerStore
    tenant: str
    accounts: InvoiceAccounts
    cash: UUID

    def __call__(self, work: Any) -> Any:
        return self.store(self.tenant, work)

    def balance(self, account: UUID) -> int:
        found = self(lambda tx: ledger.account_balance(tx, account))
        return int(found.signed)

    def draft(self, *lines: Any, header: Header = HEADER) -> Invoice:
        invoice_id = uuid.uuid4()
        return self(lambda tx: invoicing.create_draft(tx, invoice_id, header, lines, NOW))  # type: ignore[no-any-return]

    def issue(self, invoice: Invoice) -> Invoice:
        return self(lambda tx: invoicing.issue(tx, invoice.id, NOW))  # type: ignore[no-any-return]

    def pay(self, invoice: Invoice, amount: int, payment_id: str | None = None) -> Invoice:
        pid = payment_id or uuid.uuid4().hex

        def work(tx: LedgerTransaction) -> Invoice:
            return invoicing.record_payment(
                tx, invoice.id, payment_id=pid, amount_minor=amount,
                received_on=date(2025, 9, 2), now=NOW,
            )  # fmt: skip

        return self(work)  # type: ignore[no-any-return]


@pytest.fixture
def books(store: PostgresLedgerStore, tenant: str) -> Books:
    return make_books(store, tenant)


def make_books(store: PostgresLedgerStore, tenant: str, prefix: str = "") -> Books:
    """The tenant's invoice accounts (BDT, codes after `prefix`), settings and tax codes."""

    def account(code: str, kind: AccountType) -> UUID:
        return open_account(store, tenant, prefix + code, kind, currency="BDT")

    accounts = InvoiceAccounts(
        receivable=account("receivable", AccountType.ASSET),
        revenue=account("revenue", AccountType.REVENUE),
        vat_payable=account("vat-payable", AccountType.LIABILITY),
        sd_payable=account("sd-payable", AccountType.LIABILITY),
        customer_credit=account("customer-credit", AccountType.LIABILITY),
        bad_debt=account("bad-debt", AccountType.EXPENSE),
    )
    cash = account("cash", AccountType.ASSET)
    settings = InvoiceSettings(accounts, cash, rules=RULES)

    def setup(tx: LedgerTransaction) -> None:
        invoicing.configure(tx, settings, NOW)
        for code in CODES.values():
            invoicing.define_tax_code(tx, code, NOW)

    store(tenant, setup)
    return Books(store, tenant, accounts, cash)


def test_an_invoice_from_draft_to_paid_posts_every_step(books: Books) -> None:
    draft = books.draft(GOODS, SERVICE)
    assert (draft.status, draft.version, draft.number) == (InvoiceStatus.DRAFT, 3, None)
    issued = books.issue(draft)
    assert issued.number == "DHK/2025-26/000001"
    assert issued.fiscal_year == "2025-26"
    assert issued.total_minor == 373_175
    a = books.accounts
    assert books.balance(a.receivable) == 373_175
    assert books.balance(a.revenue) == 270_500
    assert books.balance(a.vat_payable) == 48_675
    assert books.balance(a.sd_payable) == 54_000
    part = books.pay(issued, 100_000)
    assert (part.status, part.payment_status) == (InvoiceStatus.OPEN, PaymentStatus.PARTIALLY_PAID)
    paid = books.pay(part, 273_175)
    assert (paid.status, paid.payment_status) == (InvoiceStatus.PAID, PaymentStatus.PAID)
    assert books.balance(a.receivable) == 0
    assert books.balance(books.cash) == 373_175
    row = read_model(books, paid.id)
    assert (row["status"], row["payment_status"], row["version"]) == ("paid", "paid", 6)
    assert (row["total_minor"], row["paid_minor"], row["outstanding_minor"]) == (
        373_175,
        373_175,
        0,
    )


def test_void_after_a_partial_payment(books: Books) -> None:
    issued = books.issue(books.draft(GOODS))
    books.pay(issued, 100_000)
    voided = books(lambda tx: invoicing.void(tx, issued.id, NOW))
    assert voided.status is InvoiceStatus.VOID
    a = books.accounts
    assert [books.balance(x) for x in (a.receivable, a.revenue, a.vat_payable, a.sd_payable)] == [
        0
    ] * 4
    assert books.balance(a.customer_credit) == 100_000
    entries = books(lambda tx: tx.list_entries(EntryFilter(), None, 100))
    types = [e.type for e in entries]
    assert types == ["INVOICE_ISSUED", "INVOICE_PAYMENT", "REVERSAL", "INVOICE_VOID_SETTLEMENT"]
    assert entries[2].reversal_of == issued.issue_entry_id
    assert voided.number == issued.number  # a void keeps the invoice's number


def test_numbers_are_gap_free_and_a_refused_issue_takes_none(books: Books) -> None:
    first = books.issue(books.draft(SERVICE))
    legacy = Header(Party("Old Co", "Dhaka", bin=Bin.parse("123456789")), SELLER, "DHK", "BDT",
                    issue_date=date(2025, 9, 1))  # fmt: skip
    refused = books.draft(SERVICE, header=legacy)
    with pytest.raises(LedgerRejection) as info:
        books.issue(refused)
    assert info.value.code is RejectCode.LEGACY_BIN_REFUSED
    second = books.issue(books.draft(SERVICE))
    other_place = books.issue(books.draft(SERVICE, header=replace(HEADER, location="CTG")))
    july = books.draft(SERVICE, header=replace(HEADER, issue_date=date(2026, 7, 1)))
    next_year = books(lambda tx: invoicing.issue(tx, july.id, datetime(2026, 7, 1, tzinfo=UTC)))
    assert [first.number, second.number, other_place.number, next_year.number] == [
        "DHK/2025-26/000001",
        "DHK/2025-26/000002",
        "CTG/2025-26/000001",
        "DHK/2026-27/000001",
    ]


def test_a_failed_posting_leaves_no_event_and_no_number(books: Books) -> None:
    issued = books.issue(books.draft(SERVICE))
    books(lambda tx: ledger.close_account(tx, books.accounts.revenue, NOW))
    draft = books.draft(SERVICE)
    with pytest.raises(LedgerRejection) as info:
        books.issue(draft)
    assert info.value.code is RejectCode.ACCOUNT_CLOSED
    still = books(lambda tx: invoicing.load(tx, draft.id, None))
    assert (still.status, still.version) == (InvoiceStatus.DRAFT, draft.version)
    assert read_model(books, draft.id)["status"] == "draft"
    counter = books(lambda tx: tx.invoices.next_number(Series.INVOICE, "DHK", "2025-26"))
    assert counter == 2  # the failed issue's number was rolled back with it
    assert issued.number == "DHK/2025-26/000001"


def test_a_stale_version_is_refused(books: Books) -> None:
    draft = books.draft(GOODS)
    books(lambda tx: invoicing.update_draft(tx, draft.id, HEADER, [SERVICE], NOW))
    with pytest.raises(LedgerRejection) as info:
        books(lambda tx: invoicing.issue(tx, draft.id, NOW, expected_version=draft.version))
    assert info.value.code is RejectCode.INVOICE_VERSION_CONFLICT


def test_a_lost_race_is_a_version_conflict(books: Books) -> None:
    draft = books.draft(GOODS)
    loaded = books(lambda tx: invoicing.load(tx, draft.id, None))
    books(lambda tx: invoicing.discard(tx, draft.id, NOW))
    events = inv.discard(loaded, NOW)  # decided against the version before the discard
    with pytest.raises(LedgerRejection) as info:
        books(lambda tx: tx.invoices.append(draft.id, loaded.version, events, NOW))
    assert info.value.code is RejectCode.INVOICE_VERSION_CONFLICT


def test_another_tenant_sees_no_invoice(books: Books, store: PostgresLedgerStore) -> None:
    draft = books.draft(GOODS)
    other = f"t-{uuid.uuid4().hex[:12]}"
    store(other, lambda tx: ledger.create_tenant(tx, "Other", NOW))
    with pytest.raises(LedgerRejection) as info:
        store(other, lambda tx: invoicing.load(tx, draft.id, None))
    assert info.value.code is RejectCode.INVOICE_NOT_FOUND


def test_events_are_immutable_and_counters_only_go_up(books: Books, database: Database) -> None:
    books.issue(books.draft(GOODS))
    with database.admin() as conn:
        with raises_sqlstate("FN004"):
            conn.execute(
                "UPDATE invoice_events SET data = '{}' WHERE tenant_id = %s", (books.tenant,)
            )
        with raises_sqlstate("FN004"):
            conn.execute("DELETE FROM invoice_events WHERE tenant_id = %s", (books.tenant,))
        with raises_sqlstate("FN004"):
            conn.execute(
                "UPDATE invoice_counters SET last_number = last_number - 1 WHERE tenant_id = %s",
                (books.tenant,),
            )


def test_the_rebuilt_read_model_equals_the_live_one(books: Books, database: Database) -> None:
    issued = books.issue(books.draft(GOODS, SERVICE))
    books.pay(issued, 50_000)
    books(lambda tx: invoicing.discard(tx, books.draft(SERVICE).id, NOW))
    books(lambda tx: invoicing.write_off(tx, books.issue(books.draft(GOODS)).id, NOW))
    live = read_models(books)
    with database.admin() as conn:
        conn.execute("DELETE FROM invoices WHERE tenant_id = %s", (books.tenant,))
    assert read_models(books) == {}
    rebuilt = books(lambda tx: invoicing.rebuild_read_model(tx))
    assert rebuilt == 3
    assert read_models(books) == live


def read_model(books: Books, invoice_id: UUID) -> dict[str, Any]:
    return read_models(books)[invoice_id]


def read_models(books: Books) -> dict[UUID, dict[str, Any]]:
    def rows(tx: LedgerTransaction) -> dict[UUID, dict[str, Any]]:
        found = tx.invoices._rows("SELECT * FROM invoices WHERE tenant_id = %s", (books.tenant,))  # type: ignore[attr-defined]
        return {row["id"]: row for row in found}

    return books(rows)  # type: ignore[no-any-return]
