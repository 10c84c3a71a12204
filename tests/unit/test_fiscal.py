"""Financial years (Bangladesh: July to June) and gap-free invoice numbers' format."""

from __future__ import annotations

from datetime import date

import pytest

from finance.domain.errors import LedgerRejection
from finance.domain.invoicing.fiscal import (
    BANGLADESH,
    FiscalYearStart,
    fiscal_year_of,
    invoice_number,
)


@pytest.mark.parametrize(
    ("day", "label", "first", "last"),
    [
        (date(2025, 7, 1), "2025-26", date(2025, 7, 1), date(2026, 6, 30)),
        (date(2026, 6, 30), "2025-26", date(2025, 7, 1), date(2026, 6, 30)),
        (date(2026, 7, 1), "2026-27", date(2026, 7, 1), date(2027, 6, 30)),
        (date(2000, 1, 15), "1999-00", date(1999, 7, 1), date(2000, 6, 30)),
    ],
)
def test_the_bangladesh_year_runs_july_to_june(
    day: date, label: str, first: date, last: date
) -> None:
    year = fiscal_year_of(day, BANGLADESH)
    assert (year.label, year.first_day, year.last_day) == (label, first, last)
    assert day in year


def test_a_calendar_year_is_labelled_by_its_year() -> None:
    year = fiscal_year_of(date(2024, 2, 29), FiscalYearStart())
    assert (year.label, year.first_day, year.last_day) == (
        "2024",
        date(2024, 1, 1),
        date(2024, 12, 31),
    )


@pytest.mark.parametrize(("month", "day"), [(2, 29), (13, 1), (4, 31), (0, 1)])
def test_a_year_cannot_start_on_a_day_that_is_not_every_year(month: int, day: int) -> None:
    with pytest.raises(LedgerRejection):
        FiscalYearStart(month, day)


def test_invoice_numbers_name_location_year_and_counter() -> None:
    year = fiscal_year_of(date(2025, 12, 1), BANGLADESH)
    assert invoice_number("DHK-1", year, 42) == "DHK-1/2025-26/000042"
    for location, number in (("dhk", 1), ("", 1), ("A/B", 1), ("DHK", 0)):
        with pytest.raises(LedgerRejection):
            invoice_number(location, year, number)
