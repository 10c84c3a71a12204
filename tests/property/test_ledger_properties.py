"""Properties of the ledger on the real PostgreSQL: balances equal the replay of the journal.

Each example opens a fresh tenant (posted rows can never be deleted, so tenants are how
examples stay apart), posts random entries through the service layer one transaction at a
time, and compares what the database says with a replay of the lines computed here in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar
from uuid import UUID, uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountSpec, AccountType, Balance, Side
from finance.domain.entries import EntryDraft, Line, PostedEntry
from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.proofs.chain import ChainVerifier, entry_body, genesis_hash
from finance.services import ledger
from finance.services.ports import EntryFilter, LedgerTransaction
from tests.property.strategies import (
    BASE_DATE,
    DATE_SPAN_DAYS,
    SLOTS_PER_CURRENCY,
    AbstractEntry,
    AbstractLine,
    LedgerUniverse,
    account_types,
    balanced_entries,
    currency_sets,
    unbalanced_lines,
)

T = TypeVar("T")

DB_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# The replay: what every balance must be, computed from the posted lines alone ----------------


@dataclass(frozen=True)
class ReplayLine:
    effective_date: date
    account_id: UUID
    side: Side
    amount: int
    account_posting_sequence: int


@dataclass
class Replay:
    balances: dict[UUID, Balance]
    after_entry: list[dict[UUID, Balance]] = field(default_factory=list)
    lines: list[ReplayLine] = field(default_factory=list)

    def apply(self, lines: Sequence[Line], effective_date: date) -> None:
        for line in lines:
            before = self.balances[line.account_id]
            debit = line.amount_minor if line.side is Side.DEBIT else 0
            credit = line.amount_minor if line.side is Side.CREDIT else 0
            after = Balance(
                before.debits_posted + debit,
                before.credits_posted + credit,
                before.posting_sequence + 1,
            )
            self.balances[line.account_id] = after
            self.lines.append(
                ReplayLine(
                    effective_date,
                    line.account_id,
                    line.side,
                    line.amount_minor,
                    after.posting_sequence,
                )
            )
        self.after_entry.append(dict(self.balances))

    def as_of_date(self, account_id: UUID, as_of: date) -> Balance:
        own = [
            ln for ln in self.lines if ln.account_id == account_id and ln.effective_date <= as_of
        ]
        return Balance(
            sum(ln.amount for ln in own if ln.side is Side.DEBIT),
            sum(ln.amount for ln in own if ln.side is Side.CREDIT),
            # How many postings the balance includes (not a position: back-dated lines count).
            len(own),
        )


# A ledger opened for one example -------------------------------------------------------------


@dataclass
class OpenLedger:
    store: PostgresLedgerStore
    tenant_id: str
    created_at: datetime
    universe: LedgerUniverse
    currency_of: dict[UUID, str]
    replay: Replay
    limit_of: dict[UUID, str]
    posted: list[PostedEntry] = field(default_factory=list)

    def run(self, work: Callable[[LedgerTransaction], T]) -> T:
        return self.store(self.tenant_id, work)

    def post(self, entry: AbstractEntry) -> PostedEntry:
        lines = self.universe.lines(entry.lines)
        now = datetime.now(UTC)

        def work(tx: LedgerTransaction) -> PostedEntry:
            # The draft is built inside the transaction, as the API does.
            draft = EntryDraft(lines=lines, effective_date=entry.effective_date)
            return ledger.post_entry(tx, draft, uuid4(), now)

        posted = self.run(work)
        self.replay.apply(lines, entry.effective_date)
        self.posted.append(posted)
        return posted

    def reverse(self, original: PostedEntry) -> PostedEntry:
        now = datetime.now(UTC)
        reversal = self.run(lambda tx: ledger.reverse_entry(tx, original.id, uuid4(), now))
        mirrored = [
            Line(ln.account_id, ln.side.opposite, ln.amount_minor, ln.currency)
            for ln in original.lines
        ]
        self.replay.apply(mirrored, original.effective_date)
        self.posted.append(reversal)
        return reversal

    def journal_size(self) -> tuple[int, int]:
        """(entries listed, next sequence of the chain head): both must track every posting."""

        def read(tx: LedgerTransaction) -> tuple[int, int]:
            listed = len(tx.list_entries(EntryFilter(), None, 10_000))
            return listed, tx.lock_chain_head().next_sequence

        return self.run(read)

    def balances(self) -> dict[UUID, Balance | None]:
        return self.run(lambda tx: {a: tx.get_balance(a) for a in self.currency_of})


NO_LIMIT, NO_DEBIT_BALANCE, NO_CREDIT_BALANCE = "none", "no_debit_balance", "no_credit_balance"


def open_ledger(
    store: PostgresLedgerStore,
    currencies: Sequence[str],
    types: Sequence[AccountType],
    limits: Sequence[str] = (NO_LIMIT,),
) -> OpenLedger:
    tenant_id = f"p-{uuid4().hex[:12]}"
    created_at = datetime.now(UTC)
    ids = {(c, slot): uuid4() for c in currencies for slot in range(SLOTS_PER_CURRENCY)}

    def setup(tx: LedgerTransaction) -> None:
        ledger.create_tenant(tx, "Property tenant", created_at)
        for index, ((currency, slot), account_id) in enumerate(sorted(ids.items())):
            spec = AccountSpec(
                code=f"{currency}-{slot}",
                name=f"{currency} account {slot}",
                type=types[index % len(types)],
                currency=currency,
                debits_must_not_exceed_credits=limits[index % len(limits)] == NO_DEBIT_BALANCE,
                credits_must_not_exceed_debits=limits[index % len(limits)] == NO_CREDIT_BALANCE,
            )
            ledger.open_account(tx, spec, account_id, created_at)

    store(tenant_id, setup)
    ordered = [account_id for _, account_id in sorted(ids.items())]
    return OpenLedger(
        limit_of={a: limits[i % len(limits)] for i, a in enumerate(ordered)},
        store=store,
        tenant_id=tenant_id,
        created_at=created_at,
        universe=LedgerUniverse(ids),
        currency_of={account_id: currency for (currency, _), account_id in ids.items()},
        replay=Replay({account_id: Balance(0, 0, 0) for account_id in ids.values()}),
    )


@dataclass(frozen=True)
class Scenario:
    currencies: list[str]
    types: list[AccountType]
    entries: list[AbstractEntry]
    limits: list[str] = field(default_factory=lambda: [NO_LIMIT])


@st.composite
def scenarios(
    draw: st.DrawFn, min_entries: int = 1, max_entries: int = 8, *, with_limits: bool = False
) -> Scenario:
    currencies = draw(currency_sets())
    types = draw(st.lists(account_types(), min_size=1, max_size=SLOTS_PER_CURRENCY * 2))
    entries = draw(
        st.lists(balanced_entries(currencies), min_size=min_entries, max_size=max_entries)
    )
    limits = [NO_LIMIT]
    if with_limits:
        choices = st.sampled_from([NO_LIMIT, NO_DEBIT_BALANCE, NO_CREDIT_BALANCE])
        limits = draw(st.lists(choices, min_size=1, max_size=SLOTS_PER_CURRENCY * 2))
    return Scenario(currencies, types, entries, limits)


def assert_matches_replay(book: OpenLedger) -> None:
    """Every stored figure equals the Python replay of the posted lines."""
    replay = book.replay
    dates = [BASE_DATE + timedelta(days=d) for d in range(-1, DATE_SPAN_DAYS + 1)]
    count = len(replay.after_entry)

    def read(tx: LedgerTransaction) -> None:
        for account_id, expected in replay.balances.items():
            assert tx.get_balance(account_id) == expected, account_id
            # Point in time by sequence: after entry k, for every k.
            for k in range(count):
                assert (
                    tx.balance_as_of_sequence(account_id, k) == replay.after_entry[k][account_id]
                ), (account_id, k)
            # Point in time by effective date, including before the first and after the last.
            for day in dates:
                assert tx.balance_as_of_date(account_id, day) == replay.as_of_date(
                    account_id, day
                ), (account_id, day)

        currencies, accounts = tx.trial_balance()
        assert {t.currency for t in currencies} == set(book.currency_of.values())
        for totals in currencies:
            assert totals.debits_posted == totals.credits_posted, totals
            assert totals.debits_posted == sum(
                replay.balances[a].debits_posted
                for a, c in book.currency_of.items()
                if c == totals.currency
            )
        assert {a.account.id: a.balance for a in accounts} == replay.balances

    book.run(read)
    assert book.journal_size() == (count, count)


def assert_chain_verifies(book: OpenLedger) -> None:
    """The stored chain recomputes from the tenant's genesis to its head."""

    def read(tx: LedgerTransaction) -> None:
        entries = tx.list_entries(EntryFilter(), None, 10_000)
        verifier = ChainVerifier(genesis_hash(book.tenant_id, book.created_at))
        for entry in entries:
            body = entry_body(
                ledger_id=book.tenant_id,
                sequence=entry.sequence,
                entry_uuid=entry.id,
                posted_at=entry.posted_at,
                effective_date=entry.effective_date,
                entry_type=entry.type,
                memo=entry.memo,
                source=entry.source,
                source_id=entry.source_id,
                reversal_of=entry.reversal_of,
                postings=[
                    (ln.account_id, ln.side, ln.amount_minor, ln.currency) for ln in entry.lines
                ],
                metadata=entry.metadata,
            )
            assert verifier.feed(entry.sequence, entry.prev_hash, entry.hash, body) is None
        head = tx.lock_chain_head()
        assert verifier.finish(head.next_sequence, head.head_hash) is None

    book.run(read)


# Properties ----------------------------------------------------------------------------------


@DB_SETTINGS
@given(scenario=scenarios())
def test_balances_equal_the_replay_of_posted_entries(
    store: PostgresLedgerStore, scenario: Scenario
) -> None:
    book = open_ledger(store, scenario.currencies, scenario.types)
    for sequence, entry in enumerate(scenario.entries):
        posted = book.post(entry)
        assert posted.sequence == sequence
        # Each returned line carries the account's posting sequence after that line.
        expected = [ln.account_posting_sequence for ln in book.replay.lines[-len(entry.lines) :]]
        assert [ln.account_posting_sequence for ln in posted.lines] == expected
    assert_matches_replay(book)
    assert_chain_verifies(book)


@DB_SETTINGS
@given(
    scenario=scenarios(min_entries=0, max_entries=3),
    bad=st.data(),
)
def test_unbalanced_entries_are_refused_and_write_nothing(
    store: PostgresLedgerStore, scenario: Scenario, bad: st.DataObject
) -> None:
    book = open_ledger(store, scenario.currencies, scenario.types)
    for entry in scenario.entries:
        book.post(entry)
    before_size = book.journal_size()
    before_balances = book.balances()

    attempts = bad.draw(st.lists(unbalanced_lines(scenario.currencies), min_size=1, max_size=3))
    for abstract, broken_currency in attempts:
        lines = book.universe.lines(abstract)

        def work(tx: LedgerTransaction, lines: tuple[Line, ...] = lines) -> PostedEntry:
            draft = EntryDraft(lines=lines, effective_date=BASE_DATE)
            return ledger.post_entry(tx, draft, uuid4(), datetime.now(UTC))

        with pytest.raises(LedgerRejection) as caught:
            book.run(work)
        assert caught.value.code is RejectCode.UNBALANCED_ENTRY
        assert caught.value.context == {"currency": broken_currency}

    assert book.journal_size() == before_size
    assert book.balances() == before_balances
    assert_matches_replay(book)


def unchecked_draft(lines: tuple[Line, ...]) -> EntryDraft:
    """An EntryDraft that skipped its own checks: what a domain bug would let through."""
    draft = object.__new__(EntryDraft)
    fields: dict[str, object] = {
        "lines": lines,
        "effective_date": BASE_DATE,
        "type": "JOURNAL",
        "memo": None,
        "source": None,
        "source_id": None,
        "metadata": {},
        "reversal_of": None,
    }
    for name, value in fields.items():
        object.__setattr__(draft, name, value)
    return draft


def sqlstate_of(exc: BaseException) -> str | None:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, psycopg.Error) and current.sqlstate:
            return current.sqlstate
        current = current.__cause__
    return None


@settings(DB_SETTINGS, max_examples=15)
@given(scenario=scenarios(min_entries=0, max_entries=2), bad=st.data())
def test_database_refuses_unbalanced_entries_that_bypass_the_domain(
    store: PostgresLedgerStore, scenario: Scenario, bad: st.DataObject
) -> None:
    """Defence in depth: the commit-time trigger refuses an unbalanced entry and the whole
    transaction (entry, lines, balance moves, chain head) rolls back."""
    book = open_ledger(store, scenario.currencies, scenario.types)
    for entry in scenario.entries:
        book.post(entry)
    before_size = book.journal_size()
    before_balances = book.balances()

    abstract, _ = bad.draw(unbalanced_lines(scenario.currencies))
    draft = unchecked_draft(book.universe.lines(abstract))
    with pytest.raises((InvariantViolation, psycopg.Error)) as caught:
        book.run(lambda tx: ledger.post_entry(tx, draft, uuid4(), datetime.now(UTC)))
    assert sqlstate_of(caught.value) == "FN003"

    assert book.journal_size() == before_size
    assert book.balances() == before_balances
    assert_matches_replay(book)
    assert_chain_verifies(book)


def test_a_commit_time_invariant_refusal_is_an_invariant_violation(
    store: PostgresLedgerStore,
) -> None:
    """ledger_store.py: "a refusal by one of the invariant triggers ... is raised as
    InvariantViolation". The balance trigger is deferred to COMMIT; its refusal must not
    surface as a psycopg OperationalError, which the API reports as 503 database_unavailable
    ("retry with the same key") instead of a logged invariant breach."""
    book = open_ledger(store, ["USD"], [AccountType.ASSET])
    first, second = book.universe.ids[("USD", 0)], book.universe.ids[("USD", 1)]
    draft = unchecked_draft(
        (Line(first, Side.DEBIT, 5, "USD"), Line(second, Side.CREDIT, 4, "USD"))
    )
    with pytest.raises(InvariantViolation):
        book.run(lambda tx: ledger.post_entry(tx, draft, uuid4(), datetime.now(UTC)))
    assert book.journal_size() == (0, 0)


@DB_SETTINGS
@given(scenario=scenarios(max_entries=6), order=st.data())
def test_reversing_every_entry_returns_all_balances_to_zero(
    store: PostgresLedgerStore, scenario: Scenario, order: st.DataObject
) -> None:
    book = open_ledger(store, scenario.currencies, scenario.types)
    originals = [book.post(entry) for entry in scenario.entries]
    count = len(originals)

    reversals: dict[UUID, PostedEntry] = {}
    for index in order.draw(st.permutations(range(count))):
        original = originals[index]
        reversal = book.reverse(original)
        assert reversal.reversal_of == original.id
        assert reversal.type == "REVERSAL"
        reversals[original.id] = reversal

    for account_id, balance in book.balances().items():
        assert balance is not None
        assert balance.debits_posted == balance.credits_posted, account_id
        assert balance.posting_sequence == book.replay.balances[account_id].posting_sequence
    assert_matches_replay(book)
    assert_chain_verifies(book)
    assert book.journal_size() == (2 * count, 2 * count)

    def links(tx: LedgerTransaction) -> dict[UUID, UUID | None]:
        return {original.id: tx.find_reversal(original.id) for original in originals}

    assert book.run(links) == {oid: r.id for oid, r in reversals.items()}

    # An entry is reversed at most once, and a reversal is final.
    target = originals[0]
    now = datetime.now(UTC)
    with pytest.raises(LedgerRejection) as again:
        book.run(lambda tx: ledger.reverse_entry(tx, target.id, uuid4(), now))
    assert again.value.code is RejectCode.ALREADY_REVERSED
    with pytest.raises(LedgerRejection) as of_reversal:
        book.run(lambda tx: ledger.reverse_entry(tx, reversals[target.id].id, uuid4(), now))
    assert of_reversal.value.code is RejectCode.REVERSAL_NOT_REVERSIBLE
    assert book.journal_size() == (2 * count, 2 * count)


def overdrawn(book: OpenLedger, lines: Sequence[Line]) -> bool:
    """The domain rule: a limit holds for the balance after the whole entry (book())."""
    after = dict(book.replay.balances)
    for line in lines:
        before = after[line.account_id]
        debit = line.amount_minor if line.side is Side.DEBIT else 0
        credit = line.amount_minor if line.side is Side.CREDIT else 0
        after[line.account_id] = Balance(
            before.debits_posted + debit, before.credits_posted + credit, 0
        )
    for account_id in {line.account_id for line in lines}:
        balance, limit = after[account_id], book.limit_of[account_id]
        if limit == NO_DEBIT_BALANCE and balance.debits_posted > balance.credits_posted:
            return True
        if limit == NO_CREDIT_BALANCE and balance.credits_posted > balance.debits_posted:
            return True
    return False


def _line(slot: int, side: Side, amount: int) -> AbstractLine:
    return AbstractLine("USD", slot, side, amount)


# A customer wallet that must not go into debit, funded and spent within one entry: the net
# is zero, so the domain accepts it, whatever the order of the lines.
FUND_AND_SPEND_IN_ONE_ENTRY = Scenario(
    currencies=["USD"],
    types=[AccountType.LIABILITY, AccountType.ASSET, AccountType.ASSET],
    limits=[NO_DEBIT_BALANCE, NO_LIMIT, NO_LIMIT],
    entries=[
        AbstractEntry(
            (
                _line(0, Side.DEBIT, 30),
                _line(1, Side.CREDIT, 30),
                _line(2, Side.DEBIT, 30),
                _line(0, Side.CREDIT, 30),
            ),
            BASE_DATE,
        )
    ],
)


@DB_SETTINGS
@example(scenario=FUND_AND_SPEND_IN_ONE_ENTRY)
@given(scenario=scenarios(max_entries=8, with_limits=True))
def test_limits_hold_for_the_whole_entry_whatever_the_line_order(
    store: PostgresLedgerStore, scenario: Scenario
) -> None:
    """Accounts with no-overdraft limits: each entry is posted exactly when the balances after
    the whole entry respect the limits (book()'s rule), and refused with `overdraft` otherwise,
    writing nothing. The database must agree with the domain for every order of the lines."""
    book = open_ledger(store, scenario.currencies, scenario.types, scenario.limits)
    for entry in scenario.entries:
        lines = book.universe.lines(entry.lines)
        size = book.journal_size()
        if overdrawn(book, lines):
            with pytest.raises(LedgerRejection) as caught:
                book.post(entry)
            assert caught.value.code is RejectCode.OVERDRAFT
            assert book.journal_size() == size
        else:
            book.post(entry)
            assert book.journal_size() == (size[0] + 1, size[1] + 1)
    assert_matches_replay(book)
