"""Read use cases: account lists, the journal, account statements and the trial balance.

Like the write use cases in `ledger`, each runs inside one `LedgerTransaction`, so what it
returns is one consistent snapshot. Entry points (API routers, CLI commands) call these rather
than the transaction's methods, so a rule about reading (an unknown account is a 404, a list
is bounded) lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from finance import limits
from finance.domain.accounts import Account
from finance.domain.entries import PostedEntry
from finance.services import ledger
from finance.services.ports import (
    AccountLine,
    AccountTotals,
    CurrencyTotals,
    EntryFilter,
    LedgerTransaction,
)


def list_accounts(tx: LedgerTransaction, after_code: str | None, limit: int) -> list[Account]:
    """Up to `limit` accounts in code order, after `after_code`."""
    return tx.list_accounts(after_code, limit)


def all_accounts(tx: LedgerTransaction) -> list[Account]:
    """Every account of the tenant in code order, read a bounded page at a time."""
    found: list[Account] = []
    while True:
        page = tx.list_accounts(found[-1].code if found else None, limits.PAGE_SIZE_MAX)
        found.extend(page)
        if len(page) < limits.PAGE_SIZE_MAX:
            return found


def list_entries(
    tx: LedgerTransaction, flt: EntryFilter, after_sequence: int | None, limit: int
) -> list[PostedEntry]:
    """Up to `limit` entries matching `flt` in chain order, after `after_sequence`."""
    return tx.list_entries(flt, after_sequence, limit)


def account_statement(
    tx: LedgerTransaction, account_id: UUID, after_posting: int | None, limit: int
) -> list[AccountLine]:
    """Up to `limit` lines of one account in its posting order, after its posting number
    `after_posting`, with the running totals each line produced. An entry may touch an
    account more than once, so positions are the account's posting numbers, not entries."""
    ledger.get_account(tx, account_id)
    return tx.account_lines(account_id, after_posting, limit)


@dataclass(frozen=True)
class TrialBalance:
    """Totals per currency over every account, and one page of the per-account totals."""

    currencies: list[CurrencyTotals]
    accounts: list[AccountTotals]

    @property
    def balanced(self) -> bool:
        return all(c.debits_posted == c.credits_posted for c in self.currencies)


def trial_balance(tx: LedgerTransaction, after_code: str | None, limit: int) -> TrialBalance:
    """Posted totals per currency (over all accounts), and those of up to `limit` accounts
    after `after_code` in code order: the same order and positions as `list_accounts`.

    The page is read first: every account on it is also in the totals read after it (accounts
    are never deleted), and the totals per currency and per account come from one statement,
    so they agree with each other."""
    page = tx.list_accounts(after_code, limit)
    currencies, accounts = tx.trial_balance()
    totals = {item.account.id: item for item in accounts}
    return TrialBalance(currencies, [totals[account.id] for account in page])
