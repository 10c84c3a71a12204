"""Worked examples of invoice line figures, exact to the minor unit (BDT: 2 decimals, so
100000 minor units are 1,000.00 BDT)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.invoicing.figures import (
    LineInput,
    invoice_figures,
    line_figures,
    round_minor,
)
from finance.domain.invoicing.tax import Levy, Supply, TaxCode, TaxRate

DAY = date(2025, 9, 1)
VAT15 = TaxCode(
    "VAT15", "Standard VAT", Supply.TAXABLE, (TaxRate(date(2019, 7, 1), Levy(Decimal(15))),)
)
VAT15_SD20 = TaxCode(
    "VAT15-SD20",
    "VAT with 20 % SD",
    Supply.TAXABLE,
    (TaxRate(date(2019, 7, 1), vat=Levy(Decimal(15)), sd=Levy(Decimal(20))),),
)
ZERO = TaxCode(
    "EXPORT", "Export", Supply.ZERO_RATED, (TaxRate(date(2019, 7, 1), Levy(Decimal(0))),)
)
EXEMPT = TaxCode("EXEMPT", "Exempt", Supply.EXEMPT, (TaxRate(date(2019, 7, 1), None),))


def figures_of(line: LineInput, code: TaxCode, *, inclusive: bool = False) -> tuple[int, ...]:
    f = line_figures(line, code, DAY, prices_include_tax=inclusive)
    return f.gross_minor, f.discount_minor, f.value_minor, f.sd_minor, f.vat_minor, f.total_minor


def test_vat_with_sd_and_a_discount() -> None:
    # 3 x 1,000.00 = 3,000.00; 10 % off: 2,700.00; SD 20 %: 540.00;
    # VAT 15 % of (2,700.00 + 540.00) = 486.00; total 3,726.00.
    line = LineInput(Decimal(3), 100_000, discount_percent=Decimal(10))
    assert figures_of(line, VAT15_SD20) == (300_000, 30_000, 270_000, 54_000, 48_600, 372_600)


def test_an_amount_discount() -> None:
    line = LineInput(Decimal(2), 50_000, discount_minor=5_000)
    assert figures_of(line, VAT15) == (100_000, 5_000, 95_000, 0, 14_250, 109_250)


@pytest.mark.parametrize(
    ("quantity", "price", "vat"),
    [
        ("1", 10, 2),  # 1.50 -> 2: half up
        ("1", 3, 0),  # 0.45 -> 0
        ("1", 30, 5),  # 4.50 -> 5
        ("1.5", 333, 75),  # 499.5 -> 500, then 75.00 exactly
        ("0.333", 100, 5),  # 33.3 -> 33, 4.95 -> 5
    ],
)
def test_each_line_rounds_half_up(quantity: str, price: int, vat: int) -> None:
    figures = line_figures(
        LineInput(Decimal(quantity), price), VAT15, DAY, prices_include_tax=False
    )
    assert figures.vat_minor == vat
    assert figures.total_minor == figures.value_minor + vat


def test_round_half_up_is_away_from_zero_at_the_half() -> None:
    assert [round_minor(Decimal(x)) for x in ("0.5", "1.5", "2.5", "2.4999", "-0.5")] == [
        1,
        2,
        3,
        2,
        -1,
    ]


def test_tax_inclusive_prices_peel_vat_then_sd() -> None:
    # 1,380.00 paid: VAT = 1,380 x 15/115 = 180.00; rest 1,200.00; SD = 1,200 x 20/120 =
    # 200.00; value 1,000.00.
    line = LineInput(Decimal(1), 138_000)
    assert figures_of(line, VAT15_SD20, inclusive=True) == (
        138_000,
        0,
        100_000,
        20_000,
        18_000,
        138_000,
    )


def test_a_tax_inclusive_total_is_the_price_charged_even_when_rounding() -> None:
    line = LineInput(Decimal(7), 1_001, discount_minor=13)  # 6,994 paid
    f = line_figures(line, VAT15_SD20, DAY, prices_include_tax=True)
    assert f.total_minor == 6_994
    assert f.vat_minor == round_minor(Decimal(6_994) * 15 / 115)  # 912.26 -> 912
    assert f.sd_minor == round_minor(Decimal(6_994 - 912) * 20 / 120)  # 1013.67 -> 1014
    assert f.value_minor == 6_994 - 912 - 1_014


def test_a_specific_sd_per_unit() -> None:
    code = TaxCode(
        "CIG",
        "SD per unit",
        Supply.TAXABLE,
        (TaxRate(date(2019, 7, 1), vat=Levy(Decimal(15)), sd=Levy(per_unit_minor=50)),),
    )
    # 10 x 10.00 = 100.00; SD 10 x 0.50 = 5.00; VAT 15 % of 105.00 = 15.75; total 120.75.
    assert figures_of(LineInput(Decimal(10), 1_000), code) == (
        10_000,
        0,
        10_000,
        500,
        1_575,
        12_075,
    )
    # Inclusive: 120.75 paid (10 x 12.08, 0.05 off) gives the same split.
    paid = LineInput(Decimal(10), 1_208, discount_minor=5)
    assert figures_of(paid, code, inclusive=True)[2:] == (
        10_000,
        500,
        1_575,
        12_075,
    )


def test_zero_rated_and_exempt_supplies_bear_no_vat() -> None:
    line = LineInput(Decimal(4), 2_500)
    assert figures_of(line, ZERO) == (10_000, 0, 10_000, 0, 0, 10_000)
    assert figures_of(line, EXEMPT) == (10_000, 0, 10_000, 0, 0, 10_000)
    assert line_figures(line, EXEMPT, DAY, prices_include_tax=True).vat_minor == 0


def test_the_rate_in_force_on_the_day_applies() -> None:
    code = TaxCode(
        "RED",
        "Reduced",
        Supply.TAXABLE,
        (
            TaxRate(date(2019, 7, 1), Levy(Decimal("7.5"))),
            TaxRate(date(2024, 7, 1), Levy(Decimal(10))),
        ),
        withdrawn_on=date(2026, 7, 1),
    )
    line = LineInput(Decimal(1), 10_000)
    for day, vat in ((date(2024, 6, 30), 750), (date(2024, 7, 1), 1_000)):
        assert line_figures(line, code, day, prices_include_tax=False).vat_minor == vat
    for day in (date(2019, 6, 30), date(2026, 7, 1)):
        with pytest.raises(LedgerRejection) as refused:
            line_figures(line, code, day, prices_include_tax=False)
        assert refused.value.code is RejectCode.TAX_RATE_NOT_IN_FORCE


def test_invoice_totals_are_the_sums_of_the_lines() -> None:
    lines = [
        line_figures(
            LineInput(Decimal(3), 100_000, discount_percent=Decimal(10)),
            VAT15_SD20,
            DAY,
            prices_include_tax=False,
        ),
        line_figures(LineInput(Decimal("1.5"), 333), VAT15, DAY, prices_include_tax=False),
        line_figures(LineInput(Decimal(4), 2_500), EXEMPT, DAY, prices_include_tax=False),
    ]
    totals = invoice_figures(lines)
    assert (totals.value_minor, totals.sd_minor, totals.vat_minor, totals.total_minor) == (
        270_000 + 500 + 10_000,
        54_000,
        48_600 + 75,
        372_600 + 575 + 10_000,
    )


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        (LineInput(Decimal(0), 100), "quantity"),
        (LineInput(Decimal(-1), 100), "quantity"),
        (LineInput(Decimal("0.0000001"), 100), "decimal places"),
        (LineInput(Decimal("NaN"), 100), "finite"),
        (LineInput(Decimal(1), -1), "unit price"),
        (LineInput(Decimal(1), 100, discount_minor=101), "more than the line"),
        (LineInput(Decimal(1), 100, discount_minor=1, discount_percent=Decimal(1)), "not both"),
        (LineInput(Decimal(1), 100, discount_percent=Decimal(101)), "percentage"),
        (LineInput(Decimal(1_000_000_000), 2**62), "more than"),
    ],
)
def test_bad_lines_are_refused_with_a_reason(line: LineInput, detail: str) -> None:
    with pytest.raises(LedgerRejection) as refused:
        line_figures(line, VAT15, DAY, prices_include_tax=False)
    assert refused.value.code is RejectCode.INVALID_INVOICE_LINE
    assert detail in refused.value.detail


def test_an_inclusive_price_must_cover_a_specific_levy() -> None:
    code = TaxCode(
        "SPEC",
        "Per unit VAT",
        Supply.TAXABLE,
        (TaxRate(date(2019, 7, 1), Levy(per_unit_minor=100)),),
    )
    with pytest.raises(LedgerRejection) as refused:
        line_figures(LineInput(Decimal(2), 99), code, DAY, prices_include_tax=True)
    assert refused.value.code is RejectCode.INVALID_INVOICE_LINE


@pytest.mark.parametrize(
    "make",
    [
        lambda: Levy(),
        lambda: Levy(Decimal(15), 10),
        lambda: Levy(Decimal(-1)),
        lambda: Levy(Decimal("1001")),
        lambda: Levy(Decimal("7.12345")),
        lambda: Levy(per_unit_minor=-5),
        lambda: TaxCode("VAT", "x", Supply.EXEMPT, (TaxRate(DAY, Levy(Decimal(15))),)),
        lambda: TaxCode("VAT", "x", Supply.ZERO_RATED, (TaxRate(DAY, Levy(Decimal(5))),)),
        lambda: TaxCode("VAT", "x", Supply.TAXABLE, (TaxRate(DAY, None),)),
        lambda: TaxCode("VAT", "x", Supply.TAXABLE, ()),
        lambda: TaxCode("bad code!", "x", Supply.TAXABLE, (TaxRate(DAY, Levy(Decimal(1))),)),
        lambda: TaxCode(
            "VAT",
            "x",
            Supply.TAXABLE,
            (TaxRate(DAY, Levy(Decimal(1))), TaxRate(DAY, Levy(Decimal(2)))),
        ),
    ],
)
def test_bad_tax_configuration_is_refused(make: object) -> None:
    with pytest.raises(LedgerRejection) as refused:
        make()  # type: ignore[operator]
    assert refused.value.code is RejectCode.INVALID_TAX_CODE
