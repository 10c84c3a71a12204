"""Accounts and their balances."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from finance import limits
from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.metadata import check_metadata, check_text
from finance.domain.money import currency_exponent


class Side(enum.StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"

    @property
    def opposite(self) -> Side:
        return Side.CREDIT if self is Side.DEBIT else Side.DEBIT


class AccountType(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    REVENUE = "revenue"
    EXPENSE = "expense"

    @property
    def normal_side(self) -> Side:
        """Assets and expenses grow with debits; the other three grow with credits."""
        return Side.DEBIT if self in (AccountType.ASSET, AccountType.EXPENSE) else Side.CREDIT


_ACCOUNT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._/-]*$")


def is_account_code(text: str) -> bool:
    """Whether `text` could be an account's code: 1..128 plain ASCII characters, so never a
    NUL or a lone surrogate that PostgreSQL (or UTF-8) cannot hold."""
    return 0 < len(text) <= limits.ACCOUNT_CODE_CHARS_MAX and bool(_ACCOUNT_CODE.fullmatch(text))


@dataclass(frozen=True)
class AccountSpec:
    """What a client asks for when opening an account; validated on construction."""

    code: str
    name: str
    type: AccountType
    currency: str
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.code or len(self.code) > limits.ACCOUNT_CODE_CHARS_MAX:
            raise _invalid(f"code must be 1..{limits.ACCOUNT_CODE_CHARS_MAX} characters")
        if not is_account_code(self.code):
            raise _invalid("code may hold letters, digits and : . _ / - and must start alnum")
        if not self.name.strip():
            raise _invalid("name must not be empty")
        check_text(self.name, field="name", chars_max=limits.NAME_CHARS_MAX)
        currency_exponent(self.currency)
        if self.debits_must_not_exceed_credits and self.credits_must_not_exceed_debits:
            # Both flags together would pin the balance at zero forever: surely a mistake.
            raise _invalid("an account cannot forbid both debit and credit balances")
        object.__setattr__(self, "metadata", check_metadata(self.metadata))


@dataclass(frozen=True)
class Account:
    id: UUID
    tenant_id: str
    code: str
    name: str
    type: AccountType
    currency: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    closed: bool
    metadata: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class Balance:
    """Posted totals of one account, and the account's posting sequence that produced them."""

    debits_posted: int
    credits_posted: int
    posting_sequence: int

    def signed_for(self, account_type: AccountType) -> int:
        """The balance on the account's normal side: positive means the usual direction."""
        if account_type.normal_side is Side.DEBIT:
            return self.debits_posted - self.credits_posted
        return self.credits_posted - self.debits_posted


def _invalid(detail: str) -> LedgerRejection:
    return LedgerRejection(RejectCode.VALIDATION_FAILED, detail)
