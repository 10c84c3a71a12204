"""Bangladesh tax identifiers: the TIN (e-TIN, 12 digits) and the BIN (VAT business
identification number, 13 digits since the VAT and SD Act 2012 came into force in 2019).

A 9-digit BIN is the pre-2019 form. It is accepted as data (an old customer record, an invoice
issued before the change) and flagged as legacy, and refused where a current BIN is required:
on a new invoice (`require_current`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from finance.domain.errors import LedgerRejection, RejectCode

TIN_DIGITS = 12
BIN_DIGITS = 13
LEGACY_BIN_DIGITS = 9

# People type identifiers with spaces or a hyphen (the BIN is shown NNNNNNNNN-NNNN); those
# separators are dropped, anything else is an error.
_SEPARATORS = re.compile(r"[\s-]")
_DIGITS = re.compile(r"[0-9]+")


def _digits_of(raw: str, what: str, code: RejectCode) -> str:
    if not isinstance(raw, str):
        raise LedgerRejection(code, f"a {what} is a string of digits")
    digits = _SEPARATORS.sub("", raw)
    if not _DIGITS.fullmatch(digits) or not digits.isascii():
        raise LedgerRejection(code, f"a {what} has only digits (and optional spaces or hyphens)")
    return digits


@dataclass(frozen=True)
class Tin:
    """A 12-digit taxpayer identification number."""

    digits: str

    @classmethod
    def parse(cls, raw: str) -> Tin:
        digits = _digits_of(raw, "TIN", RejectCode.INVALID_TIN)
        if len(digits) != TIN_DIGITS:
            raise LedgerRejection(
                RejectCode.INVALID_TIN, f"a TIN has {TIN_DIGITS} digits, got {len(digits)}"
            )
        return cls(digits)

    def __str__(self) -> str:
        return self.digits


@dataclass(frozen=True)
class Bin:
    """A business identification number: 13 digits, shown NNNNNNNNN-NNNN, or a flagged
    9-digit legacy one."""

    digits: str

    @classmethod
    def parse(cls, raw: str) -> Bin:
        digits = _digits_of(raw, "BIN", RejectCode.INVALID_BIN)
        if len(digits) not in (BIN_DIGITS, LEGACY_BIN_DIGITS):
            raise LedgerRejection(
                RejectCode.INVALID_BIN,
                f"a BIN has {BIN_DIGITS} digits ({LEGACY_BIN_DIGITS} for a legacy one),"
                f" got {len(digits)}",
            )
        return cls(digits)

    @property
    def legacy(self) -> bool:
        return len(self.digits) == LEGACY_BIN_DIGITS

    def require_current(self) -> Bin:
        """This BIN, if it may appear on a new invoice."""
        if self.legacy:
            raise LedgerRejection(
                RejectCode.LEGACY_BIN_REFUSED,
                f"{self.digits} is a 9-digit legacy BIN; a new invoice needs the 13-digit BIN",
            )
        return self

    def __str__(self) -> str:
        if self.legacy:
            return self.digits
        return f"{self.digits[:9]}-{self.digits[9:]}"
