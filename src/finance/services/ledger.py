"""Ledger use cases: open accounts, post and reverse entries, read balances.

Each function runs inside one `LedgerTransaction` (one database transaction for one tenant),
so everything it does commits together. The domain decides; the transaction stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from uuid import UUID

from finance.domain.accounts import Account, AccountSpec, Balance
from finance.domain.entries import (
    EntryDraft,
    LinePosting,
    PostedEntry,
    PostedLine,
    book,
    line_postings,
    reversal_draft,
)
from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.domain.tenants import check_tenant
from finance.proofs.chain import chain_hash, entry_body, genesis_hash
from finance.services.ports import ChainHead, LedgerTransaction


def create_tenant(tx: LedgerTransaction, name: str, now: datetime) -> None:
    """A tenant and the genesis of its ledger chain."""
    check_tenant(tx.tenant_id, name)
    if tx.tenant_exists():
        raise LedgerRejection(RejectCode.TENANT_EXISTS, f"tenant {tx.tenant_id} already exists")
    tx.insert_tenant(name, now, genesis_hash(tx.tenant_id, now))


def require_tenant(tx: LedgerTransaction) -> None:
    if not tx.tenant_exists():
        raise LedgerRejection(
            RejectCode.TENANT_NOT_FOUND,
            f"tenant {tx.tenant_id} does not exist; create it with `finance tenants create`",
        )


def open_account(
    tx: LedgerTransaction, spec: AccountSpec, account_id: UUID, now: datetime
) -> Account:
    require_tenant(tx)
    account = Account(
        id=account_id,
        tenant_id=tx.tenant_id,
        code=spec.code,
        name=spec.name,
        type=spec.type,
        currency=spec.currency,
        debits_must_not_exceed_credits=spec.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=spec.credits_must_not_exceed_debits,
        closed=False,
        metadata=dict(spec.metadata),
        created_at=now,
    )
    tx.insert_account(account)
    return account


def close_account(tx: LedgerTransaction, account_id: UUID, now: datetime) -> Account:
    """No new postings after this; the history and balance stay readable."""
    account = tx.get_account(account_id, for_update=True)
    if account is None:
        raise _account_not_found(account_id)
    if account.closed:
        raise LedgerRejection(
            RejectCode.ACCOUNT_ALREADY_CLOSED, f"account {account.code} is already closed"
        )
    tx.close_account(account_id, now)
    return replace(account, closed=True)


def post_entry(
    tx: LedgerTransaction, draft: EntryDraft, entry_id: UUID, now: datetime
) -> PostedEntry:
    """Book a draft and append it to the tenant's chain, all in the caller's transaction.

    Lock order: the touched accounts (sorted), then the chain head. The head is taken last so
    the tenant-wide serial point is held for as short a time as possible. An unknown tenant
    has no accounts and no chain head, so it is refused without a lookup of its own.
    """
    states = tx.lock_accounts(draft.account_ids)
    book(draft, states)
    postings = line_postings(draft, states)
    head = tx.lock_chain_head()
    entry = chained_entry(
        tx.tenant_id,
        draft,
        entry_id,
        sequence=head.next_sequence,
        prev_hash=head.head_hash,
        posted_at=posting_time(head, now),
        line_postings=postings,
    )
    return append_entries(tx, [entry])[0]


def posting_time(head: ChainHead, now: datetime) -> datetime:
    """Posting times never go backwards along the chain (the database holds this too): a
    request that read the clock before waiting for the head takes its predecessor's time."""
    if head.head_posted_at is not None and head.head_posted_at > now:
        return head.head_posted_at
    return now


def chained_entry(
    tenant_id: str,
    draft: EntryDraft,
    entry_id: UUID,
    *,
    sequence: int,
    prev_hash: bytes,
    posted_at: datetime,
    line_postings: Sequence[LinePosting],
) -> PostedEntry:
    """The entry a booked draft becomes at position `sequence` of the chain, after `prev_hash`."""
    postings = [(ln.account_id, ln.side, ln.amount_minor, ln.currency) for ln in draft.lines]
    body = entry_body(
        ledger_id=tenant_id,
        sequence=sequence,
        entry_uuid=entry_id,
        posted_at=posted_at,
        effective_date=draft.effective_date,
        entry_type=draft.type,
        memo=draft.memo,
        source=draft.source,
        source_id=draft.source_id,
        reversal_of=draft.reversal_of,
        postings=postings,
        metadata=draft.metadata,
    )
    return PostedEntry(
        id=entry_id,
        tenant_id=tenant_id,
        sequence=sequence,
        hash=chain_hash(prev_hash, body),
        prev_hash=prev_hash,
        posted_at=posted_at,
        effective_date=draft.effective_date,
        type=draft.type,
        memo=draft.memo,
        source=draft.source,
        source_id=draft.source_id,
        metadata=draft.metadata,
        reversal_of=draft.reversal_of,
        lines=tuple(
            PostedLine(
                *posting,
                account_posting_sequence=line.sequence,
                debits_after=line.debits_after,
                credits_after=line.credits_after,
            )
            for posting, line in zip(postings, line_postings, strict=True)
        ),
    )


def append_entries(tx: LedgerTransaction, entries: Sequence[PostedEntry]) -> list[PostedEntry]:
    """Store chained entries in one write. No event row goes with them: the journal is the
    event log (docs/architecture.md); nor a response for their idempotency keys, which refer
    to the entries (services/idempotency.py). Each line carries its account's posting number
    and totals, computed under the locks; the database checks that each continues its
    account's previous line (migration 0007)."""
    tx.insert_entries(entries)
    return list(entries)


def reverse_entry(
    tx: LedgerTransaction,
    original_id: UUID,
    reversal_id: UUID,
    now: datetime,
    *,
    effective_date: date | None = None,
    memo: str | None = None,
) -> PostedEntry:
    original = get_entry(tx, original_id)
    if tx.find_reversal(original_id) is not None:
        raise LedgerRejection(
            RejectCode.ALREADY_REVERSED, f"entry {original_id} has already been reversed"
        )
    draft = reversal_draft(
        original, effective_date=effective_date or original.effective_date, memo=memo
    )
    return post_entry(tx, draft, reversal_id, now)


def get_entry(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
    entry = tx.get_entry(entry_id)
    if entry is None:
        raise LedgerRejection(RejectCode.ENTRY_NOT_FOUND, f"entry {entry_id} does not exist")
    return entry


def find_account(tx: LedgerTransaction, id_or_code: str) -> Account:
    """An account by its id, or else by its code (for people typing commands)."""
    try:
        account = tx.get_account(UUID(id_or_code))
    except ValueError:
        account = None
    account = account or tx.get_account_by_code(id_or_code)
    if account is None:
        raise LedgerRejection(
            RejectCode.ACCOUNT_NOT_FOUND, f"no account with id or code {id_or_code!r}"
        )
    return account


def get_account(tx: LedgerTransaction, account_id: UUID) -> Account:
    account = tx.get_account(account_id)
    if account is None:
        raise _account_not_found(account_id)
    return account


@dataclass(frozen=True)
class AccountBalance:
    account: Account
    balance: Balance
    as_of_sequence: int | None = None
    as_of_date: date | None = None

    @property
    def signed(self) -> int:
        return self.balance.signed_for(self.account.type)


def account_balance(
    tx: LedgerTransaction,
    account_id: UUID,
    *,
    as_of_sequence: int | None = None,
    as_of_date: date | None = None,
) -> AccountBalance:
    """Current balance, or the balance after entry `as_of_sequence`, or at the end of the
    effective date `as_of_date` (lines dated on or before it)."""
    if as_of_sequence is not None and as_of_date is not None:
        raise LedgerRejection(
            RejectCode.VALIDATION_FAILED, "give as_of_sequence or as_of, not both"
        )
    if as_of_sequence is None and as_of_date is None:
        found = tx.get_account_with_balance(account_id)
        if found is None:
            raise _account_not_found(account_id)
        account, current = found
        if current is None:
            raise InvariantViolation(f"account {account_id} has no balance row")
        return AccountBalance(account, current)
    account = get_account(tx, account_id)
    if as_of_sequence is not None:
        balance = tx.balance_as_of_sequence(account_id, as_of_sequence)
    else:
        assert as_of_date is not None
        balance = tx.balance_as_of_date(account_id, as_of_date)
    return AccountBalance(account, balance, as_of_sequence, as_of_date)


def _account_not_found(account_id: UUID) -> LedgerRejection:
    return LedgerRejection(
        RejectCode.ACCOUNT_NOT_FOUND,
        f"account {account_id} does not exist",
        context={"account_id": str(account_id)},
    )
