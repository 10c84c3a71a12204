"""Invoice use cases: each loads the invoice's stream, decides with the domain, posts what the
step moves in the ledger, appends the events and projects the read model, all in the caller's
transaction (so all or nothing).

A command may carry the version the caller last saw (`expected_version`, the API's If-Match);
a command against a stale version is refused (invoice_version_conflict), as is one that loses
a race to another writer (the event store's primary key).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from uuid import UUID

from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.domain.invoicing import invoice as inv
from finance.domain.invoicing.fiscal import FiscalYear, Series, fiscal_year_of, invoice_number
from finance.domain.invoicing.invoice import (
    Header,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceStatus,
    InvoiceVoided,
    NoteIssued,
    NoteKind,
)
from finance.domain.invoicing.postings import (
    issue_entry,
    note_entry,
    payment_entry,
    void_settlement_entry,
    write_off_entry,
)
from finance.domain.invoicing.reports import AgingRow, VatReturn, aging, check_period, vat_return
from finance.domain.invoicing.settings import InvoiceSettings
from finance.domain.invoicing.tax import TaxCode
from finance.services import ledger
from finance.services.ids import new_entry_id
from finance.services.ports import LedgerTransaction

NewId = Callable[[], UUID]


def configure(tx: LedgerTransaction, settings: InvoiceSettings, now: datetime) -> None:
    """Store the tenant's invoicing settings; every account must exist and be open."""
    for account_id in settings.account_ids:
        account = ledger.get_account(tx, account_id)
        if account.closed:
            raise LedgerRejection(RejectCode.ACCOUNT_CLOSED, f"account {account.code} is closed")
    tx.invoices.save_settings(settings, now)


def define_tax_code(tx: LedgerTransaction, code: TaxCode, now: datetime) -> TaxCode:
    """Add or extend a tax code. Rates already in force are history: they cannot change, so
    that every issued invoice can be recomputed as it was issued; new rates start later."""
    existing = tx.invoices.tax_codes().get(code.code)
    if existing is not None:
        today = now.date()
        kept = [rate for rate in existing.rates if rate.valid_from <= today]
        if list(code.rates[: len(kept)]) != kept or code.supply is not existing.supply:
            raise LedgerRejection(
                RejectCode.INVALID_TAX_CODE,
                f"tax code {code.code}: rates in force since before {today.isoformat()} and its"
                " supply cannot change; add a rate from a later date instead",
            )
    tx.invoices.save_tax_code(code, now)
    return code


def create_draft(
    tx: LedgerTransaction,
    invoice_id: UUID,
    header: Header,
    lines: Sequence[InvoiceLine],
    now: datetime,
) -> Invoice:
    if tx.invoices.events(invoice_id):
        raise LedgerRejection(RejectCode.INVALID_INVOICE, f"invoice {invoice_id} exists")
    _check_replaced(tx, header)
    codes = tx.invoices.tax_codes()
    events: list[InvoiceEvent] = inv.draft(header, now)
    invoice = inv.replay(invoice_id, events)
    for line in lines:
        added = inv.add_line(invoice, line, codes, now)
        invoice = inv.apply(invoice, added[0])
        events += added
    return _commit(tx, None, invoice_id, events, now)


def update_draft(
    tx: LedgerTransaction,
    invoice_id: UUID,
    header: Header,
    lines: Sequence[InvoiceLine],
    now: datetime,
    *,
    expected_version: int | None = None,
) -> Invoice:
    """Replace a draft's header and lines."""
    before = invoice = load(tx, invoice_id, expected_version)
    _check_replaced(tx, header)
    codes = tx.invoices.tax_codes()
    events: list[InvoiceEvent] = []

    def then(decided: list[InvoiceEvent]) -> None:
        nonlocal invoice
        for event in decided:
            invoice = inv.apply(invoice, event)
        events.extend(decided)

    then(inv.change_header(invoice, header, now))
    while invoice.lines:
        then(inv.remove_line(invoice, len(invoice.lines) - 1, now))
    for line in lines:
        then(inv.add_line(invoice, line, codes, now))
    return _commit(tx, before, invoice_id, events, now)


def discard(
    tx: LedgerTransaction, invoice_id: UUID, now: datetime, *, expected_version: int | None = None
) -> Invoice:
    invoice = load(tx, invoice_id, expected_version)
    return _commit(tx, invoice, invoice_id, inv.discard(invoice, now), now)


def issue(
    tx: LedgerTransaction,
    invoice_id: UUID,
    now: datetime,
    *,
    expected_version: int | None = None,
    new_id: NewId = new_entry_id,
) -> Invoice:
    """Number the invoice, freeze its figures and post its receivable."""
    invoice = load(tx, invoice_id, expected_version)
    settings = _settings(tx)
    codes = tx.invoices.tax_codes()
    year = fiscal_year_of(invoice.header.issue_date or now.date(), settings.fiscal_year_start)
    entry_id = new_id()

    def decide(number: str) -> list[InvoiceEvent]:
        return inv.issue(
            invoice,
            number=number,
            fiscal_year=year.label,
            today=now.date(),
            tax_codes=codes,
            rules=settings.rules,
            entry_id=entry_id,
            at=now,
        )

    events = _numbered(tx, decide, Series.INVOICE, invoice.header.location, year)
    draft = issue_entry(inv.apply(invoice, events[0]), settings.accounts)
    if draft is not None:
        ledger.post_entry(tx, draft, entry_id, now)
    return _commit(tx, invoice, invoice_id, events, now)


def record_payment(
    tx: LedgerTransaction,
    invoice_id: UUID,
    *,
    payment_id: str,
    amount_minor: int,
    received_on: date,
    now: datetime,
    cash_account: UUID | None = None,
    new_id: NewId = new_entry_id,
) -> Invoice:
    invoice = load(tx, invoice_id, None)
    settings = _settings(tx)
    entry_id = new_id()
    events = inv.record_payment(
        invoice,
        payment_id=payment_id,
        amount_minor=amount_minor,
        received_on=received_on,
        entry_id=entry_id,
        at=now,
    )
    share = invoice.allocate(amount_minor)
    cash = cash_account or settings.cash
    draft = payment_entry(invoice, share, cash, settings.accounts, received_on)
    ledger.post_entry(tx, draft, entry_id, now)
    return _commit(tx, invoice, invoice_id, events, now)


def void(
    tx: LedgerTransaction,
    invoice_id: UUID,
    now: datetime,
    *,
    expected_version: int | None = None,
    new_id: NewId = new_entry_id,
) -> Invoice:
    """Reverse the receivable entry and issue a credit note for the full amount; what was
    paid becomes the customer's credit."""
    invoice = load(tx, invoice_id, expected_version)
    settings = _settings(tx)
    entry_id = new_id()

    def decide(number: str) -> list[InvoiceEvent]:
        return inv.void(invoice, credit_note_number=number, entry_id=entry_id, at=now)

    year = fiscal_year_of(now.date(), settings.fiscal_year_start)
    events = _numbered(tx, decide, Series.CREDIT_NOTE, invoice.header.location, year)
    note = _voided(events).credit_note_number
    if invoice.issue_entry_id is not None and invoice.total_minor > 0:
        ledger.reverse_entry(tx, invoice.issue_entry_id, entry_id, now, memo=f"void: {note}")
    settlement = void_settlement_entry(invoice, settings.accounts, now.date())
    if settlement is not None:
        ledger.post_entry(tx, settlement, new_id(), now)
    return _commit(tx, invoice, invoice_id, events, now)


def issue_note(
    tx: LedgerTransaction,
    invoice_id: UUID,
    kind: NoteKind,
    lines: Sequence[InvoiceLine],
    reason: str,
    now: datetime,
    *,
    expected_version: int | None = None,
    new_id: NewId = new_entry_id,
) -> Invoice:
    """A credit or debit note: numbered in its own series, posted, appended."""
    invoice = load(tx, invoice_id, expected_version)
    settings = _settings(tx)
    codes = tx.invoices.tax_codes()
    entry_id = new_id()

    def decide(number: str) -> list[InvoiceEvent]:
        return inv.issue_note(
            invoice, kind, number=number, lines=tuple(lines), reason=reason, tax_codes=codes,
            entry_id=entry_id, at=now,
        )  # fmt: skip

    series = Series.CREDIT_NOTE if kind is NoteKind.CREDIT else Series.DEBIT_NOTE
    year = fiscal_year_of(now.date(), settings.fiscal_year_start)
    events = _numbered(tx, decide, series, invoice.header.location, year)
    issued = events[0]
    if not isinstance(issued, NoteIssued):
        raise InvariantViolation(f"a note of invoice {invoice_id} decided {issued!r}")
    entry = note_entry(invoice, issued.note, settings.accounts)
    if entry is not None:
        ledger.post_entry(tx, entry, entry_id, now)
    return _commit(tx, invoice, invoice_id, events, now)


def write_off(
    tx: LedgerTransaction,
    invoice_id: UUID,
    now: datetime,
    *,
    expected_version: int | None = None,
    new_id: NewId = new_entry_id,
) -> Invoice:
    invoice = load(tx, invoice_id, expected_version)
    settings = _settings(tx)
    entry_id = new_id()
    events = inv.write_off(invoice, entry_id=entry_id, at=now)
    ledger.post_entry(tx, write_off_entry(invoice, settings.accounts, now.date()), entry_id, now)
    return _commit(tx, invoice, invoice_id, events, now)


def aging_report(tx: LedgerTransaction, as_of: date) -> list[AgingRow]:
    return aging(tx.invoices.open_invoices(), as_of)


def vat_return_report(tx: LedgerTransaction, start: date, end: date) -> VatReturn:
    check_period(start, end)  # before reading: a refused period reads nothing
    return vat_return(tx.invoices.invoices_touching(start, end), start, end)


def rebuild_read_model(tx: LedgerTransaction) -> int:
    """Replay every invoice's events into its read model row; the number of invoices."""
    ids = tx.invoices.invoice_ids()
    for invoice_id in ids:
        events = tx.invoices.events(invoice_id)
        # Dated by its last event, as when it was projected live, so a rebuild changes nothing.
        tx.invoices.project(inv.replay(invoice_id, events), events[-1].at)
    return len(ids)


def load(tx: LedgerTransaction, invoice_id: UUID, expected_version: int | None) -> Invoice:
    events = tx.invoices.events(invoice_id)
    if not events:
        raise LedgerRejection(RejectCode.INVOICE_NOT_FOUND, f"invoice {invoice_id} does not exist")
    invoice = inv.replay(invoice_id, events)
    if expected_version is not None and expected_version != invoice.version:
        raise LedgerRejection(
            RejectCode.INVOICE_VERSION_CONFLICT,
            f"invoice {invoice_id} is at version {invoice.version}, not {expected_version}",
            context={"version": str(invoice.version)},
        )
    return invoice


def _commit(
    tx: LedgerTransaction,
    before: Invoice | None,
    invoice_id: UUID,
    events: list[InvoiceEvent],
    now: datetime,
) -> Invoice:
    """Append the events after `before` (None: a new stream) and project the result."""
    if before is None:
        invoice = inv.replay(invoice_id, events)
    else:
        invoice = before
        for event in events:
            invoice = inv.apply(invoice, event)
    tx.invoices.append(invoice_id, 0 if before is None else before.version, events, now)
    tx.invoices.project(invoice, now)
    return invoice


def _numbered(
    tx: LedgerTransaction,
    decide: Callable[[str], list[InvoiceEvent]],
    series: Series,
    location: str,
    year: FiscalYear,
) -> list[InvoiceEvent]:
    """The events `decide` makes under the next number of the series. Decided once without a
    number first: a refused command must not take (or even lock) a number."""
    decide("-")
    counter = tx.invoices.next_number(series, location, year.label)
    return decide(invoice_number(location, year, counter, series))


def _voided(events: list[InvoiceEvent]) -> InvoiceVoided:
    voided = events[0]
    if not isinstance(voided, InvoiceVoided):
        raise InvariantViolation(f"a void decided {voided!r}")
    return voided


def _check_replaced(tx: LedgerTransaction, header: Header) -> None:
    """A replacement names a void invoice of the same tenant."""
    if header.replaces is None:
        return
    replaced = load(tx, header.replaces, None)
    if replaced.status is not InvoiceStatus.VOID:
        raise LedgerRejection(
            RejectCode.INVALID_INVOICE,
            f"invoice {replaced.id} is {replaced.status.value}: only a void invoice can be"
            " replaced",
        )


def _settings(tx: LedgerTransaction) -> InvoiceSettings:
    settings = tx.invoices.settings()
    if settings is None:
        raise LedgerRejection(
            RejectCode.INVALID_INVOICE,
            "invoicing is not configured for this tenant: set its accounts first",
        )
    return settings
