"""Financial years and invoice numbers.

A tenant's financial year starts on a configurable month and day: Bangladesh's runs from 1 July
to 30 June, so 2025-07-01 .. 2026-06-30 is "2025-26"; a calendar year is labelled by its year
alone. Invoice numbers are gap-free per tenant, seller location and financial year: the counter
lives in the database; this module only names the year and formats the number.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, timedelta

from finance.domain.errors import LedgerRejection, RejectCode

LOCATION_CHARS_MAX = 32
INVOICE_NUMBER_DIGITS = 6
_LOCATION = re.compile(rf"[A-Z0-9][A-Z0-9-]{{0,{LOCATION_CHARS_MAX - 1}}}")


@dataclass(frozen=True)
class FiscalYearStart:
    month: int = 1
    day: int = 1

    def __post_init__(self) -> None:
        try:
            # 2001 is not a leap year: a year cannot start on 29 February.
            date(2001, self.month, self.day)
        except (TypeError, ValueError) as exc:
            raise LedgerRejection(
                RejectCode.VALIDATION_FAILED,
                f"a financial year starts on a valid month and day, got {self.month}-{self.day}",
            ) from exc


BANGLADESH = FiscalYearStart(month=7, day=1)


@dataclass(frozen=True)
class FiscalYear:
    first_day: date
    last_day: date

    @property
    def label(self) -> str:
        """'2025' for a calendar year, '2025-26' for one that spans two."""
        if self.first_day.year == self.last_day.year:
            return str(self.first_day.year)
        return f"{self.first_day.year}-{self.last_day.year % 100:02d}"

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first_day <= day <= self.last_day


def fiscal_year_of(day: date, start: FiscalYearStart) -> FiscalYear:
    """The financial year that `day` falls in."""
    this_year = date(day.year, start.month, start.day)
    first = this_year if day >= this_year else date(day.year - 1, start.month, start.day)
    last = date(first.year + 1, start.month, start.day) - timedelta(days=1)
    return FiscalYear(first, last)


def check_location(location: str) -> str:
    """A seller location's code as it appears in invoice numbers (a branch, a shop, a unit)."""
    if not isinstance(location, str) or not _LOCATION.fullmatch(location):
        raise LedgerRejection(
            RejectCode.VALIDATION_FAILED,
            f"a seller location is 1 to {LOCATION_CHARS_MAX} capital letters, digits or '-'",
        )
    return location


class Series(enum.StrEnum):
    """Each kind of document is numbered on its own; notes carry a prefix."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    DEBIT_NOTE = "debit_note"


_PREFIX = {Series.INVOICE: "", Series.CREDIT_NOTE: "CN/", Series.DEBIT_NOTE: "DN/"}


def invoice_number(
    location: str, year: FiscalYear, number: int, series: Series = Series.INVOICE
) -> str:
    """'DHK-1/2025-26/000042' (a credit note: 'CN/DHK-1/2025-26/000003'): location, financial
    year, then the gap-free counter of the series."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise LedgerRejection(RejectCode.VALIDATION_FAILED, "invoice numbers start at 1")
    location = check_location(location)
    return f"{_PREFIX[series]}{location}/{year.label}/{number:0{INVOICE_NUMBER_DIGITS}d}"
