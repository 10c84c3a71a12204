"""Posting a batch of entries: one transaction, one idempotency key per entry, few round trips.

The transaction, in this order (the single posting's order, for many entries at once):

1. Whole-request checks, before any database work: at least one entry and at most the
   configured maximum, well-formed keys, no key twice, no linked chain left open, a bounded
   number of lines. Each entry's draft is built; a draft that cannot be (unbalanced, unknown
   currency...) is that entry's refusal, not the batch's.
2. Give every entry its id, and claim every key in one statement, in key order, each for the
   entry with its id (services/idempotency.py: the key's row is written once, complete). A key
   used before replays the first response if the entry is the same request as the first one
   (the fingerprint of the single-entry `POST /v1/journal` with the entry's body), else the
   entry is refused with `idempotency_key_reused`. Keys are shared with single postings:
   either may replay the other.
3. Lock every account of the batch in one statement (sorted by id), book every entry in order
   against the running balances (`domain.batches`), then lock the chain head.
4. Give back the claims of the refused entries, so that they store nothing, as a refused single
   posting stores nothing.
5. One statement appends the entries with consecutive sequences, each hash chained to the one
   before, with their lines. Replayed entries are read back (two statements, if any) and
   rendered as their first response was.

Everything the database checks at commit (balance per currency, no overdraft, the chain) holds
for every entry written, because a refused entry is never written: the triggers stay a backstop
that should never fire. So one transaction for the whole batch is safe: a linked chain's
all-or-nothing is decided before anything is written, and an unexpected failure (a trigger,
the database) rolls the whole batch back, leaving every key free for a retry.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from finance import limits
from finance.domain.batches import Booked, Pending, book_batch, linked_chains
from finance.domain.entries import EntryDraft, PostedEntry
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services.idempotency import Respond, check_key, respond_again
from finance.services.ids import new_entry_id
from finance.services.ledger import append_entries, chained_entry, posting_time
from finance.services.ports import LedgerTransaction, Stored, StoredEntry, StoredResponse


@dataclass(frozen=True)
class BatchEntry:
    """One entry of a batch: its key, the fingerprint of its request, whether it is linked to
    the next entry, and how to build its draft for an effective date of "today" (which may
    refuse it)."""

    key: str
    request_hash: bytes
    draft: Callable[[date], EntryDraft]
    linked: bool = False


class BatchStatus(enum.StrEnum):
    CREATED = "created"
    REPLAYED = "replayed"
    REFUSED = "refused"


@dataclass(frozen=True)
class BatchResult:
    """What became of one entry: created or replayed with the response to its key (the bytes
    a single posting returns), or refused with the reason."""

    status: BatchStatus
    body: bytes | None = None
    rejection: LedgerRejection | None = None


def post_batch(
    tx: LedgerTransaction,
    entries: Sequence[BatchEntry],
    now: datetime,
    *,
    entries_max: int,
    respond: Respond,
    new_id: Callable[[], UUID] = new_entry_id,
) -> list[BatchResult]:
    """Post what can be posted of `entries`, in order; one result per entry, in order.
    `respond` renders a posted entry's response, as a single posting does."""
    pending = _prepare(entries, now.date(), entries_max)
    ids = [new_id() for _ in entries]
    stored = tx.claim_idempotency_keys(
        [(entry.key, entry.request_hash, id_) for entry, id_ in zip(entries, ids, strict=True)]
    )
    for index, entry in enumerate(entries):
        if entry.key in stored:
            pending[index] = _replay_or_reused(entry, stored[entry.key])
    drafts = [item for item in pending if isinstance(item, EntryDraft)]
    accounts = sorted({account_id for draft in drafts for account_id in draft.account_ids})
    states = tx.lock_accounts(accounts) if accounts else {}
    outcomes = book_batch(pending, [entry.linked for entry in entries], states)
    refused = [
        entry.key
        for entry, outcome in zip(entries, outcomes, strict=True)
        if isinstance(outcome, LedgerRejection) and entry.key not in stored
    ]
    if refused:
        tx.release_idempotency_keys(refused)
    booked = [
        (id_, outcome)
        for id_, outcome in zip(ids, outcomes, strict=True)
        if isinstance(outcome, Booked)
    ]
    bodies = iter(_append(tx, booked, now, respond))
    again = [entry for entry, outcome in zip(entries, outcomes, strict=True) if outcome is None]
    replayed = _replayed(tx, again, stored, respond)
    results: list[BatchResult] = []
    for entry, outcome in zip(entries, outcomes, strict=True):
        if isinstance(outcome, Booked):
            results.append(BatchResult(BatchStatus.CREATED, body=next(bodies)))
        elif isinstance(outcome, LedgerRejection):
            results.append(BatchResult(BatchStatus.REFUSED, rejection=outcome))
        else:
            results.append(BatchResult(BatchStatus.REPLAYED, body=replayed[entry.key]))
    return results


def _prepare(entries: Sequence[BatchEntry], today: date, entries_max: int) -> list[Pending]:
    """The whole-request checks, and each entry's draft or the reason it has none."""
    if not entries:
        raise LedgerRejection(RejectCode.VALIDATION_FAILED, "a batch needs at least one entry")
    if len(entries) > entries_max:
        raise LedgerRejection(
            RejectCode.TOO_MANY_ENTRIES,
            f"a batch has at most {entries_max} entries, got {len(entries)}",
        )
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        try:
            check_key(entry.key)
        except LedgerRejection as exc:
            raise LedgerRejection(
                exc.code, f"entry {index}: {exc.detail}", context={"index": str(index)}
            ) from exc
        if entry.key in first_index:
            raise LedgerRejection(
                RejectCode.DUPLICATE_IDEMPOTENCY_KEY,
                f"entries {first_index[entry.key]} and {index} have the same idempotency key",
                context={"index": str(index)},
            )
        first_index[entry.key] = index
    linked_chains([entry.linked for entry in entries])
    pending = [_draft(entry, today) for entry in entries]
    lines_max = entries_max * limits.BATCH_LINES_PER_ENTRY_AVG
    lines = sum(len(item.lines) for item in pending if isinstance(item, EntryDraft))
    if lines > lines_max:
        raise LedgerRejection(
            RejectCode.TOO_MANY_LINES, f"a batch has at most {lines_max} lines, got {lines}"
        )
    return pending


def _draft(entry: BatchEntry, today: date) -> Pending:
    try:
        return entry.draft(today)
    except LedgerRejection as refused:
        return refused


def _replay_or_reused(entry: BatchEntry, stored: Stored) -> Pending:
    if stored.request_hash == entry.request_hash:
        return None
    return LedgerRejection(
        RejectCode.IDEMPOTENCY_KEY_REUSED,
        f"idempotency key {entry.key!r} was already used with a different request",
    )


def _replayed(
    tx: LedgerTransaction,
    entries: Sequence[BatchEntry],
    stored: dict[str, Stored],
    respond: Respond,
) -> dict[str, bytes]:
    """The first response of each replayed entry, by key: as stored, or rendered again from
    the entry the key refers to (all of them read in one go)."""
    refs = [item for entry in entries if isinstance(item := stored[entry.key], StoredEntry)]
    rendered = respond_again(tx, refs, respond) if refs else {}
    bodies: dict[str, bytes] = {}
    for entry in entries:
        item = stored[entry.key]
        bodies[entry.key] = (
            item.body if isinstance(item, StoredResponse) else rendered[item.entry_id][1]
        )
    return bodies


def _append(
    tx: LedgerTransaction,
    booked: Sequence[tuple[UUID, Booked]],
    now: datetime,
    respond: Respond,
) -> list[bytes]:
    """Chain the booked entries, under the ids their keys were claimed for, after the head
    and write them; their response bodies."""
    if not booked:
        return []
    head = tx.lock_chain_head()
    posted_at = posting_time(head, now)
    entries: list[PostedEntry] = []
    prev_hash = head.head_hash
    for offset, (entry_id, item) in enumerate(booked):
        entry = chained_entry(
            tx.tenant_id,
            item.draft,
            entry_id,
            sequence=head.next_sequence + offset,
            prev_hash=prev_hash,
            posted_at=posted_at,
            line_postings=item.line_postings,
        )
        entries.append(entry)
        prev_hash = entry.hash
    return [respond(entry)[1] for entry in append_entries(tx, entries)]
