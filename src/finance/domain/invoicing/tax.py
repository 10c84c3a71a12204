"""Tax codes with dated rates: what VAT and supplementary duty (SD) a line of an invoice bears.

Rates are configuration, never constants in code: a tax code carries every rate it ever had,
each from the date it came into force, and an invoice takes the rate in force on its issue date.
A levy is either a percentage of its base or a specific amount per unit of quantity (Bangladesh
charges SD on some goods per unit, e.g. per thousand cigarette sticks).

The kind of supply decides what VAT means: a taxable supply bears its VAT levy; a zero-rated
supply bears VAT at 0 % (a taxable supply, which a VAT return reports apart from exempt ones);
an exempt supply bears no VAT at all. SD is independent of that.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.money import AMOUNT_MINOR_MAX

TAX_CODE_CHARS_MAX = 32
RATES_PER_CODE_MAX = 100
# A percentage has at most 4 decimal places (7.5 %, 2.4375 %) and is at most 1000 % (Bangladesh
# levies SD of up to 500 % on some goods).
PERCENT_PLACES_MAX = 4
PERCENT_MAX = Decimal(1000)

_CODE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{TAX_CODE_CHARS_MAX - 1}}}")


def _invalid(detail: str) -> LedgerRejection:
    return LedgerRejection(RejectCode.INVALID_TAX_CODE, detail)


class Supply(enum.StrEnum):
    TAXABLE = "taxable"
    ZERO_RATED = "zero_rated"
    EXEMPT = "exempt"


@dataclass(frozen=True)
class Levy:
    """A percentage of the base, or an amount per unit of quantity (exactly one)."""

    percent: Decimal | None = None
    per_unit_minor: int | None = None

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.per_unit_minor is None):
            raise _invalid("a levy is either a percentage or an amount per unit")
        if self.percent is not None:
            _check_percent(self.percent)
        if self.per_unit_minor is not None:
            _check_per_unit(self.per_unit_minor)

    @property
    def is_percentage(self) -> bool:
        return self.percent is not None

    def describe(self) -> str:
        if self.percent is not None:
            return f"{self.percent.normalize():f}%"
        return f"{self.per_unit_minor} per unit"


def _check_percent(percent: Decimal) -> None:
    if not isinstance(percent, Decimal) or not percent.is_finite():
        raise _invalid("a percentage is a finite decimal number")
    if percent < 0 or percent > PERCENT_MAX:
        raise _invalid(f"a percentage is between 0 and {PERCENT_MAX}, got {percent}")
    exponent = percent.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > PERCENT_PLACES_MAX:
        raise _invalid(f"a percentage has at most {PERCENT_PLACES_MAX} decimal places")


def _check_per_unit(amount_minor: int) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise _invalid("an amount per unit is an integer of minor units")
    if not 0 <= amount_minor <= AMOUNT_MINOR_MAX:
        raise _invalid(f"an amount per unit is between 0 and {AMOUNT_MINOR_MAX} minor units")


@dataclass(frozen=True)
class TaxRate:
    """The levies of a tax code from `valid_from` until its next rate comes into force."""

    valid_from: date
    vat: Levy | None
    sd: Levy | None = None


@dataclass(frozen=True)
class TaxCode:
    code: str
    name: str
    supply: Supply
    rates: tuple[TaxRate, ...]
    # The first day the code may no longer be used, if it was withdrawn.
    withdrawn_on: date | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code):
            raise _invalid(
                f"a tax code is 1 to {TAX_CODE_CHARS_MAX} letters, digits, '.', '_' or '-'"
            )
        if not 1 <= len(self.rates) <= RATES_PER_CODE_MAX:
            raise _invalid(f"tax code {self.code} needs 1 to {RATES_PER_CODE_MAX} dated rates")
        days = [rate.valid_from for rate in self.rates]
        if days != sorted(set(days)):
            raise _invalid(f"the rates of tax code {self.code} must have distinct dates, in order")
        if self.withdrawn_on is not None and self.withdrawn_on <= days[0]:
            raise _invalid(f"tax code {self.code} is withdrawn before its first rate")
        for rate in self.rates:
            self._check_supply(rate)

    def _check_supply(self, rate: TaxRate) -> None:
        if self.supply is Supply.EXEMPT and rate.vat is not None:
            raise _invalid(f"tax code {self.code} is exempt: it has no VAT levy")
        if self.supply is Supply.ZERO_RATED and rate.vat != Levy(percent=Decimal(0)):
            raise _invalid(f"tax code {self.code} is zero-rated: its VAT is 0 %")
        if self.supply is Supply.TAXABLE and rate.vat is None:
            raise _invalid(f"tax code {self.code} is taxable: it needs a VAT levy")

    def rate_on(self, day: date) -> TaxRate:
        """The rate in force on `day`."""
        if self.withdrawn_on is not None and day >= self.withdrawn_on:
            raise LedgerRejection(
                RejectCode.TAX_RATE_NOT_IN_FORCE,
                f"tax code {self.code} was withdrawn on {self.withdrawn_on.isoformat()}",
            )
        in_force = [rate for rate in self.rates if rate.valid_from <= day]
        if not in_force:
            raise LedgerRejection(
                RejectCode.TAX_RATE_NOT_IN_FORCE,
                f"tax code {self.code} has no rate in force on {day.isoformat()}"
                f" (its first is from {self.rates[0].valid_from.isoformat()})",
            )
        return in_force[-1]


def find_tax_code(codes: dict[str, TaxCode], code: str) -> TaxCode:
    found = codes.get(code)
    if found is None:
        raise LedgerRejection(RejectCode.TAX_CODE_NOT_FOUND, f"no tax code {code!r}")
    return found
