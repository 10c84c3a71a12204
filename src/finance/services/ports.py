"""The ports the use cases depend on. PostgreSQL implements them in `finance.adapters.postgres`.

A `LedgerTransaction` is one database transaction scoped to one tenant: everything a use case
does through it commits together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from finance.domain.accounts import Account, Balance
from finance.domain.entries import AccountState, PostedEntry
from finance.domain.invoicing.fiscal import Series
from finance.domain.invoicing.invoice import Invoice, InvoiceEvent
from finance.domain.invoicing.settings import InvoiceSettings
from finance.domain.invoicing.tax import TaxCode
from finance.proofs.checkpoint import CheckpointBody, SignedCheckpoint
from finance.proofs.signatures import Signature
from finance.proofs.tiles import Subtree

T = TypeVar("T")


@dataclass(frozen=True)
class ChainHead:
    next_sequence: int
    head_hash: bytes
    head_posted_at: datetime | None


@dataclass(frozen=True)
class StoredResponse:
    """The first response to an idempotent request, kept forever as it was sent: for requests
    whose response cannot be rebuilt (an account as it was opened, a checkpoint and the state
    of its signer), and for postings stored before migration 0008."""

    request_hash: bytes
    status_code: int
    body: bytes


@dataclass(frozen=True)
class StoredEntry:
    """A key whose first request posted `entry_id`: the response is rebuilt from that entry,
    which never changes, instead of being kept as a copy (migration 0008)."""

    request_hash: bytes
    entry_id: UUID


# What a key used before holds.
Stored = StoredResponse | StoredEntry


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


@dataclass(frozen=True)
class InvoiceFilter:
    status: str | None = None
    customer_name: str | None = None
    fiscal_year: str | None = None
    issued_from: date | None = None
    issued_to: date | None = None


class InvoiceRepository(Protocol):
    """Invoices of the transaction's tenant, in the same database transaction as its ledger:
    an invoice's events, its read model and the entries it posts commit together."""

    def settings(self) -> InvoiceSettings | None: ...
    def save_settings(self, settings: InvoiceSettings, now: datetime) -> None: ...
    def tax_codes(self) -> dict[str, TaxCode]: ...
    def save_tax_code(self, code: TaxCode, now: datetime) -> None: ...
    def events(self, invoice_id: UUID) -> list[InvoiceEvent]:
        """The invoice's stream, oldest first (empty: no such invoice in this tenant)."""
        ...

    def append(
        self, invoice_id: UUID, version: int, events: Sequence[InvoiceEvent], at: datetime
    ) -> None:
        """Append `events` after event `version`, refusing (invoice_version_conflict) when
        another transaction appended after it first."""
        ...

    def project(self, invoice: Invoice, at: datetime) -> None:
        """Write the read model's row of `invoice` (insert or replace)."""
        ...

    def list_invoices(
        self, flt: InvoiceFilter, after: UUID | None, limit: int
    ) -> list[dict[str, Any]]:
        """Read-model rows (the columns of InvoiceSummaryOut) in id order."""
        ...

    def open_invoices(self) -> list[Invoice]:
        """Issued invoices that still owe something (from the read model)."""
        ...

    def invoices_touching(self, start: date, end: date) -> list[Invoice]:
        """Invoices issued or voided between the two dates (from the read model)."""
        ...

    def invoice_ids(self) -> list[UUID]:
        """Every invoice with a stream, in id order."""
        ...

    def next_number(self, series: Series, location: str, fiscal_year: str) -> int:
        """The next number of the series, gap-free: taken if and only if this commits."""
        ...


class LedgerTransaction(Protocol):
    tenant_id: str

    @property
    def invoices(self) -> InvoiceRepository: ...

    # Tenants and the chain.
    def tenant_exists(self) -> bool: ...
    def insert_tenant(self, name: str, created_at: datetime, genesis_hash: bytes) -> None: ...
    def lock_chain_head(self) -> ChainHead: ...

    # Idempotency. A claim is the key's row, inserted at the start of the request's
    # transaction: a concurrent request with the same key waits on it until we commit (then
    # it replays) or roll back (then the key is its).
    def claim_idempotency_key(
        self, key: str, request_hash: bytes, *, entry_id: UUID | None = None
    ) -> Stored | None:
        """Claim `key` for this transaction, or return what it holds if it was used before.
        With `entry_id` the claim is complete as written: it refers to the entry this
        transaction posts under that id (the database refuses to commit it otherwise).
        Without, `complete_idempotency_key` stores the response before commit."""
        ...

    def complete_idempotency_key(self, key: str, status_code: int, body: bytes) -> None: ...
    def claim_idempotency_keys(
        self, claims: Sequence[tuple[str, bytes, UUID]]
    ) -> dict[str, Stored]:
        """Claim each (key, request hash, entry id) not used before, in key order, each for
        the entry this transaction posts under that id; return what the keys that were used
        before hold (waiting, like the single claim, for a concurrent holder of one to
        finish)."""
        ...

    def release_idempotency_keys(self, keys: Sequence[str]) -> None:
        """Give back keys claimed in this transaction for entries it will not post (a batch's
        refused entries), so that they store nothing, like a refused single request."""
        ...

    # Accounts.
    def insert_account(self, account: Account) -> None: ...
    def get_account(self, account_id: UUID, *, for_update: bool = False) -> Account | None: ...
    def get_account_by_code(self, code: str) -> Account | None: ...
    def close_account(self, account_id: UUID, closed_at: datetime) -> None: ...
    def list_accounts(self, after_code: str | None, limit: int) -> list[Account]: ...
    def lock_accounts(self, account_ids: Sequence[UUID]) -> dict[UUID, AccountState]: ...
    def get_balance(self, account_id: UUID) -> Balance | None: ...
    def get_account_with_balance(
        self, account_id: UUID
    ) -> tuple[Account, Balance | None] | None: ...
    def balance_as_of_sequence(self, account_id: UUID, sequence: int) -> Balance: ...
    def balance_as_of_date(self, account_id: UUID, as_of: date) -> Balance: ...

    # Entries.
    def insert_entries(self, entries: Sequence[PostedEntry]) -> None:
        """Append entries (consecutive, in chain order) with their lines, each line with its
        account's posting, together."""
        ...

    def get_entry(self, entry_id: UUID) -> PostedEntry | None: ...
    def get_entries(self, entry_ids: Collection[UUID]) -> dict[UUID, PostedEntry]:
        """The entries of `entry_ids` that exist, by id, in two statements however many."""
        ...

    def find_reversal(self, entry_id: UUID) -> UUID | None: ...
    def list_entries(
        self, flt: EntryFilter, after_sequence: int | None, limit: int
    ) -> list[PostedEntry]: ...
    def account_lines(
        self, account_id: UUID, after_posting: int | None, limit: int
    ) -> list[AccountLine]: ...
    def trial_balance(self) -> tuple[list[CurrencyTotals], list[AccountTotals]]: ...


class TransactionRunner(Protocol):
    """Runs a unit of work in one tenant transaction, retrying documented races."""

    def __call__(self, tenant_id: str, work: Callable[[LedgerTransaction], T]) -> T: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# Proofs: the Merkle log, checkpoints and their signatures (services/proofs.py) --------------


@dataclass(frozen=True)
class ProofHead:
    """Where a tenant's Merkle log is sealed to: its last checkpoint and the frontier of
    [0, tree_size) that lets the next root be computed from the new leaves alone."""

    tree_size: int
    next_seq: int
    root_hash: bytes | None
    last_body_hash: bytes | None
    last_issued_at: datetime | None
    frontier: tuple[bytes, ...]


@dataclass(frozen=True)
class LeafSource:
    """One entry as the Merkle log sees it: its chain hash (the leaf is SHA-256(0x00 || hash))
    and when it was posted (for the checkpoint lag)."""

    sequence: int
    hash: bytes
    posted_at: datetime


@dataclass(frozen=True)
class EntryRecord:
    """One entry as an auditor recomputes it: the canonical body (docs/proofs.md 3.2), its
    chain hash and the previous entry's (the genesis hash for entry 0)."""

    sequence: int
    entry_id: UUID
    body: dict[str, Any]
    hash: bytes
    prev_hash: bytes
    posted_at: datetime


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint as stored: signed (`signatures` set) or waiting for the signer (None).
    `covers_posted_at` is the posting time of the newest entry it covers."""

    body: CheckpointBody
    signatures: tuple[Signature, ...] | None
    signed_at: datetime | None
    covers_posted_at: datetime

    @property
    def seq(self) -> int:
        return self.body.seq

    @property
    def tree_size(self) -> int:
        return self.body.tree_size

    @property
    def is_signed(self) -> bool:
        return self.signatures is not None

    def envelope(self) -> SignedCheckpoint:
        """{body, signatures}; a pending checkpoint has no signatures (and verifies as such)."""
        return SignedCheckpoint(self.body, self.signatures or ())


@dataclass(frozen=True)
class ProofBacklog:
    """A tenant with work for a sealer: entries past its last checkpoint, unsigned ones."""

    tenant_id: str
    unsealed_entries: int
    unsigned_checkpoints: int


@dataclass(frozen=True)
class UnsignedSummary:
    """Checkpoints waiting for the signer, over all tenants."""

    count: int
    oldest_issued_at: datetime | None


class ProofTransaction(Protocol):
    """One database transaction scoped to one tenant, over its Merkle log and checkpoints."""

    tenant_id: str

    # The log and its head.
    def lock_proof_head(self, *, wait: bool) -> ProofHead | None:
        """The head, locked until the transaction ends; None if another transaction holds it
        and `wait` is false. LedgerRejection(TENANT_NOT_FOUND) if the tenant has no ledger."""
        ...

    def ledger_size(self) -> int: ...
    def leaf_sources(self, start: int, stop: int) -> list[LeafSource]: ...
    def entry_hashes(self, sequences: Collection[int]) -> dict[int, bytes]: ...
    def merkle_nodes(self, subtrees: Collection[Subtree]) -> dict[Subtree, bytes]: ...
    def insert_merkle_nodes(self, nodes: Sequence[tuple[Subtree, bytes]]) -> None: ...
    def set_frontier(self, frontier: Sequence[bytes]) -> None: ...

    # Checkpoints.
    def insert_checkpoint(
        self, body: CheckpointBody, body_bytes: bytes, body_hash: bytes
    ) -> None: ...

    def insert_consistency(self, from_seq: int, proof: Sequence[bytes]) -> None: ...
    def stored_consistency(self, to_seq: int) -> list[bytes] | None: ...
    def get_checkpoint(self, seq: int) -> StoredCheckpoint | None: ...
    def latest_checkpoint(self, *, signed_only: bool) -> StoredCheckpoint | None: ...
    def first_signed_checkpoint(self, min_tree_size: int) -> StoredCheckpoint | None: ...
    def list_checkpoints(self, before_seq: int | None, limit: int) -> list[StoredCheckpoint]: ...
    def unsigned_checkpoints(self, limit: int) -> list[StoredCheckpoint]: ...
    def store_signatures(
        self, seq: int, signatures: Sequence[Signature], signed_at: datetime
    ) -> bool:
        """False if the checkpoint is signed already or its predecessor is not yet."""
        ...

    # Entries.
    def entry_sequence(self, entry_id: UUID) -> int | None: ...
    def entry_records(self, start: int, stop: int) -> list[EntryRecord]: ...
    def ledger_created_at(self) -> datetime:
        """When the ledger was opened: what its genesis hash is made of."""
        ...

    def first_sequence_posted_at_or_after(self, moment: datetime) -> int:
        """The first entry posted at or after `moment`; the ledger size if there is none."""
        ...


class ProofStore(Protocol):
    """Runs proof work in one tenant transaction; and the two cross-tenant views a sealer and
    the readiness probe need (tenant ids and counts only)."""

    def __call__(self, tenant_id: str, work: Callable[[ProofTransaction], T]) -> T: ...
    def backlog(self, tenants_max: int) -> list[ProofBacklog]: ...
    def unsigned_summary(self) -> UnsignedSummary: ...
