"""TIN and BIN: 12 and 13 digits, a 9-digit BIN only as flagged legacy data."""

from __future__ import annotations

import pytest

from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.invoicing.tax_ids import Bin, Tin


def test_a_tin_is_twelve_digits() -> None:
    assert str(Tin.parse("123456789012")) == "123456789012"
    assert Tin.parse("1234 5678 9012").digits == "123456789012"


@pytest.mark.parametrize(
    "raw", ["12345678901", "1234567890123", "12345678901a", "", "१२३४५६७८९०१२", "12345678901.2"]
)
def test_anything_else_is_not_a_tin(raw: str) -> None:
    with pytest.raises(LedgerRejection) as refused:
        Tin.parse(raw)
    assert refused.value.code is RejectCode.INVALID_TIN


def test_a_bin_is_thirteen_digits_shown_nine_dash_four() -> None:
    parsed = Bin.parse("0012345670101")
    assert str(parsed) == "001234567-0101"
    assert not parsed.legacy
    assert Bin.parse("001234567-0101") == parsed
    assert parsed.require_current() is parsed


def test_a_nine_digit_bin_is_legacy_and_refused_on_a_new_invoice() -> None:
    legacy = Bin.parse("123456789")
    assert legacy.legacy
    assert str(legacy) == "123456789"
    with pytest.raises(LedgerRejection) as refused:
        legacy.require_current()
    assert refused.value.code is RejectCode.LEGACY_BIN_REFUSED
    assert "13-digit" in refused.value.detail


@pytest.mark.parametrize("raw", ["12345678", "1234567890", "123456789012", "00123456701012", "x"])
def test_other_lengths_are_not_a_bin(raw: str) -> None:
    with pytest.raises(LedgerRejection) as refused:
        Bin.parse(raw)
    assert refused.value.code is RejectCode.INVALID_BIN
