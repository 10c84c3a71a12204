"""Journal entries: balanced, multi-line, immutable once posted.

Booking follows beancount's shape: a draft is a plain value, checked on construction, then
checked again against the state of the accounts it touches (under their locks). Every refusal is
a `LedgerRejection` with the code of highest precedence.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from uuid import UUID

from finance import limits
from finance.domain.accounts import Account, Balance, Side
from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.metadata import check_metadata, check_text
from finance.domain.money import AMOUNT_MINOR_MAX, check_amount_minor, currency_exponent

REVERSAL_TYPE = "REVERSAL"
DEFAULT_TYPE = "JOURNAL"
# Also the API's pattern for the `type` filter of GET /v1/journal.
ENTRY_TYPE_PATTERN = r"^[A-Z][A-Z0-9_]*$"
_ENTRY_TYPE = re.compile(ENTRY_TYPE_PATTERN)


@dataclass(frozen=True)
class Line:
    account_id: UUID
    side: Side
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        check_amount_minor(self.amount_minor)
        currency_exponent(self.currency)


@dataclass(frozen=True)
class EntryDraft:
    """A journal entry before posting. Construction refuses anything that cannot be posted
    whatever the state of the accounts: wrong shape, bad amounts, unbalanced currencies."""

    lines: tuple[Line, ...]
    effective_date: date
    type: str = DEFAULT_TYPE
    memo: str | None = None
    source: str | None = None
    source_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    reversal_of: UUID | None = None

    def __post_init__(self) -> None:
        _check_line_count(len(self.lines))
        _check_entry_type(self.type)
        check_text(self.memo, field="memo", chars_max=limits.MEMO_CHARS_MAX)
        check_text(self.source, field="source", chars_max=limits.SOURCE_CHARS_MAX)
        check_text(self.source_id, field="source_id", chars_max=limits.SOURCE_CHARS_MAX)
        object.__setattr__(self, "metadata", check_metadata(self.metadata))
        check_balanced(self.lines)

    @property
    def account_ids(self) -> list[UUID]:
        """Distinct accounts in a fixed (sorted) order: the order in which they are locked."""
        return sorted({line.account_id for line in self.lines})


def _check_line_count(count: int) -> None:
    if count < limits.LINES_PER_ENTRY_MIN:
        raise LedgerRejection(
            RejectCode.TOO_FEW_LINES,
            f"an entry needs at least {limits.LINES_PER_ENTRY_MIN} lines, got {count}",
        )
    if count > limits.LINES_PER_ENTRY_MAX:
        raise LedgerRejection(
            RejectCode.TOO_MANY_LINES,
            f"an entry has at most {limits.LINES_PER_ENTRY_MAX} lines, got {count}",
        )


def _check_entry_type(entry_type: str) -> None:
    if len(entry_type) > limits.ENTRY_TYPE_CHARS_MAX or not _ENTRY_TYPE.fullmatch(entry_type):
        raise LedgerRejection(
            RejectCode.VALIDATION_FAILED,
            "type must be upper-case letters, digits and underscores, "
            f"at most {limits.ENTRY_TYPE_CHARS_MAX} characters",
        )


def check_balanced(lines: Sequence[Line]) -> None:
    """Per currency, the debits must equal the credits, to the minor unit."""
    net: dict[str, int] = defaultdict(int)
    for line in lines:
        net[line.currency] += line.amount_minor if line.side is Side.DEBIT else -line.amount_minor
    unbalanced = {currency: amount for currency, amount in sorted(net.items()) if amount != 0}
    if unbalanced:
        currency, amount = next(iter(unbalanced.items()))
        heavier = "debits" if amount > 0 else "credits"
        raise LedgerRejection(
            RejectCode.UNBALANCED_ENTRY,
            f"{currency} {heavier} exceed the other side by {abs(amount)} minor units",
            context={"currency": currency},
        )


@dataclass(frozen=True)
class AccountState:
    """An account as seen under its lock while booking."""

    account: Account
    balance: Balance


def book(draft: EntryDraft, states: Mapping[UUID, AccountState]) -> dict[UUID, Balance]:
    """Check a draft against the locked accounts and return their balances after posting.

    Checks run in precedence order over all lines, so the reported code does not depend on
    the order of the lines: every unknown account first, then closed, then currency, then
    limits.
    """
    for line in draft.lines:
        if line.account_id not in states:
            raise _account_rejection(RejectCode.ACCOUNT_NOT_FOUND, line, "does not exist")
    for line in draft.lines:
        if states[line.account_id].account.closed:
            raise _account_rejection(RejectCode.ACCOUNT_CLOSED, line, "is closed")
    for line in draft.lines:
        account = states[line.account_id].account
        if account.currency != line.currency:
            raise _account_rejection(
                RejectCode.CURRENCY_MISMATCH,
                line,
                f"holds {account.currency}, not {line.currency}",
            )
    after = _apply_lines(draft.lines, states)
    _check_limits(after, states)
    return after


@dataclass(frozen=True)
class LinePosting:
    """What a line makes of its account: the account's posting number it takes (its 1st, 2nd...
    posting) and the account's totals after it."""

    sequence: int
    debits_after: int
    credits_after: int


def line_postings(
    draft: EntryDraft, states: Mapping[UUID, AccountState]
) -> tuple[LinePosting, ...]:
    """Each line's posting on its account, in line order, from the balances in `states` (read
    under the account locks). The database stores them with the lines and checks that each
    continues its account's previous line, so the response can be built before the write."""
    running = {line.account_id: states[line.account_id].balance for line in draft.lines}
    postings = []
    for line in draft.lines:
        before = running[line.account_id]
        debit = line.amount_minor if line.side is Side.DEBIT else 0
        after = Balance(
            before.debits_posted + debit,
            before.credits_posted + line.amount_minor - debit,
            before.posting_sequence + 1,
        )
        running[line.account_id] = after
        postings.append(
            LinePosting(after.posting_sequence, after.debits_posted, after.credits_posted)
        )
    return tuple(postings)


def _apply_lines(lines: Sequence[Line], states: Mapping[UUID, AccountState]) -> dict[UUID, Balance]:
    after = {account_id: state.balance for account_id, state in states.items()}
    for line in lines:
        before = after[line.account_id]
        debits = before.debits_posted + (line.amount_minor if line.side is Side.DEBIT else 0)
        credits = before.credits_posted + (line.amount_minor if line.side is Side.CREDIT else 0)
        if debits > AMOUNT_MINOR_MAX or credits > AMOUNT_MINOR_MAX:
            raise _account_rejection(
                RejectCode.BALANCE_OVERFLOW, line, "would exceed the largest storable total"
            )
        after[line.account_id] = Balance(debits, credits, before.posting_sequence + 1)
    return {account_id: after[account_id] for account_id in sorted({ln.account_id for ln in lines})}


def _check_limits(after: Mapping[UUID, Balance], states: Mapping[UUID, AccountState]) -> None:
    for account_id, balance in after.items():
        account = states[account_id].account
        if (
            account.debits_must_not_exceed_credits
            and balance.debits_posted > balance.credits_posted
        ):
            raise _overdraft(account, balance.debits_posted - balance.credits_posted)
        if (
            account.credits_must_not_exceed_debits
            and balance.credits_posted > balance.debits_posted
        ):
            raise _overdraft(account, balance.credits_posted - balance.debits_posted)


def _overdraft(account: Account, shortfall_minor: int) -> LedgerRejection:
    return LedgerRejection(
        RejectCode.OVERDRAFT,
        f"account {account.code} would be overdrawn by {shortfall_minor} minor units",
        context={"account_id": str(account.id)},
    )


def _account_rejection(code: RejectCode, line: Line, what: str) -> LedgerRejection:
    return LedgerRejection(
        code, f"account {line.account_id} {what}", context={"account_id": str(line.account_id)}
    )


@dataclass(frozen=True)
class PostedLine:
    account_id: UUID
    side: Side
    amount_minor: int
    currency: str
    account_posting_sequence: int
    # The account's totals after this line: its running balance in posting order.
    debits_after: int
    credits_after: int


@dataclass(frozen=True)
class PostedEntry:
    """An entry as the ledger holds it: numbered, chained and never changed again."""

    id: UUID
    tenant_id: str
    sequence: int
    hash: bytes
    prev_hash: bytes
    posted_at: datetime
    effective_date: date
    type: str
    memo: str | None
    source: str | None
    source_id: str | None
    metadata: dict[str, str]
    reversal_of: UUID | None
    lines: tuple[PostedLine, ...]


def reversal_draft(original: PostedEntry, *, effective_date: date, memo: str | None) -> EntryDraft:
    """The mirror of a posted entry: same lines with sides swapped, linked to the original.

    A reversal is final: reversing it again would resurrect the original, so corrections of a
    reversal are fresh ADJUSTMENT entries instead (ledger.md).
    """
    if original.reversal_of is not None:
        raise LedgerRejection(
            RejectCode.REVERSAL_NOT_REVERSIBLE,
            f"entry {original.id} is itself a reversal; post an ADJUSTMENT entry instead",
        )
    lines = tuple(
        Line(line.account_id, line.side.opposite, line.amount_minor, line.currency)
        for line in original.lines
    )
    return EntryDraft(
        lines=lines,
        effective_date=effective_date,
        type=REVERSAL_TYPE,
        memo=memo if memo is not None else f"Reversal of entry {original.sequence}",
        source=original.source,
        source_id=original.source_id,
        metadata={},
        reversal_of=original.id,
    )
