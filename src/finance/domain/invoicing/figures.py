"""The exact figures of an invoice's lines and totals, in integer minor units.

Rounding rule (one rule, everywhere): every amount is rounded to a whole minor unit **per line,
half up** (half away from zero: 0.5 -> 1), and an invoice's totals are the sums of its lines'
rounded figures, so totals always equal the sum of the lines. Per line:

* gross = quantity x unit price; a percentage discount is a percentage of the gross;
  value = gross - discount (the value of the supply);
* prices without tax: SD = value x SD rate, VAT = (value + SD) x VAT rate (Bangladesh charges
  SD before VAT, and VAT on the value plus SD); total = value + SD + VAT;
* prices with tax: the price paid is the total, and the taxes are peeled off from the outside
  in: VAT = total x v / (1 + v), then SD = rest x s / (1 + s) of the rest = total - VAT, and the
  value is what remains. So the total is exactly the price charged; a peeled levy differs from
  its rate applied to its base by at most (1 + rate) / 2 minor units, the rounding of the peeled
  amount (without tax, at most half a minor unit).

A specific levy (an amount per unit) is that amount times the quantity, rounded the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.domain.invoicing.tax import Levy, Supply, TaxCode, TaxRate
from finance.domain.money import AMOUNT_MINOR_MAX

QUANTITY_PLACES_MAX = 6
QUANTITY_MAX = Decimal(1_000_000_000)
LINES_PER_INVOICE_MAX = 500
# Enough digits for a bigint amount times the largest quantity, with room for the division of
# a tax-inclusive price, so that rounding happens only where the rule says.
_PRECISION = 80
_HUNDRED = Decimal(100)


def _invalid(detail: str) -> LedgerRejection:
    return LedgerRejection(RejectCode.INVALID_INVOICE_LINE, detail)


def round_minor(amount: Decimal) -> int:
    """Half up to a whole minor unit, the one rounding of invoice figures."""
    return int(amount.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class LineInput:
    quantity: Decimal
    unit_price_minor: int
    # An amount off the line, or a percentage of its gross (not both).
    discount_minor: int = 0
    discount_percent: Decimal | None = None


@dataclass(frozen=True)
class LineFigures:
    gross_minor: int
    discount_minor: int
    value_minor: int
    sd_minor: int
    vat_minor: int
    total_minor: int
    supply: Supply
    rate: TaxRate


@dataclass(frozen=True)
class InvoiceFigures:
    lines: tuple[LineFigures, ...]
    gross_minor: int
    discount_minor: int
    value_minor: int
    sd_minor: int
    vat_minor: int
    total_minor: int


def line_figures(
    line: LineInput, code: TaxCode, day: date, *, prices_include_tax: bool
) -> LineFigures:
    """The figures of one line under the rate of `code` in force on `day`."""
    _check_line(line)
    rate = code.rate_on(day)
    with localcontext(prec=_PRECISION):
        gross = round_minor(line.quantity * line.unit_price_minor)
        if line.discount_percent is not None:
            discount = round_minor(gross * line.discount_percent / _HUNDRED)
        else:
            discount = line.discount_minor
        if discount > gross:
            raise _invalid(f"the discount ({discount}) is more than the line's amount ({gross})")
        if prices_include_tax:
            value, sd, vat = _peel_taxes(gross - discount, rate, line.quantity)
        else:
            value, sd, vat = _add_taxes(gross - discount, rate, line.quantity)
    figures = LineFigures(gross, discount, value, sd, vat, value + sd + vat, code.supply, rate)
    _check_fits(figures.gross_minor, "the line's amount")
    _check_fits(figures.total_minor, "the line's total")
    return figures


def _add_taxes(value: int, rate: TaxRate, quantity: Decimal) -> tuple[int, int, int]:
    sd = _levy_on(rate.sd, value, quantity)
    vat = _levy_on(rate.vat, value + sd, quantity)
    return value, sd, vat


def _levy_on(levy: Levy | None, base: int, quantity: Decimal) -> int:
    if levy is None:
        return 0
    if levy.percent is not None:
        return round_minor(base * levy.percent / _HUNDRED)
    return round_minor(quantity * _per_unit_minor(levy))


def _peel_taxes(total: int, rate: TaxRate, quantity: Decimal) -> tuple[int, int, int]:
    vat = _levy_within(rate.vat, total, quantity, "VAT")
    rest = total - vat
    sd = _levy_within(rate.sd, rest, quantity, "SD")
    return rest - sd, sd, vat


def _levy_within(levy: Levy | None, amount: int, quantity: Decimal, name: str) -> int:
    """The part of `amount` (which includes the levy) that is the levy."""
    if levy is None:
        return 0
    if levy.percent is not None:
        return round_minor(amount * levy.percent / (_HUNDRED + levy.percent))
    part = round_minor(quantity * _per_unit_minor(levy))
    if part > amount:
        raise _invalid(f"a tax-inclusive price of {amount} cannot include {name} of {part}")
    return part


def _per_unit_minor(levy: Levy) -> int:
    if levy.per_unit_minor is None:  # Levy's constructor makes it a percentage or this
        raise InvariantViolation(f"a levy with neither a percentage nor an amount: {levy}")
    return levy.per_unit_minor


def _check_line(line: LineInput) -> None:
    quantity = line.quantity
    if not isinstance(quantity, Decimal) or not quantity.is_finite():
        raise _invalid("a quantity is a finite decimal number")
    if quantity <= 0 or quantity > QUANTITY_MAX:
        raise _invalid(f"a quantity is more than 0 and at most {QUANTITY_MAX}")
    exponent = quantity.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > QUANTITY_PLACES_MAX:
        raise _invalid(f"a quantity has at most {QUANTITY_PLACES_MAX} decimal places")
    _check_minor(line.unit_price_minor, "a unit price")
    _check_minor(line.discount_minor, "a discount")
    if line.discount_percent is not None:
        if line.discount_minor:
            raise _invalid("give a discount as an amount or as a percentage, not both")
        percent = line.discount_percent
        if not isinstance(percent, Decimal) or not percent.is_finite() or not 0 <= percent <= 100:
            raise _invalid("a discount percentage is between 0 and 100")


def _check_minor(amount: int, what: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise _invalid(f"{what} is an integer of minor units")
    if not 0 <= amount <= AMOUNT_MINOR_MAX:
        raise _invalid(f"{what} is between 0 and {AMOUNT_MINOR_MAX} minor units")


def _check_fits(amount: int, what: str) -> None:
    if amount > AMOUNT_MINOR_MAX:
        raise _invalid(f"{what} is more than {AMOUNT_MINOR_MAX} minor units")


def invoice_figures(lines: Sequence[LineFigures]) -> InvoiceFigures:
    """Totals as the sums of the lines' rounded figures."""
    if not 1 <= len(lines) <= LINES_PER_INVOICE_MAX:
        raise _invalid(f"an invoice has 1 to {LINES_PER_INVOICE_MAX} lines")
    figures = InvoiceFigures(
        lines=tuple(lines),
        gross_minor=sum(line.gross_minor for line in lines),
        discount_minor=sum(line.discount_minor for line in lines),
        value_minor=sum(line.value_minor for line in lines),
        sd_minor=sum(line.sd_minor for line in lines),
        vat_minor=sum(line.vat_minor for line in lines),
        total_minor=sum(line.total_minor for line in lines),
    )
    _check_fits(figures.total_minor, "the invoice's total")
    _check_fits(figures.gross_minor, "the invoice's amount")
    return figures
