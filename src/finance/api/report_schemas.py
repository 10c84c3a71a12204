"""The aging and VAT return reports as JSON (pydantic) and CSV, shared by the API and the CLI
so that both print the same figures the same way."""

from __future__ import annotations

import csv
import io
from datetime import date

from pydantic import BaseModel

from finance.domain.invoicing.reports import BUCKETS, AgingRow, RateKey, RateTotals, VatReturn
from finance.domain.invoicing.tax import Supply


class AgingRowOut(BaseModel):
    customer: str
    currency: str
    invoices: int
    current_minor: int
    days_1_30_minor: int
    days_31_60_minor: int
    days_61_90_minor: int
    over_90_minor: int
    total_minor: int

    @classmethod
    def of(cls, row: AgingRow) -> AgingRowOut:
        b = row.buckets
        return cls(
            customer=row.customer,
            currency=row.currency,
            invoices=row.invoices,
            current_minor=b["current"],
            days_1_30_minor=b["1_30"],
            days_31_60_minor=b["31_60"],
            days_61_90_minor=b["61_90"],
            over_90_minor=b["over_90"],
            total_minor=row.total_minor,
        )


class AgingOut(BaseModel):
    as_of: date
    buckets: list[str]
    data: list[AgingRowOut]

    @classmethod
    def of(cls, as_of: date, rows: list[AgingRow]) -> AgingOut:
        return cls(as_of=as_of, buckets=list(BUCKETS), data=[AgingRowOut.of(r) for r in rows])


class VatLineOut(BaseModel):
    kind: str  # "output", "credit_note" or "debit_note"
    currency: str
    supply: Supply
    vat_rate: str
    sd_rate: str
    lines: int
    value_minor: int
    sd_minor: int
    vat_minor: int

    @classmethod
    def of(cls, kind: str, key: RateKey, totals: RateTotals) -> VatLineOut:
        return cls(
            kind=kind,
            currency=key.currency,
            supply=key.supply,
            vat_rate=key.vat,
            sd_rate=key.sd,
            lines=totals.lines,
            value_minor=totals.value_minor,
            sd_minor=totals.sd_minor,
            vat_minor=totals.vat_minor,
        )


class VatNetOut(BaseModel):
    currency: str
    sd_payable_minor: int
    vat_payable_minor: int


class VatReturnOut(BaseModel):
    start: date
    end: date
    invoices_issued: int
    credit_notes_issued: int
    debit_notes_issued: int
    data: list[VatLineOut]
    net: list[VatNetOut]

    @classmethod
    def of(cls, report: VatReturn) -> VatReturnOut:
        lines = [
            VatLineOut.of(kind, key, totals)
            for kind, part in (
                ("output", report.output),
                ("credit_note", report.credit_notes),
                ("debit_note", report.debit_notes),
            )
            for key, totals in sorted(part.items(), key=lambda item: _order(item[0]))
        ]
        currencies = sorted({line.currency for line in lines})
        net = [
            VatNetOut(currency=c, sd_payable_minor=sd, vat_payable_minor=vat)
            for c in currencies
            for sd, vat in [report.net(c)]
        ]
        return cls(
            start=report.start,
            end=report.end,
            invoices_issued=report.invoices_issued,
            credit_notes_issued=report.credit_notes_issued,
            debit_notes_issued=report.debit_notes_issued,
            data=lines,
            net=net,
        )


def _order(key: RateKey) -> tuple[str, str, str, str]:
    return key.currency, key.supply.value, key.vat, key.sd


def rows_csv(rows: list[BaseModel]) -> str:
    """The rows as CSV with a header line (no rows: the header alone is not knowable, so an
    empty string)."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0].model_dump()), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.model_dump(mode="json"))
    return out.getvalue()
