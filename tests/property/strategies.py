"""Hypothesis strategies for ledger property tests.

Entries are generated over *abstract* accounts, `(currency, slot)` pairs, so the same strategy
serves the pure domain tests (fixed ids) and the database tests (ids of accounts opened in a
fresh tenant per example). `LedgerUniverse` turns the abstract lines into real `Line`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

from hypothesis import strategies as st

from finance.domain.accounts import AccountType, Balance, Side
from finance.domain.entries import Line

# Currencies with different exponents (2, 0, 3); amounts are minor units either way.
CURRENCIES: tuple[str, ...] = ("USD", "JPY", "BHD")
SLOTS_PER_CURRENCY = 3
LINES_PER_SIDE_MAX = 5  # per currency: at most 2 * 5 + 1 lines, well under the 100-line limit
AMOUNT_MAX = 10**13  # sums of a few hundred of these stay far below 2**63 - 1
BASE_DATE = date(2025, 1, 1)
DATE_SPAN_DAYS = 5


@dataclass(frozen=True)
class AbstractLine:
    currency: str
    slot: int
    side: Side
    amount: int


@dataclass(frozen=True)
class AbstractEntry:
    lines: tuple[AbstractLine, ...]
    effective_date: date


def amounts() -> st.SearchStrategy[int]:
    """Mostly small amounts, sometimes large ones, always positive."""
    return st.one_of(
        st.integers(min_value=1, max_value=1_000),
        st.integers(min_value=1, max_value=AMOUNT_MAX),
    )


def currency_sets() -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=2, unique=True)


@st.composite
def balanced_lines(
    draw: st.DrawFn, currencies: Sequence[str] | None = None
) -> tuple[AbstractLine, ...]:
    """Lines that balance per currency: independent debit and credit lists, the lighter side
    topped up by one line, then shuffled. Same-account debits and credits are allowed."""
    chosen = list(currencies) if currencies is not None else draw(currency_sets())
    if len(chosen) > 1:
        chosen = draw(st.lists(st.sampled_from(chosen), min_size=1, max_size=2, unique=True))
    lines: list[AbstractLine] = []
    slots = st.integers(min_value=0, max_value=SLOTS_PER_CURRENCY - 1)
    for currency in chosen:
        debits = draw(st.lists(amounts(), min_size=1, max_size=LINES_PER_SIDE_MAX))
        credits = draw(st.lists(amounts(), min_size=1, max_size=LINES_PER_SIDE_MAX))
        difference = sum(debits) - sum(credits)
        if difference > 0:
            credits.append(difference)
        elif difference < 0:
            debits.append(-difference)
        for side, side_amounts in ((Side.DEBIT, debits), (Side.CREDIT, credits)):
            lines.extend(AbstractLine(currency, draw(slots), side, a) for a in side_amounts)
    return tuple(draw(st.permutations(lines)))


def effective_dates() -> st.SearchStrategy[date]:
    return st.integers(min_value=0, max_value=DATE_SPAN_DAYS - 1).map(
        lambda days: BASE_DATE + timedelta(days=days)
    )


@st.composite
def balanced_entries(draw: st.DrawFn, currencies: Sequence[str] | None = None) -> AbstractEntry:
    return AbstractEntry(draw(balanced_lines(currencies)), draw(effective_dates()))


@st.composite
def unbalanced_lines(
    draw: st.DrawFn, currencies: Sequence[str] | None = None
) -> tuple[tuple[AbstractLine, ...], str]:
    """Balanced lines with one amount changed; returns the lines and the currency broken."""
    lines = list(draw(balanced_lines(currencies)))
    index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
    target = lines[index]
    if target.amount == 1 or draw(st.booleans()):
        changed = target.amount + draw(st.integers(min_value=1, max_value=1_000_000))
    else:
        changed = target.amount - draw(st.integers(min_value=1, max_value=target.amount - 1))
    lines[index] = AbstractLine(target.currency, target.slot, target.side, changed)
    return tuple(lines), target.currency


def account_types() -> st.SearchStrategy[AccountType]:
    return st.sampled_from(list(AccountType))


def starting_balances() -> st.SearchStrategy[Balance]:
    totals = st.integers(min_value=0, max_value=10**15)
    return st.builds(Balance, totals, totals, st.integers(min_value=0, max_value=10**6))


@dataclass(frozen=True)
class LedgerUniverse:
    """The concrete account ids behind the abstract `(currency, slot)` accounts."""

    ids: dict[tuple[str, int], UUID]

    @staticmethod
    def fixed() -> LedgerUniverse:
        return LedgerUniverse(
            {
                (currency, slot): UUID(int=1_000 * (c + 1) + slot)
                for c, currency in enumerate(CURRENCIES)
                for slot in range(SLOTS_PER_CURRENCY)
            }
        )

    def line(self, abstract: AbstractLine) -> Line:
        return Line(
            self.ids[(abstract.currency, abstract.slot)],
            abstract.side,
            abstract.amount,
            abstract.currency,
        )

    def lines(self, abstract: Sequence[AbstractLine]) -> tuple[Line, ...]:
        return tuple(self.line(a) for a in abstract)
