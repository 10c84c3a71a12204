"""Receivables aging and the VAT return summary, computed from invoices (pure).

Aging: what each customer still owes on issued invoices, by how long past its due date it is on
the report's date: current (not yet due), 1-30, 31-60, 61-90 and over 90 days. Amounts are what
is outstanding now; the report's date only decides the buckets.

VAT return (what a Mushak-9.1 return needs): for a period, the output taxes of the invoices
issued in it, summed per kind of supply and rate (value, SD, VAT), and the adjustments of the
credit and debit notes issued in it (a void's credit note takes back its invoice's figures; a
credit note takes back its own figures, a debit note adds its own).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.invoicing.figures import InvoiceFigures
from finance.domain.invoicing.invoice import Invoice, InvoiceStatus, NoteKind
from finance.domain.invoicing.tax import Levy, Supply

BUCKETS = ("current", "1_30", "31_60", "61_90", "over_90")
PERIOD_DAYS_MAX = 366 * 5


def bucket_of(due: date, as_of: date) -> str:
    overdue = (as_of - due).days
    if overdue <= 0:
        return "current"
    if overdue <= 30:
        return "1_30"
    if overdue <= 60:
        return "31_60"
    if overdue <= 90:
        return "61_90"
    return "over_90"


@dataclass
class AgingRow:
    customer: str
    currency: str
    buckets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))
    invoices: int = 0

    @property
    def total_minor(self) -> int:
        return sum(self.buckets.values())


def aging(invoices: Iterable[Invoice], as_of: date) -> list[AgingRow]:
    """One row per customer and currency, sorted; only invoices that still owe something."""
    rows: dict[tuple[str, str], AgingRow] = {}
    for invoice in invoices:
        if invoice.status is not InvoiceStatus.OPEN or invoice.outstanding_minor <= 0:
            continue
        if invoice.due_date is None:
            continue
        name, currency = invoice.header.customer.name, invoice.header.currency
        row = rows.setdefault((name, currency), AgingRow(name, currency))
        row.buckets[bucket_of(invoice.due_date, as_of)] += invoice.outstanding_minor
        row.invoices += 1
    return [rows[k] for k in sorted(rows)]


@dataclass(frozen=True)
class RateKey:
    currency: str
    supply: Supply
    vat: str
    sd: str


@dataclass
class RateTotals:
    value_minor: int = 0
    sd_minor: int = 0
    vat_minor: int = 0
    lines: int = 0

    def add(self, value: int, sd: int, vat: int, sign: int) -> None:
        self.value_minor += sign * value
        self.sd_minor += sign * sd
        self.vat_minor += sign * vat
        self.lines += 1


@dataclass(frozen=True)
class VatReturn:
    start: date
    end: date
    output: dict[RateKey, RateTotals]
    credit_notes: dict[RateKey, RateTotals]
    debit_notes: dict[RateKey, RateTotals]
    invoices_issued: int
    credit_notes_issued: int
    debit_notes_issued: int

    def net(self, currency: str) -> tuple[int, int]:
        """SD and VAT payable for the period in `currency`, after the adjustments."""
        sd = vat = 0
        for part in (self.output, self.credit_notes, self.debit_notes):
            for key, totals in part.items():
                if key.currency == currency:
                    sd += totals.sd_minor
                    vat += totals.vat_minor
        return sd, vat


def levy_label(levy: Levy | None) -> str:
    if levy is None:
        return "none"
    return levy.describe()


def vat_return(invoices: Sequence[Invoice], start: date, end: date) -> VatReturn:
    check_period(start, end)
    output: dict[RateKey, RateTotals] = defaultdict(RateTotals)
    credits: dict[RateKey, RateTotals] = defaultdict(RateTotals)
    debits: dict[RateKey, RateTotals] = defaultdict(RateTotals)
    counts = {"issued": 0, "credit": 0, "debit": 0}

    def within(day: date) -> bool:
        return start <= day <= end

    for invoice in invoices:
        if invoice.figures is None or invoice.issue_date is None:
            continue
        currency = invoice.header.currency
        if within(invoice.issue_date):
            counts["issued"] += 1
            _add_lines(output, currency, invoice.figures, 1)
        if invoice.voided_at is not None and within(invoice.voided_at.date()):
            counts["credit"] += 1
            _add_lines(credits, currency, invoice.figures, -1)
        for note in invoice.notes:
            if within(note.at.date()):
                credit = note.kind is NoteKind.CREDIT
                counts["credit" if credit else "debit"] += 1
                _add_lines(
                    credits if credit else debits, currency, note.figures, -1 if credit else 1
                )
    return VatReturn(
        start, end, dict(output), dict(credits), dict(debits),
        counts["issued"], counts["credit"], counts["debit"],
    )  # fmt: skip


def _add_lines(
    into: dict[RateKey, RateTotals], currency: str, figures: InvoiceFigures, sign: int
) -> None:
    for line in figures.lines:
        vat, sd = levy_label(line.rate.vat), levy_label(line.rate.sd)
        into[RateKey(currency, line.supply, vat, sd)].add(
            line.value_minor, line.sd_minor, line.vat_minor, sign
        )


def check_period(start: date, end: date) -> None:
    if end < start:
        raise LedgerRejection(RejectCode.VALIDATION_FAILED, "the period ends before it starts")
    if (end - start).days > PERIOD_DAYS_MAX:
        raise LedgerRejection(
            RejectCode.VALIDATION_FAILED, f"a period is at most {PERIOD_DAYS_MAX} days"
        )
