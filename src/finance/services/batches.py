"""Posting a batch of entries: one transaction, one idempotency key per entry, few round trips.

The transaction, in this order (the single posting's order, for many entries at once):

1. Whole-request checks, before any database work: at least one entry and at most the
   configured maximum, well-formed keys, no key twice, no linked chain left open, a bounded
   number of lines. Each entry's draft is built; a draft that cannot be (unbalanced, unknown
   currency...) is that entry's refusal, not the batch's.
2. Claim every key in one statement, in key order. A key used before replays its stored
   response if the entry is the same request as the first one (the fingerprint of the
   single-entry `POST /v1/journal` with the entry's body), else the entry is refused with
   `idempotency_key_reused`. Keys are shared with single postings: either may replay the other.
3. Lock every account of the batch in one statement (sorted by id), book every entry in order
   against the running balances (`domain.batches`), then lock the chain head.
4. Give back the claims of the refused entries, so that they store nothing, as a refused single
   posting stores nothing.
5. One statement appends the entries with consecutive sequences, each hash chained to the one
   before, with their lines and their stored responses.

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
from uuid import UUID, uuid4

from finance import limits
from finance.domain.batches import Booked, Pending, book_batch, linked_chains
from finance.domain.entries import EntryDraft, PostedEntry
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services.idempotency import check_key
from finance.services.ledger import append_entries, chained_entry, posting_time
from finance.services.ports import CompletedResponse, LedgerTransaction, StoredResponse


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
    """What became of one entry: created or replayed with the response stored under its key
    (the bytes a single posting returns), or refused with the reason."""

    status: BatchStatus
    body: bytes | None = None
    rejection: LedgerRejection | None = None


# The response to store for a posted entry: (status code, body), as a single posting stores.
Respond = Callable[[PostedEntry], tuple[int, bytes]]


def post_batch(
    tx: LedgerTransaction,
    entries: Sequence[BatchEntry],
    now: datetime,
    *,
    entries_max: int,
    respond: Respond,
    new_id: Callable[[], UUID] = uuid4,
) -> list[BatchResult]:
    """Post what can be posted of `entries`, in order; one result per entry, in order."""
    pending = _prepare(entries, now.date(), entries_max)
    stored = tx.claim_idempotency_keys([(entry.key, entry.request_hash) for entry in entries])
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
        (entry.key, outcome)
        for entry, outcome in zip(entries, outcomes, strict=True)
        if isinstance(outcome, Booked)
    ]
    bodies = iter(_append(tx, booked, now, respond, new_id))
    results: list[BatchResult] = []
    for entry, outcome in zip(entries, outcomes, strict=True):
        if isinstance(outcome, Booked):
            results.append(BatchResult(BatchStatus.CREATED, body=next(bodies)))
        elif isinstance(outcome, LedgerRejection):
            results.append(BatchResult(BatchStatus.REFUSED, rejection=outcome))
        else:
            results.append(BatchResult(BatchStatus.REPLAYED, body=stored[entry.key].body))
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


def _replay_or_reused(entry: BatchEntry, stored: StoredResponse) -> Pending:
    if stored.request_hash == entry.request_hash:
        return None
    return LedgerRejection(
        RejectCode.IDEMPOTENCY_KEY_REUSED,
        f"idempotency key {entry.key!r} was already used with a different request",
    )


def _append(
    tx: LedgerTransaction,
    booked: Sequence[tuple[str, Booked]],
    now: datetime,
    respond: Respond,
    new_id: Callable[[], UUID],
) -> list[bytes]:
    """Chain the booked entries after the head and write them; their response bodies."""
    if not booked:
        return []
    head = tx.lock_chain_head()
    posted_at = posting_time(head, now)
    entries: list[PostedEntry] = []
    prev_hash = head.head_hash
    for offset, (_, item) in enumerate(booked):
        entry = chained_entry(
            tx.tenant_id,
            item.draft,
            new_id(),
            sequence=head.next_sequence + offset,
            prev_hash=prev_hash,
            posted_at=posted_at,
            line_postings=item.line_postings,
        )
        entries.append(entry)
        prev_hash = entry.hash
    responses = [
        CompletedResponse(key, *respond(entry))
        for (key, _), entry in zip(booked, entries, strict=True)
    ]
    append_entries(tx, entries, responses)
    return [response.body for response in responses]
