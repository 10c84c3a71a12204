"""Booking a batch of entries: in order, against running balances, linked chains all or nothing.

Each entry is booked against the balances left by the entries before it that book, so an entry
refused (for an overdraft, say) counts for nothing in the entries after it. TigerBeetle's linked
flag: an entry with `linked` is linked with the next one; a chain ends at the first entry without
the flag. If any entry of a chain is refused, the chain books nothing: the first refused entry
keeps its own code and the chain's other entries are refused with `linked_entry_failed`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from finance.domain.entries import AccountState, EntryDraft, LinePosting, book, line_postings
from finance.domain.errors import LedgerRejection, RejectCode


@dataclass(frozen=True)
class Booked:
    """An entry that books: its draft and each line's posting on its account."""

    draft: EntryDraft
    line_postings: tuple[LinePosting, ...]


# What each entry of a batch is before booking: a draft to book, a refusal decided before
# booking (a draft that cannot be built, a reused idempotency key), or None for an entry that
# was posted by an earlier request (a replay: nothing to book, and it does not fail its chain).
Pending = EntryDraft | LedgerRejection | None
Outcome = Booked | LedgerRejection | None


def linked_chains(linked: Sequence[bool]) -> list[range]:
    """The positions of each chain, in order; an unlinked entry is a chain of one."""
    if linked and linked[-1]:
        last = len(linked) - 1
        raise LedgerRejection(
            RejectCode.LINKED_CHAIN_OPEN,
            f"entry {last} is linked to the next entry, but it is the last of the batch",
            context={"index": str(last)},
        )
    chains: list[range] = []
    start = 0
    for index, flag in enumerate(linked):
        if not flag:
            chains.append(range(start, index + 1))
            start = index + 1
    return chains


def book_batch(
    pending: Sequence[Pending], linked: Sequence[bool], states: Mapping[UUID, AccountState]
) -> list[Outcome]:
    """The outcome of every entry, in order. `states` are the locked accounts of the whole
    batch as they are before it."""
    if len(pending) != len(linked):
        raise ValueError("one linked flag per entry")
    running = dict(states)
    outcomes: list[Outcome] = []
    for chain in linked_chains(linked):
        # The chain books into its own overlay, merged only if every entry of it books.
        overlay: dict[UUID, AccountState] = {}
        booked: list[Outcome] = []
        for index in chain:
            outcome = _book_one(pending[index], running, overlay)
            if isinstance(outcome, LedgerRejection):
                outcomes.extend(_chain_refused(chain, index, outcome, pending))
                break
            booked.append(outcome)
        else:
            running.update(overlay)
            outcomes.extend(booked)
    return outcomes


def _book_one(
    item: Pending, running: Mapping[UUID, AccountState], overlay: dict[UUID, AccountState]
) -> Outcome:
    if not isinstance(item, EntryDraft):
        return item
    # Only the draft's own accounts: book() looks at every state it is given.
    states = {
        account_id: overlay.get(account_id) or running[account_id]
        for account_id in item.account_ids
        if account_id in overlay or account_id in running
    }
    try:
        after = book(item, states)
    except LedgerRejection as refused:
        return refused
    postings = line_postings(item, states)
    for account_id, balance in after.items():
        overlay[account_id] = AccountState(states[account_id].account, balance)
    return Booked(item, postings)


def _chain_refused(
    chain: range, failed: int, refused: LedgerRejection, pending: Sequence[Pending]
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for index in chain:
        if index == failed:
            outcomes.append(refused)
        elif pending[index] is None:
            outcomes.append(None)  # posted by an earlier request: nothing here can undo it
        else:
            outcomes.append(
                LedgerRejection(
                    RejectCode.LINKED_ENTRY_FAILED,
                    f"entry {failed} of this linked chain was refused ({refused.code.value});"
                    " nothing of the chain was posted",
                    context={"failed_index": str(failed)},
                )
            )
    return outcomes
