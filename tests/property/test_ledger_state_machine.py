"""A state machine over the ledger's use cases on the real PostgreSQL (issue 5).

Hypothesis drives the service layer (services/ledger.py, idempotency.py, batches.py) with random
steps: open and close accounts (three currencies of exponents 2, 0 and 3, with and without a
no-overdraft limit), post balanced entries under fresh idempotency keys, retry a key with the
same body and with a different one, reverse entries (and try again), post batches with and
without linked chains, and read balances at an earlier point. A model in plain dicts, written
here from docs (ledger.md), not from the code under test, says what every step must do; after
every step the invariants compare the database with the model and run the operators' integrity
checks (`run_checks`). A refused step must write nothing: the invariants would see it.

Each example is a fresh tenant, so examples never see each other's rows (posted rows cannot be
deleted). CI runs a few examples; to run it long (docs/architecture.md, "Testing"):

    FINANCE_STATE_MACHINE_EXAMPLES=500 FINANCE_STATE_MACHINE_STEPS=50 \\
        .venv/bin/pytest -n 0 tests/property/test_ledger_state_machine.py
"""

from __future__ import annotations

import enum
import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from finance import limits
from finance.adapters.postgres.db import Database
from finance.adapters.postgres.integrity import run_checks
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.api.schemas import JOURNAL_PATH, entry_response
from finance.domain.accounts import AccountSpec, AccountType, Balance, Side
from finance.domain.entries import EntryDraft, Line, PostedEntry
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services import ledger
from finance.services.batches import BatchEntry, BatchResult, BatchStatus, post_batch
from finance.services.idempotency import (
    IdempotentRequest,
    request_fingerprint,
    run_idempotent_posting,
)
from finance.services.ports import LedgerTransaction
from tests.integration.helpers import new_tenant
from tests.property.strategies import (
    BASE_DATE,
    CURRENCIES,
    DATE_SPAN_DAYS,
    LedgerUniverse,
    account_types,
    balanced_entries,
)

# Small by default: the whole suite runs it. The environment makes it long.
EXAMPLES = int(os.environ.get("FINANCE_STATE_MACHINE_EXAMPLES", "12"))
STEPS = int(os.environ.get("FINANCE_STATE_MACHINE_STEPS", "20"))
MACHINE_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,  # every step is a few database round trips on a shared machine
    suppress_health_check=[HealthCheck.too_slow],
)
BATCH_SIZE_MAX = 5
T = TypeVar("T")
ZERO = Balance(0, 0, 0)


class Limit(enum.Enum):
    NONE = "none"
    NO_DEBIT_BALANCE = "debits_must_not_exceed_credits"
    NO_CREDIT_BALANCE = "credits_must_not_exceed_debits"


# Requests, as a client sends them -----------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    """The body of POST /v1/journal: what its idempotency key's fingerprint covers."""

    lines: tuple[Line, ...]
    effective_date: date

    def body(self) -> dict[str, Any]:
        lines = [
            {
                "account_id": str(line.account_id),
                "side": line.side.value,
                "amount": line.amount_minor,
                "currency": line.currency,
            }
            for line in self.lines
        ]
        return {"lines": lines, "effective_date": self.effective_date.isoformat()}

    def fingerprint(self) -> bytes:
        return request_fingerprint("POST", JOURNAL_PATH, self.body())

    def draft(self) -> EntryDraft:
        return EntryDraft(lines=self.lines, effective_date=self.effective_date)


@dataclass(frozen=True)
class Reversal:
    """POST /v1/journal/{id}/reverse without a body."""

    original_id: UUID

    def fingerprint(self) -> bytes:
        return request_fingerprint("POST", f"{JOURNAL_PATH}/{self.original_id}/reverse", {})


Request = Posting | Reversal
# What a request must come to: created, replayed (BatchStatus), or refused with this code.
Outcome = BatchStatus | RejectCode


# The model: what must be true, in plain dicts -----------------------------------------------


@dataclass
class ModelAccount:
    id: UUID
    currency: str
    limit: Limit
    # The chain's length when the account was closed: no line of a later entry may touch it.
    closed_at_sequence: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    id: UUID
    lines: tuple[Line, ...]
    effective_date: date
    reversal_of: UUID | None


@dataclass(frozen=True)
class KeyUse:
    """A key that posted: the request it was first used with, its entry and first response."""

    request: Request
    entry_id: UUID
    body: bytes


def booked(lines: Iterable[Line], balances: Mapping[UUID, Balance]) -> dict[UUID, Balance]:
    """`balances` after the lines, each line one posting of its account."""
    after = dict(balances)
    for line in lines:
        before = after.get(line.account_id, ZERO)
        debit = line.amount_minor if line.side is Side.DEBIT else 0
        after[line.account_id] = Balance(
            before.debits_posted + debit,
            before.credits_posted + line.amount_minor - debit,
            before.posting_sequence + 1,
        )
    return after


def mirrored(lines: Iterable[Line]) -> tuple[Line, ...]:
    return tuple(
        Line(ln.account_id, ln.side.opposite, ln.amount_minor, ln.currency) for ln in lines
    )


@dataclass
class Model:
    accounts: dict[UUID, ModelAccount] = field(default_factory=dict)
    balances: dict[UUID, Balance] = field(default_factory=dict)
    entries: list[ModelEntry] = field(default_factory=list)
    # Every account's balance after entry k (for reads at an earlier point).
    after_entry: list[dict[UUID, Balance]] = field(default_factory=list)
    keys: dict[str, KeyUse] = field(default_factory=dict)
    reversals: dict[UUID, UUID] = field(default_factory=dict)  # original -> its reversal

    def accounts_in(self, currency: str, *, open_only: bool = False) -> list[UUID]:
        """The accounts in `currency`; only the open ones if asked and there are any."""
        found = [a for a in self.accounts.values() if a.currency == currency]
        still_open = [a for a in found if a.closed_at_sequence is None]
        return [a.id for a in (still_open if open_only and still_open else found)]

    def entry(self, entry_id: UUID) -> ModelEntry:
        return next(e for e in self.entries if e.id == entry_id)

    def lines_of(self, request: Request) -> tuple[Line, ...]:
        if isinstance(request, Posting):
            return request.lines
        return mirrored(self.entry(request.original_id).lines)

    def refusal(self, lines: Sequence[Line], balances: Mapping[UUID, Balance]) -> RejectCode | None:
        """ledger.md: no posting to a closed account; a limit holds for the balance after the
        whole entry, whatever the order of its lines. Closed comes first (precedence)."""
        if any(self.accounts[ln.account_id].closed_at_sequence is not None for ln in lines):
            return RejectCode.ACCOUNT_CLOSED
        after = booked(lines, balances)
        for account_id in {ln.account_id for ln in lines}:
            limit, balance = self.accounts[account_id].limit, after[account_id]
            if limit is Limit.NO_DEBIT_BALANCE and balance.debits_posted > balance.credits_posted:
                return RejectCode.OVERDRAFT
            if limit is Limit.NO_CREDIT_BALANCE and balance.credits_posted > balance.debits_posted:
                return RejectCode.OVERDRAFT
        return None

    def expect(self, key: str, request: Request) -> Outcome:
        """What one idempotent request must come to, in the service's order: the key first,
        then the reversal's own rules, then the accounts."""
        known = self.expect_key(key, request)
        return known if known is not None else self.expect_new(request)

    def expect_key(self, key: str, request: Request) -> Outcome | None:
        """A key used before decides alone: a replay or a refusal; None for a new key."""
        used = self.keys.get(key)
        if used is None:
            return None
        if used.request.fingerprint() == request.fingerprint():
            return BatchStatus.REPLAYED
        return RejectCode.IDEMPOTENCY_KEY_REUSED

    def expect_new(self, request: Request) -> Outcome:
        """What a request under a key never used must come to."""
        if isinstance(request, Reversal):
            if request.original_id in self.reversals:
                return RejectCode.ALREADY_REVERSED
            if self.entry(request.original_id).reversal_of is not None:
                return RejectCode.REVERSAL_NOT_REVERSIBLE
        refused = self.refusal(self.lines_of(request), self.balances)
        return refused if refused is not None else BatchStatus.CREATED

    def expect_batch(self, members: Sequence[tuple[str, Posting, bool]]) -> list[Outcome]:
        """Entries in order against running balances; a linked chain books all or nothing:
        its first refused entry keeps its code, the others are `linked_entry_failed`, except
        replays, which an earlier request posted and nothing here undoes."""
        # Before booking, only the keys decide; new entries book against running balances.
        pending = [self.expect_key(key, posting) for key, posting, _ in members]
        running = dict(self.balances)
        outcomes: list[Outcome] = []
        for chain in linked_chains([linked for _, _, linked in members]):
            overlay: dict[UUID, Balance] = dict(running)
            failure: tuple[int, RejectCode] | None = None
            for index in chain:
                outcome = pending[index]
                if outcome is None:
                    lines = members[index][1].lines
                    outcome = self.refusal(lines, overlay)
                    overlay = booked(lines, overlay)
                if isinstance(outcome, RejectCode):
                    failure = (index, outcome)
                    break
            if failure is None:
                running = overlay
                known = (pending[index] for index in chain)
                outcomes.extend(BatchStatus.CREATED if k is None else k for k in known)
            else:
                outcomes.extend(chain_refused(chain, *failure, pending))
        return outcomes

    def record(self, key: str, request: Request, entry_id: UUID, body: bytes) -> None:
        lines = self.lines_of(request)
        if isinstance(request, Posting):
            entry = ModelEntry(entry_id, lines, request.effective_date, None)
        else:
            original = self.entry(request.original_id)
            entry = ModelEntry(entry_id, lines, original.effective_date, original.id)
            self.reversals[original.id] = entry_id
        self.balances = booked(lines, self.balances)
        self.entries.append(entry)
        self.after_entry.append(dict(self.balances))
        self.keys[key] = KeyUse(request, entry_id, body)

    def as_of_date(self, account_id: UUID, day: date) -> Balance:
        lines = [
            ln
            for entry in self.entries
            if entry.effective_date <= day
            for ln in entry.lines
            if ln.account_id == account_id
        ]
        return booked(lines, {}).get(account_id, ZERO)


def chain_refused(
    chain: Sequence[int], failed: int, code: RejectCode, pending: Sequence[Outcome | None]
) -> list[Outcome]:
    """A refused chain: its failed entry's code, replays stay replays, the rest fail with it."""
    return [
        code
        if index == failed
        else BatchStatus.REPLAYED
        if pending[index] is BatchStatus.REPLAYED
        else RejectCode.LINKED_ENTRY_FAILED
        for index in chain
    ]


def attempt(work: Callable[[], T]) -> T | RejectCode:
    """What `work` returns, or the code it was refused with."""
    try:
        return work()
    except LedgerRejection as refused:
        return refused.code


def batch_entry(key: str, posting: Posting, linked: bool) -> BatchEntry:
    """A batch entry as the API builds it: the fingerprint of the same single posting."""

    def draft(_today: date) -> EntryDraft:
        return posting.draft()

    return BatchEntry(key, posting.fingerprint(), draft, linked)


def linked_chains(linked: Sequence[bool]) -> list[list[int]]:
    """The positions of each chain: up to and including the first entry without the flag."""
    chains: list[list[int]] = [[]]
    for index, flag in enumerate(linked):
        chains[-1].append(index)
        if not flag:
            chains.append([])
    return [chain for chain in chains if chain]


def posted_lines(body: bytes) -> tuple[dict[str, Any], tuple[Line, ...]]:
    """A posting's response and its lines."""
    posted = json.loads(body)
    lines = tuple(
        Line(UUID(ln["account_id"]), Side(ln["side"]), ln["amount"], ln["currency"])
        for ln in posted["lines"]
    )
    return posted, lines


# The machine --------------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, store: PostgresLedgerStore, database: Database) -> None:
        super().__init__()
        self.store = store
        self.tenant = new_tenant(store)
        self.model = Model()
        self.numbers = itertools.count()
        self.free_keys: list[str] = []  # keys of refused requests: nothing kept them
        self._exit = ExitStack()
        # The owner's connection: the checks read the tables beneath the service's view.
        self.admin = self._exit.enter_context(database.admin())

    def teardown(self) -> None:
        self._exit.close()

    # Steps --------------------------------------------------------------------------------

    @initialize(kinds=st.lists(st.sampled_from(Limit), min_size=3, max_size=3))
    def open_two_accounts_per_currency(self, kinds: list[Limit]) -> None:
        """Every currency has an account without a limit from the start, so any entry can be
        drawn, and another with a limit, so that limits come into play from the first step."""
        for currency, limit in zip(CURRENCIES, kinds, strict=True):
            self.open(AccountType.EQUITY, currency, Limit.NONE)
            self.open(AccountType.LIABILITY, currency, limit)

    @rule(
        account_type=account_types(),
        currency=st.sampled_from(CURRENCIES),
        limit=st.sampled_from(Limit),
    )
    def open_account(self, account_type: AccountType, currency: str, limit: Limit) -> None:
        self.open(account_type, currency, limit)

    def open(self, account_type: AccountType, currency: str, limit: Limit) -> None:
        code = f"{currency}-{next(self.numbers)}"
        spec = AccountSpec(
            code,
            code,
            account_type,
            currency,
            debits_must_not_exceed_credits=limit is Limit.NO_DEBIT_BALANCE,
            credits_must_not_exceed_debits=limit is Limit.NO_CREDIT_BALANCE,
        )
        now = datetime.now(UTC)
        account = self.store(self.tenant, lambda tx: ledger.open_account(tx, spec, uuid4(), now))
        self.model.accounts[account.id] = ModelAccount(account.id, currency, limit)
        self.model.balances[account.id] = ZERO

    @rule(data=st.data())
    def close_account(self, data: st.DataObject) -> None:
        account = data.draw(st.sampled_from(list(self.model.accounts.values())))
        now = datetime.now(UTC)
        closed = attempt(
            lambda: self.store(self.tenant, lambda tx: ledger.close_account(tx, account.id, now))
        )
        if account.closed_at_sequence is not None:
            assert closed is RejectCode.ACCOUNT_ALREADY_CLOSED
            return
        assert not isinstance(closed, RejectCode), closed
        assert closed.closed
        account.closed_at_sequence = len(self.model.entries)

    @rule(data=st.data())
    def post(self, data: st.DataObject) -> None:
        self.submit(self.fresh_key(data), self.draw_posting(data), "post")

    @precondition(lambda self: self.model.keys)
    @rule(data=st.data())
    def retry_with_the_same_body(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model.keys)))
        self.submit(key, self.model.keys[key].request, "retry same")

    @precondition(lambda self: self.model.keys)
    @rule(data=st.data())
    def retry_with_a_different_body(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model.keys)))
        different = self.different_request(data, self.model.keys[key].request)
        assert self.model.expect(key, different) is RejectCode.IDEMPOTENCY_KEY_REUSED
        self.submit(key, different, "retry different")

    @precondition(lambda self: self.model.entries)
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from(self.model.entries))
        self.submit(self.fresh_key(data), Reversal(entry.id), "reverse")

    @precondition(lambda self: self.model.reversals)
    @rule(data=st.data())
    def reverse_again(self, data: st.DataObject) -> None:
        """A reversed entry, or a reversal: either way refused (ledger.md)."""
        pairs = sorted(self.model.reversals.items())
        original, reversal = data.draw(st.sampled_from(pairs))
        target = data.draw(st.sampled_from([original, reversal]))
        expected = self.model.expect_new(Reversal(target))
        assert expected in (RejectCode.ALREADY_REVERSED, RejectCode.REVERSAL_NOT_REVERSIBLE)
        self.submit(self.fresh_key(data), Reversal(target), "reverse again")

    @rule(data=st.data(), size=st.integers(min_value=1, max_value=BATCH_SIZE_MAX))
    def post_a_batch(self, data: st.DataObject, size: int) -> None:
        members = self.draw_batch(data, size)
        expected = self.model.expect_batch(members)
        results = self.run_batch(members)
        got = [r.rejection.code if r.rejection else r.status for r in results]
        assert got == expected, members
        for (key, posting, linked), outcome, result in zip(members, got, results, strict=True):
            event(f"batch entry {'linked' if linked else 'alone'}: {outcome.value}")
            if isinstance(outcome, RejectCode):
                self.free(key)
            else:
                assert result.body is not None
                self.check_response(key, posting, outcome, result.body)

    @rule(data=st.data(), size=st.integers(min_value=2, max_value=BATCH_SIZE_MAX))
    def post_a_malformed_batch(self, data: st.DataObject, size: int) -> None:
        """A key twice, or a linked chain left open at the end: the whole batch is refused
        before anything is booked, and no entry of it is written."""
        members = self.draw_batch(data, size)
        if data.draw(st.booleans()):
            twice = data.draw(st.integers(min_value=1, max_value=size - 1))
            members[twice] = (members[0][0], *members[twice][1:])
            code = RejectCode.DUPLICATE_IDEMPOTENCY_KEY
        else:
            members[-1] = (*members[-1][:2], True)
            code = RejectCode.LINKED_CHAIN_OPEN
        refused = attempt(lambda: self.run_batch(members))
        assert refused is code
        event(f"malformed batch: {code.value}")
        for key, _, _ in members:
            self.free(key)

    @precondition(lambda self: self.model.entries)
    @rule(data=st.data())
    def read_at_an_earlier_point(self, data: st.DataObject) -> None:
        """Every account's balance after entry k, and at the end of an effective date."""
        sequence = data.draw(st.integers(min_value=0, max_value=len(self.model.entries) - 1))
        day = BASE_DATE + timedelta(days=data.draw(st.integers(-1, DATE_SPAN_DAYS)))
        accounts = list(self.model.accounts)

        def read(tx: LedgerTransaction) -> list[tuple[Balance, Balance]]:
            return [
                (
                    ledger.account_balance(tx, a, as_of_sequence=sequence).balance,
                    ledger.account_balance(tx, a, as_of_date=day).balance,
                )
                for a in accounts
            ]

        expected = [
            (self.model.after_entry[sequence].get(a, ZERO), self.model.as_of_date(a, day))
            for a in accounts
        ]
        assert self.store(self.tenant, read) == expected

    # Helpers of the steps -----------------------------------------------------------------

    def run_batch(self, members: Sequence[tuple[str, Posting, bool]]) -> list[BatchResult]:
        """`post_batch` in one transaction, as POST /v1/journal/batch calls it."""
        entries = [batch_entry(key, posting, linked) for key, posting, linked in members]
        now = datetime.now(UTC)

        def work(tx: LedgerTransaction) -> list[BatchResult]:
            return post_batch(
                tx,
                entries,
                now,
                entries_max=limits.BATCH_ENTRIES_MAX_DEFAULT,
                respond=entry_response,
            )

        return self.store(self.tenant, work)

    def free(self, key: str) -> None:
        """A refused request's key: nothing kept it, so a later request may use it afresh."""
        if key not in self.model.keys and key not in self.free_keys:
            self.free_keys.append(key)

    def fresh_key(self, data: st.DataObject) -> str:
        """A key never used, or one whose request was refused (a refusal keeps no key)."""
        reuse = data.draw(st.booleans()) if self.free_keys else False
        if reuse:
            key = data.draw(st.sampled_from(self.free_keys))
            self.free_keys.remove(key)
            return key
        return f"key-{next(self.numbers)}"

    def draw_posting(self, data: st.DataObject, *, open_only: bool = False) -> Posting:
        """A balanced entry over 1..2 currencies; each abstract (currency, slot) account of
        the shared strategy becomes one of this tenant's accounts, closed ones included
        unless `open_only`."""
        abstract = data.draw(balanced_entries(CURRENCIES))
        roles = sorted({(line.currency, line.slot) for line in abstract.lines})
        accounts = {role: self.model.accounts_in(role[0], open_only=open_only) for role in roles}
        ids = {role: data.draw(st.sampled_from(found)) for role, found in accounts.items()}
        return Posting(LedgerUniverse(ids).lines(abstract.lines), abstract.effective_date)

    def different_request(self, data: st.DataObject, first: Request) -> Request:
        """Another body for a used key: the same lines a day later, every amount doubled, or
        (for a reversal's key) a posting."""
        if isinstance(first, Reversal):
            return self.draw_posting(data)
        if data.draw(st.booleans()):
            return Posting(first.lines, first.effective_date + timedelta(days=1))
        doubled = tuple(
            Line(ln.account_id, ln.side, 2 * ln.amount_minor, ln.currency) for ln in first.lines
        )
        return Posting(doubled, first.effective_date)

    def draw_batch(self, data: st.DataObject, size: int) -> list[tuple[str, Posting, bool]]:
        """Entries under fresh keys, and sometimes a key used before, with a posting's body
        (a replay) or another body (refused); no key twice (that refuses the whole batch)."""
        postings = {k for k, use in self.model.keys.items() if isinstance(use.request, Posting)}
        members: list[tuple[str, Posting, bool]] = []
        for index in range(size):
            linked = index < size - 1 and data.draw(st.booleans())
            taken = {key for key, _, _ in members}
            # Linked chains that post whole need entries that can: half are on open accounts.
            how = data.draw(st.sampled_from(["fresh", "open"] * 3 + ["same", "different"]))
            reusable = sorted((postings if how == "same" else set(self.model.keys)) - taken)
            if how in ("fresh", "open") or not reusable:
                key = self.fresh_key(data)
                while key in taken:
                    key = f"key-{next(self.numbers)}"
                members.append((key, self.draw_posting(data, open_only=how == "open"), linked))
                continue
            key = data.draw(st.sampled_from(reusable))
            first = self.model.keys[key].request
            posting = first if how == "same" else self.different_request(data, first)
            assert isinstance(posting, Posting)
            members.append((key, posting, linked))
        return members

    def submit(self, key: str, request: Request, step: str) -> None:
        """One request through `run_idempotent_posting`, as the API sends it."""
        expected = self.model.expect(key, request)
        event(f"{step}: {expected.value}")
        idempotent = IdempotentRequest(key, request.fingerprint())

        def post(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
            now = datetime.now(UTC)
            if isinstance(request, Posting):
                return ledger.post_entry(tx, request.draft(), entry_id, now)
            return ledger.reverse_entry(tx, request.original_id, entry_id, now)

        result = attempt(
            lambda: run_idempotent_posting(
                self.store, self.tenant, idempotent, post, entry_response
            )
        )
        if isinstance(result, RejectCode):
            assert result is expected, result
            self.free(key)
            return
        assert result.replayed is (expected is BatchStatus.REPLAYED)
        self.check_response(key, request, expected, result.body)

    def check_response(self, key: str, request: Request, outcome: Outcome, body: bytes) -> None:
        """A replay is the first response, byte for byte; a new entry is the next in the
        chain, with the request's lines, and goes into the model."""
        if outcome is BatchStatus.REPLAYED:
            assert body == self.model.keys[key].body
            return
        assert outcome is BatchStatus.CREATED
        posted, lines = posted_lines(body)
        assert posted["sequence"] == len(self.model.entries)
        assert lines == self.model.lines_of(request)
        self.model.record(key, request, UUID(posted["id"]), body)

    # Invariants: after every step, the database against the model and ledger.md ------------

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return self.admin.execute(query.encode(), {"tenant": self.tenant}).fetchall()

    @invariant()
    def integrity_checks_pass(self) -> None:
        """Every entry balances per currency, the trial balance too, each stored balance is
        the replay of its lines, and the hash chain recomputes from genesis to head."""
        assert [
            (r.check, r.problem) for r in run_checks(self.admin, [self.tenant]) if not r.ok
        ] == []

    @invariant()
    def journal_is_the_model(self) -> None:
        rows = self.rows(
            "SELECT e.sequence, e.id, e.effective_date, e.reversal_of, l.account_id, l.side,"
            "       l.amount_minor, l.currency"
            "  FROM journal_entries e JOIN journal_lines l"
            "    ON l.tenant_id = e.tenant_id AND l.entry_id = e.id"
            " WHERE e.tenant_id = %(tenant)s ORDER BY e.sequence, l.line_number"
        )
        expected = [
            (sequence, e.id, e.effective_date, e.reversal_of, *astuple_line(ln))
            for sequence, e in enumerate(self.model.entries)
            for ln in e.lines
        ]
        assert [(*row[:5], Side(row[5]), *row[6:]) for row in rows] == expected

    @invariant()
    def balances_are_the_model(self) -> None:
        rows = self.rows(
            "SELECT account_id, debits_posted, credits_posted, posting_sequence FROM balances"
            " WHERE tenant_id = %(tenant)s"
        )
        assert {row[0]: Balance(*row[1:]) for row in rows} == self.model.balances

    @invariant()
    def no_limited_account_is_past_its_limit(self) -> None:
        rows = self.rows(
            "SELECT a.code, b.debits_posted, b.credits_posted FROM accounts a"
            "  JOIN balances b ON b.tenant_id = a.tenant_id AND b.account_id = a.id"
            " WHERE a.tenant_id = %(tenant)s"
            "   AND ((a.debits_must_not_exceed_credits AND b.debits_posted > b.credits_posted)"
            "     OR (a.credits_must_not_exceed_debits AND b.credits_posted > b.debits_posted))"
        )
        assert rows == []

    @invariant()
    def closed_accounts_got_nothing_after_closing(self) -> None:
        rows = self.rows(
            "SELECT a.id, a.closed_at IS NOT NULL, max(l.entry_sequence) FROM accounts a"
            "  LEFT JOIN journal_lines l ON l.tenant_id = a.tenant_id AND l.account_id = a.id"
            " WHERE a.tenant_id = %(tenant)s GROUP BY a.id, a.closed_at"
        )
        assert {row[0]: row[1] for row in rows} == {
            a.id: a.closed_at_sequence is not None for a in self.model.accounts.values()
        }
        for account_id, _, last_sequence in rows:
            closed_at = self.model.accounts[account_id].closed_at_sequence
            if closed_at is not None and last_sequence is not None:
                assert last_sequence < closed_at, account_id

    @invariant()
    def each_key_names_exactly_one_entry(self) -> None:
        keys = self.rows("SELECT key, entry_id FROM idempotency_keys WHERE tenant_id = %(tenant)s")
        assert dict(keys) == {key: use.entry_id for key, use in self.model.keys.items()}
        unnamed_or_twice = self.rows(
            "SELECT e.sequence, count(k.key) FROM journal_entries e"
            "  LEFT JOIN idempotency_keys k ON k.tenant_id = e.tenant_id AND k.entry_id = e.id"
            " WHERE e.tenant_id = %(tenant)s GROUP BY e.sequence HAVING count(k.key) <> 1"
        )
        assert unnamed_or_twice == []

    @invariant()
    def reversal_links_are_consistent(self) -> None:
        """Each reversal mirrors an original that is no reversal itself, once (read from the
        tables alone, not from the model)."""
        links = self.rows(
            "SELECT r.reversal_of, r.id, r.type, o.id IS NOT NULL, o.reversal_of IS NULL,"
            "       r.line_count = o.line_count"
            "  FROM journal_entries r LEFT JOIN journal_entries o"
            "    ON o.tenant_id = r.tenant_id AND o.id = r.reversal_of"
            " WHERE r.tenant_id = %(tenant)s AND r.reversal_of IS NOT NULL"
        )
        assert all(row[2:] == ("REVERSAL", True, True, True) for row in links), links
        assert dict(row[:2] for row in links) == self.model.reversals
        unmirrored = self.rows(
            "SELECT r.sequence, rl.line_number FROM journal_entries r"
            "  JOIN journal_lines rl ON rl.tenant_id = r.tenant_id AND rl.entry_id = r.id"
            "  LEFT JOIN journal_lines ol ON ol.tenant_id = r.tenant_id"
            "   AND ol.entry_id = r.reversal_of AND ol.line_number = rl.line_number"
            " WHERE r.tenant_id = %(tenant)s AND r.reversal_of IS NOT NULL"
            "   AND (ol.entry_id IS NULL OR ol.account_id <> rl.account_id"
            "     OR ol.amount_minor <> rl.amount_minor OR ol.currency <> rl.currency"
            "     OR ol.side = rl.side)"
        )
        assert unmirrored == []


def astuple_line(line: Line) -> tuple[UUID, Side, int, str]:
    return line.account_id, line.side, line.amount_minor, line.currency


def test_the_ledger_holds_its_invariants_under_random_steps(
    store: PostgresLedgerStore, database: Database
) -> None:
    class Machine(LedgerMachine):
        """The machine on this run's database (Hypothesis builds one per example)."""

        def __init__(self) -> None:
            super().__init__(store, database)

    run_state_machine_as_test(Machine, settings=MACHINE_SETTINGS)
