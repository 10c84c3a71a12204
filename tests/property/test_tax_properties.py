"""Invoice figures for any line: exact totals, non-negative parts, levies within their
rounding of the rate (domain/invoicing/figures.py states the rule)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from finance.domain.errors import LedgerRejection
from finance.domain.invoicing.figures import (
    LineFigures,
    LineInput,
    invoice_figures,
    line_figures,
    round_minor,
)
from finance.domain.invoicing.tax import Levy, Supply, TaxCode, TaxRate

DAY = date(2025, 9, 1)
percent = st.decimals(min_value=0, max_value=500, places=2)
levies = st.one_of(
    st.none(),
    percent.map(lambda p: Levy(percent=p)),
    st.integers(0, 10_000).map(lambda n: Levy(per_unit_minor=n)),
)
codes = st.builds(
    lambda vat, sd: TaxCode("T", "t", Supply.TAXABLE, (TaxRate(date(2019, 7, 1), vat, sd),)),
    vat=percent.map(lambda p: Levy(percent=p))
    | st.integers(0, 10_000).map(lambda n: Levy(per_unit_minor=n)),
    sd=levies,
)
lines = st.builds(
    LineInput,
    quantity=st.decimals(min_value=Decimal("0.001"), max_value=10_000, places=3),
    unit_price_minor=st.integers(0, 10**9),
    discount_percent=st.one_of(st.none(), st.decimals(min_value=0, max_value=100, places=2)),
)


def parts_are_sane(f: LineFigures) -> None:
    assert min(f.gross_minor, f.discount_minor, f.value_minor, f.sd_minor, f.vat_minor) >= 0
    assert f.total_minor == f.value_minor + f.sd_minor + f.vat_minor
    assert f.gross_minor - f.discount_minor >= 0


@given(lines, codes)
def test_without_tax_each_levy_is_its_rate_rounded_half_up(line: LineInput, code: TaxCode) -> None:
    f = line_figures(line, code, DAY, prices_include_tax=False)
    parts_are_sane(f)
    assert f.value_minor == f.gross_minor - f.discount_minor
    rate = code.rate_on(DAY)
    for levy, base, amount in (
        (rate.sd, f.value_minor, f.sd_minor),
        (rate.vat, f.value_minor + f.sd_minor, f.vat_minor),
    ):
        if levy is None:
            assert amount == 0
        elif levy.percent is not None:
            assert amount == round_minor(base * levy.percent / 100)
        else:
            assert amount == round_minor(line.quantity * (levy.per_unit_minor or 0))


@given(lines, codes)
def test_with_tax_the_total_is_the_price_and_levies_are_within_rounding(
    line: LineInput, code: TaxCode
) -> None:
    rejection: LedgerRejection | None
    try:
        f = line_figures(line, code, DAY, prices_include_tax=True)
    except LedgerRejection as refused:  # a specific levy above the price, and nothing else
        rejection = refused
    else:
        rejection = None
    if rejection is not None:
        assert "cannot include" in rejection.detail
        return
    parts_are_sane(f)
    assert f.total_minor == f.gross_minor - f.discount_minor
    rate = code.rate_on(DAY)
    if rate.vat is not None and rate.vat.percent is not None:
        v = rate.vat.percent / 100
        assert abs(f.vat_minor - (f.value_minor + f.sd_minor) * v) <= (1 + v) / 2
    if rate.sd is not None and rate.sd.percent is not None:
        s = rate.sd.percent / 100
        assert abs(f.sd_minor - f.value_minor * s) <= (1 + s) / 2


@given(st.lists(st.tuples(lines, codes, st.booleans()), min_size=1, max_size=20))
def test_invoice_totals_equal_the_sum_of_lines(
    items: list[tuple[LineInput, TaxCode, bool]],
) -> None:
    figures = []
    for line, code, inclusive in items:
        try:
            figures.append(line_figures(line, code, DAY, prices_include_tax=inclusive))
        except LedgerRejection:  # refused lines are the other tests' business
            continue
    if not figures:
        return
    totals = invoice_figures(figures)
    for name in (
        "gross_minor",
        "discount_minor",
        "value_minor",
        "sd_minor",
        "vat_minor",
        "total_minor",
    ):
        assert getattr(totals, name) == sum(getattr(f, name) for f in figures)
    assert totals.total_minor == totals.value_minor + totals.sd_minor + totals.vat_minor
