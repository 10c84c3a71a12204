"""Exact money: integer minor units and ISO 4217 currency exponents. Never floats."""

from __future__ import annotations

import re
from functools import cache

import iso4217

from finance.domain.errors import LedgerRejection, RejectCode

# Amounts are stored in PostgreSQL `bigint`; a single line and every running total must fit.
AMOUNT_MINOR_MAX = 2**63 - 1

_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


@cache
def currency_exponent(code: str) -> int:
    """The number of minor-unit digits of an ISO 4217 currency (USD 2, JPY 0, BHD 3).

    Funds codes without a minor unit (XAU, XDR...) have no exponent in ISO 4217; a ledger of
    such holdings counts whole units, so they get 0.
    """
    if not _CURRENCY_CODE.fullmatch(code):
        raise LedgerRejection(
            RejectCode.UNKNOWN_CURRENCY, f"{code!r} is not an ISO 4217 currency code"
        )
    try:
        currency = iso4217.Currency(code)
    except ValueError as exc:
        raise LedgerRejection(
            RejectCode.UNKNOWN_CURRENCY, f"{code} is not an ISO 4217 currency code"
        ) from exc
    if code == "XXX":
        # ISO 4217: "transactions where no currency is involved" has no place in a ledger.
        raise LedgerRejection(RejectCode.UNKNOWN_CURRENCY, "XXX denotes no currency")
    exponent = currency.exponent
    return 0 if exponent is None else int(exponent)


def check_amount_minor(amount_minor: int) -> int:
    """An amount on a journal line: a positive integer that fits a bigint."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise LedgerRejection(RejectCode.INVALID_AMOUNT, "amount must be an integer of minor units")
    if amount_minor <= 0:
        raise LedgerRejection(RejectCode.INVALID_AMOUNT, "amount must be greater than zero")
    if amount_minor > AMOUNT_MINOR_MAX:
        raise LedgerRejection(
            RejectCode.INVALID_AMOUNT, f"amount must be at most {AMOUNT_MINOR_MAX} minor units"
        )
    return amount_minor


def format_minor(amount_minor: int, currency: str) -> str:
    """Render minor units as a fixed-scale decimal string: 125000 USD -> "1250.00"."""
    exponent = currency_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    digits = str(abs(amount_minor)).rjust(exponent + 1, "0")
    if exponent == 0:
        return f"{sign}{digits}"
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"
