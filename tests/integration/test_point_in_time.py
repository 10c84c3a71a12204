"""Point-in-time balances: after a given entry of the chain, and at the end of an effective
date (back-dated entries count on their own date, not on the day they were posted)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import pytest

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountType, Balance
from finance.domain.entries import PostedEntry
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services import ledger
from finance.services.ledger import AccountBalance
from tests.integration.helpers import balance_of, now, open_account, transfer


@dataclass(frozen=True)
class History:
    tenant: str
    cash: UUID
    sales: UUID
    fees: UUID
    entries: list[PostedEntry]


@pytest.fixture
def history(store: PostgresLedgerStore, tenant: str) -> History:
    """Chain order and effective dates deliberately disagree:

    seq 0  2024-01-10  cash  dr 100 / sales cr 100
    seq 1  2024-01-05  cash  dr  50 / sales cr  50   (back-dated)
    seq 2  2024-02-01  fees  dr  25 / cash  cr  25
    seq 3  2024-01-10  cash  dr  10 / sales cr  10
    seq 4  2024-03-01  reversal of seq 0: sales dr 100 / cash cr 100
    """
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)
    fees = open_account(store, tenant, "fees", AccountType.EXPENSE)
    entries = [
        transfer(store, tenant, cash, sales, 100, effective_date=date(2024, 1, 10)),
        transfer(store, tenant, cash, sales, 50, effective_date=date(2024, 1, 5)),
        transfer(store, tenant, fees, cash, 25, effective_date=date(2024, 2, 1)),
        transfer(store, tenant, cash, sales, 10, effective_date=date(2024, 1, 10)),
    ]
    entries.append(
        store(
            tenant,
            lambda tx: ledger.reverse_entry(
                tx, entries[0].id, uuid.uuid4(), now(), effective_date=date(2024, 3, 1)
            ),
        )
    )
    assert [e.sequence for e in entries] == [0, 1, 2, 3, 4]
    return History(tenant, cash, sales, fees, entries)


def at_sequence(
    store: PostgresLedgerStore, h: History, account: UUID, sequence: int
) -> AccountBalance:
    return store(h.tenant, lambda tx: ledger.account_balance(tx, account, as_of_sequence=sequence))


def at_date(store: PostgresLedgerStore, h: History, account: UUID, day: date) -> AccountBalance:
    return store(h.tenant, lambda tx: ledger.account_balance(tx, account, as_of_date=day))


@pytest.mark.parametrize(
    ("sequence", "cash", "fees"),
    [
        # (debits, credits, posting sequence) after entry `sequence`.
        (0, (100, 0, 1), (0, 0, 0)),
        (1, (150, 0, 2), (0, 0, 0)),
        (2, (150, 25, 3), (25, 0, 1)),
        (3, (160, 25, 4), (25, 0, 1)),
        (4, (160, 125, 5), (25, 0, 1)),
        (99, (160, 125, 5), (25, 0, 1)),
    ],
)
def test_balance_after_each_entry_of_the_chain(
    store: PostgresLedgerStore,
    history: History,
    sequence: int,
    cash: tuple[int, int, int],
    fees: tuple[int, int, int],
) -> None:
    got = at_sequence(store, history, history.cash, sequence)
    assert got.balance == Balance(*cash)
    assert got.as_of_sequence == sequence
    assert got.signed == cash[0] - cash[1]
    assert at_sequence(store, history, history.fees, sequence).balance == Balance(*fees)


def test_balance_before_the_first_entry_is_zero(
    store: PostgresLedgerStore, history: History
) -> None:
    for account in (history.cash, history.sales, history.fees):
        assert at_sequence(store, history, account, -1).balance == Balance(0, 0, 0)
        by_date = at_date(store, history, account, date(2024, 1, 4))
        assert (by_date.balance.debits_posted, by_date.balance.credits_posted) == (0, 0)
        assert by_date.signed == 0


@pytest.mark.parametrize(
    ("day", "cash", "sales"),
    [
        # (debits, credits) of lines effective on or before `day`.
        (date(2023, 12, 31), (0, 0), (0, 0)),
        (date(2024, 1, 5), (50, 0), (0, 50)),
        (date(2024, 1, 9), (50, 0), (0, 50)),
        (date(2024, 1, 10), (160, 0), (0, 160)),
        (date(2024, 1, 31), (160, 0), (0, 160)),
        (date(2024, 2, 1), (160, 25), (0, 160)),
        (date(2024, 2, 29), (160, 25), (0, 160)),
        (date(2024, 3, 1), (160, 125), (100, 160)),
        (date(2030, 1, 1), (160, 125), (100, 160)),
    ],
)
def test_balance_at_the_end_of_an_effective_date(
    store: PostgresLedgerStore,
    history: History,
    day: date,
    cash: tuple[int, int],
    sales: tuple[int, int],
) -> None:
    got_cash = at_date(store, history, history.cash, day)
    got_sales = at_date(store, history, history.sales, day)
    assert (got_cash.balance.debits_posted, got_cash.balance.credits_posted) == cash
    assert (got_sales.balance.debits_posted, got_sales.balance.credits_posted) == sales
    assert got_cash.as_of_date == day
    assert got_sales.signed == sales[1] - sales[0]


def test_latest_point_in_time_balance_equals_the_current_balance(
    store: PostgresLedgerStore, history: History
) -> None:
    for account in (history.cash, history.sales, history.fees):
        current = balance_of(store, history.tenant, account)
        assert at_sequence(store, history, account, 4).balance == current.balance
        by_date = at_date(store, history, account, date(2099, 12, 31)).balance
        assert (by_date.debits_posted, by_date.credits_posted) == (
            current.balance.debits_posted,
            current.balance.credits_posted,
        )
    cash = store(history.tenant, lambda tx: ledger.account_balance(tx, history.cash))
    assert cash.balance == Balance(160, 125, 5)


def test_account_without_lines_is_zero_at_every_point(
    store: PostgresLedgerStore, history: History
) -> None:
    other = open_account(store, history.tenant, "other", AccountType.ASSET)
    assert at_sequence(store, history, other, 4).balance == Balance(0, 0, 0)
    assert at_date(store, history, other, date(2024, 3, 1)).balance == Balance(0, 0, 0)


def test_both_kinds_of_point_in_time_at_once_are_refused(
    store: PostgresLedgerStore, history: History
) -> None:
    with pytest.raises(LedgerRejection) as info:
        store(
            history.tenant,
            lambda tx: ledger.account_balance(
                tx, history.cash, as_of_sequence=1, as_of_date=date(2024, 1, 5)
            ),
        )
    assert info.value.code is RejectCode.VALIDATION_FAILED
