"""Properties of the pure accounting core: balance checking, booking and reversals."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.domain.accounts import Account, AccountType, Balance, Side
from finance.domain.entries import (
    REVERSAL_TYPE,
    AccountState,
    EntryDraft,
    PostedEntry,
    PostedLine,
    book,
    reversal_draft,
)
from finance.domain.errors import LedgerRejection, RejectCode
from tests.property.strategies import (
    BASE_DATE,
    AbstractLine,
    LedgerUniverse,
    account_types,
    balanced_lines,
    starting_balances,
    unbalanced_lines,
)

UNIVERSE = LedgerUniverse.fixed()
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def draft_of(lines: tuple[AbstractLine, ...]) -> EntryDraft:
    return EntryDraft(lines=UNIVERSE.lines(lines), effective_date=BASE_DATE)


def net_per_currency(draft: EntryDraft) -> dict[str, int]:
    net: dict[str, int] = defaultdict(int)
    for line in draft.lines:
        net[line.currency] += line.amount_minor if line.side is Side.DEBIT else -line.amount_minor
    return dict(net)


def account_for(account_id: UUID, currency: str, account_type: AccountType) -> Account:
    return Account(
        id=account_id,
        tenant_id="t-prop",
        code=f"acc-{account_id.int}",
        name="Property account",
        type=account_type,
        currency=currency,
        debits_must_not_exceed_credits=False,
        credits_must_not_exceed_debits=False,
        closed=False,
        metadata={},
        created_at=NOW,
    )


@st.composite
def account_states(draw: st.DrawFn) -> dict[UUID, AccountState]:
    """Every account of the fixed universe, with a random type and starting balance."""
    return {
        account_id: AccountState(
            account_for(account_id, currency, draw(account_types())), draw(starting_balances())
        )
        for (currency, _), account_id in UNIVERSE.ids.items()
    }


def posted_from(draft: EntryDraft) -> PostedEntry:
    return PostedEntry(
        id=uuid4(),
        tenant_id="t-prop",
        sequence=0,
        hash=b"\x01" * 32,
        prev_hash=b"\x00" * 32,
        posted_at=NOW,
        effective_date=draft.effective_date,
        type=draft.type,
        memo=draft.memo,
        source=draft.source,
        source_id=draft.source_id,
        metadata=draft.metadata,
        reversal_of=None,
        lines=tuple(
            PostedLine(ln.account_id, ln.side, ln.amount_minor, ln.currency, 0, 0, 0)
            for ln in draft.lines
        ),
    )


@given(balanced_lines())
def test_balanced_lines_always_construct(lines: tuple[AbstractLine, ...]) -> None:
    draft = draft_of(lines)
    assert len(draft.lines) == len(lines)
    assert all(net == 0 for net in net_per_currency(draft).values())


@given(unbalanced_lines())
def test_changing_one_amount_unbalances_the_entry(
    case: tuple[tuple[AbstractLine, ...], str],
) -> None:
    lines, broken_currency = case
    with pytest.raises(LedgerRejection) as caught:
        draft_of(lines)
    assert caught.value.code is RejectCode.UNBALANCED_ENTRY
    assert caught.value.context == {"currency": broken_currency}


@given(balanced_lines())
def test_reversal_draft_of_a_balanced_entry_is_balanced(
    lines: tuple[AbstractLine, ...],
) -> None:
    original = posted_from(draft_of(lines))
    mirror = reversal_draft(original, effective_date=BASE_DATE, memo=None)
    assert mirror.type == REVERSAL_TYPE
    assert mirror.reversal_of == original.id
    assert all(net == 0 for net in net_per_currency(mirror).values())
    assert len(mirror.lines) == len(original.lines)
    for before, after in zip(original.lines, mirror.lines, strict=True):
        assert after.side is before.side.opposite
        assert (after.account_id, after.amount_minor, after.currency) == (
            before.account_id,
            before.amount_minor,
            before.currency,
        )


@settings(max_examples=200)
@given(balanced_lines(), account_states())
def test_booking_an_entry_then_its_reversal_restores_every_account(
    lines: tuple[AbstractLine, ...], states: dict[UUID, AccountState]
) -> None:
    draft = draft_of(lines)
    after = book(draft, states)

    # The entry moves exactly the accounts on its lines, by exactly their amounts.
    touched = {line.account_id for line in draft.lines}
    assert set(after) == touched
    for account_id in touched:
        own = [ln for ln in draft.lines if ln.account_id == account_id]
        before = states[account_id].balance
        debited = sum(ln.amount_minor for ln in own if ln.side is Side.DEBIT)
        credited = sum(ln.amount_minor for ln in own if ln.side is Side.CREDIT)
        assert after[account_id] == Balance(
            before.debits_posted + debited,
            before.credits_posted + credited,
            before.posting_sequence + len(own),
        )

    mid = {
        account_id: AccountState(state.account, after.get(account_id, state.balance))
        for account_id, state in states.items()
    }
    mirror = reversal_draft(posted_from(draft), effective_date=BASE_DATE, memo=None)
    final = book(mirror, mid)
    assert set(final) == touched
    for account_id in touched:
        before = states[account_id].balance
        end = final[account_id]
        assert end.debits_posted - end.credits_posted == (
            before.debits_posted - before.credits_posted
        )
        account_type = states[account_id].account.type
        assert end.signed_for(account_type) == before.signed_for(account_type)
        # Both sides grow by the same amount: the reversal never deletes history.
        assert end.debits_posted - before.debits_posted == end.credits_posted - (
            before.credits_posted
        )
        lines_on_account = sum(1 for ln in draft.lines if ln.account_id == account_id)
        assert end.posting_sequence == before.posting_sequence + 2 * lines_on_account


@given(balanced_lines(), st.randoms(use_true_random=False))
def test_booking_result_does_not_depend_on_line_order(
    lines: tuple[AbstractLine, ...], rnd: random.Random
) -> None:
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    states = {
        account_id: AccountState(
            account_for(account_id, currency, AccountType.ASSET), Balance(0, 0, 0)
        )
        for (currency, _), account_id in UNIVERSE.ids.items()
    }
    assert book(draft_of(lines), states) == book(draft_of(tuple(shuffled)), states)
