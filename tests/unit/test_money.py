"""Unit tests for finance.domain.money: ISO 4217 exponents, amount checks and formatting."""

from __future__ import annotations

import pytest

from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.money import (
    AMOUNT_MINOR_MAX,
    check_amount_minor,
    currency_exponent,
    format_minor,
)


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("JPY", 0),
        ("BHD", 3),
        ("KWD", 3),
        ("CLF", 4),
        ("XAU", 0),  # gold: ISO 4217 lists no minor unit, the ledger counts whole units
    ],
)
def test_currency_exponent_follows_iso_4217(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


@pytest.mark.parametrize(
    "code",
    [
        "usd",  # lowercase is not an ISO code
        "Usd",
        "ZZZ",  # well-formed but unknown
        "ABC",
        "US",
        "USDD",
        "",
        " USD",
        "USD ",
        "USD\n",  # a trailing newline satisfies re.match with "$", never fullmatch
        "\nUSD",
        "US1",
        "U$D",
        "840",  # the numeric code is not accepted in place of the alphabetic one
        "ÜSD",
    ],
)
def test_currency_exponent_refuses_unknown_or_malformed_codes(code: str) -> None:
    with pytest.raises(LedgerRejection) as caught:
        currency_exponent(code)
    assert caught.value.code is RejectCode.UNKNOWN_CURRENCY


def test_amount_minor_max_is_the_bigint_maximum() -> None:
    assert AMOUNT_MINOR_MAX == 2**63 - 1


@pytest.mark.parametrize("amount", [1, 2, 125_000, 2**53 + 1, 2**63 - 1])
def test_check_amount_minor_accepts_positive_bigint_values(amount: int) -> None:
    assert check_amount_minor(amount) == amount


@pytest.mark.parametrize(
    "amount",
    [0, -1, -(2**63), 2**63, 2**64, True, False, 1.0, 0.5, 100.0, "100", None],
)
def test_check_amount_minor_refuses_non_positive_oversized_and_non_integers(
    amount: object,
) -> None:
    with pytest.raises(LedgerRejection) as caught:
        check_amount_minor(amount)  # type: ignore[arg-type]
    assert caught.value.code is RejectCode.INVALID_AMOUNT


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (125_000, "USD", "1250.00"),
        (-5, "USD", "-0.05"),
        (0, "USD", "0.00"),
        (1, "USD", "0.01"),
        (100, "USD", "1.00"),
        (-125_000, "USD", "-1250.00"),
        (7, "JPY", "7"),
        (-7, "JPY", "-7"),
        (0, "JPY", "0"),
        (1, "BHD", "0.001"),
        (1_234_567, "KWD", "1234.567"),
        (1, "CLF", "0.0001"),
        (3, "XAU", "3"),
        (2**63 - 1, "USD", "92233720368547758.07"),
    ],
)
def test_format_minor_renders_fixed_scale_decimal_strings(
    amount: int, currency: str, text: str
) -> None:
    assert format_minor(amount, currency) == text


def test_format_minor_refuses_unknown_currency() -> None:
    with pytest.raises(LedgerRejection) as caught:
        format_minor(100, "usd")
    assert caught.value.code is RejectCode.UNKNOWN_CURRENCY
