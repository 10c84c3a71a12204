"""The ports the use cases depend on. PostgreSQL implements them in `finance.adapters.postgres`.

A `LedgerTransaction` is one database transaction scoped to one tenant: everything a use case
does through it commits together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from finance.domain.accounts import Account, Balance
from finance.domain.entries import AccountState, PostedEntry

T = TypeVar("T")


@dataclass(frozen=True)
class ChainHead:
    next_sequence: int
    head_hash: bytes
    head_posted_at: datetime | None


@dataclass(frozen=True)
class StoredResponse:
    """The first response to an idempotent request, kept forever."""

    request_hash: bytes
    status_code: int
    body: bytes


@dataclass(frozen=True)
class EntryFilter:
    effective_from: date | None = None
    effective_to: date | None = None
    type: str | None = None
    source: str | None = None
    source_id: str | None = None
    account_id: UUID | None = None
    reversal_of: UUID | None = None


@dataclass(frozen=True)
class AccountLine:
    """One line of an account statement, with the running totals it produced."""

    entry_id: UUID
    sequence: int
    line_number: int
    posted_at: datetime
    effective_date: date
    type: str
    memo: str | None
    side: str
    amount_minor: int
    currency: str
    account_posting_sequence: int
    debits_after: int
    credits_after: int


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    debits_posted: int
    credits_posted: int


@dataclass(frozen=True)
class AccountTotals:
    account: Account
    balance: Balance


class LedgerTransaction(Protocol):
    tenant_id: str

    # Tenants and the chain.
    def tenant_exists(self) -> bool: ...
    def insert_tenant(self, name: str, created_at: datetime, genesis_hash: bytes) -> None: ...
    def lock_chain_head(self) -> ChainHead: ...

    # Idempotency.
    def claim_idempotency_key(self, key: str, request_hash: bytes) -> StoredResponse | None: ...
    def complete_idempotency_key(self, key: str, status_code: int, body: bytes) -> None: ...

    # Accounts.
    def insert_account(self, account: Account) -> None: ...
    def get_account(self, account_id: UUID, *, for_update: bool = False) -> Account | None: ...
    def get_account_by_code(self, code: str) -> Account | None: ...
    def close_account(self, account_id: UUID, closed_at: datetime) -> None: ...
    def list_accounts(self, after_code: str | None, limit: int) -> list[Account]: ...
    def lock_accounts(self, account_ids: Sequence[UUID]) -> dict[UUID, AccountState]: ...
    def get_balance(self, account_id: UUID) -> Balance | None: ...
    def balance_as_of_sequence(self, account_id: UUID, sequence: int) -> Balance: ...
    def balance_as_of_date(self, account_id: UUID, as_of: date) -> Balance: ...

    # Entries.
    def insert_entry(self, entry: PostedEntry) -> PostedEntry: ...
    def get_entry(self, entry_id: UUID) -> PostedEntry | None: ...
    def find_reversal(self, entry_id: UUID) -> UUID | None: ...
    def list_entries(
        self, flt: EntryFilter, after_sequence: int | None, limit: int
    ) -> list[PostedEntry]: ...
    def account_lines(
        self, account_id: UUID, after_posting: int | None, limit: int
    ) -> list[AccountLine]: ...
    def trial_balance(self) -> tuple[list[CurrencyTotals], list[AccountTotals]]: ...
    def enqueue_event(
        self, event_type: str, aggregate_id: UUID, payload: dict[str, Any]
    ) -> None: ...


class TransactionRunner(Protocol):
    """Runs a unit of work in one tenant transaction, retrying documented races."""

    def __call__(self, tenant_id: str, work: Callable[[LedgerTransaction], T]) -> T: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
