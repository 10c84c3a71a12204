"""The ledger as read from the database at the end of a run, after the service stopped:
pure values, no I/O (`reader` fills them in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from uuid import UUID

from finance.proofs.checkpoint import SignedCheckpoint
from finance.torture.history import LineKey


@dataclass(frozen=True)
class StoredEntry:
    """A journal entry; `key` is the idempotency key its client put in `source_id`."""

    entry_id: UUID
    sequence: int
    key: str | None
    lines: tuple[LineKey, ...]


@dataclass(frozen=True)
class StoredAccount:
    account_id: str
    code: str
    currency: str
    debits_posted: int
    credits_posted: int
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False


@dataclass(frozen=True)
class Snapshot:
    """`idempotency`: each stored key and the entry it names. `integrity`: the result of every
    check `finance check` runs (check name, problem or None). `checkpoints`: the signed
    checkpoints in seq order; `unsigned_checkpoints` those still waiting for the signer."""

    entries: tuple[StoredEntry, ...]
    accounts: tuple[StoredAccount, ...]
    idempotency: Mapping[str, UUID | None] = field(default_factory=dict)
    integrity: tuple[tuple[str, str | None], ...] = ()
    checkpoints: tuple[SignedCheckpoint, ...] = ()
    unsigned_checkpoints: int = 0
