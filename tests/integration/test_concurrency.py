"""Many writers at once: no lost update, a gap-free chain, one posting per idempotency key, no
overdraft under racing withdrawals, and an entry reversed at most once."""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

import pytest

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.integrity import run_checks
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountType
from finance.domain.entries import PostedEntry
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services import ledger
from finance.services.batches import BatchEntry, BatchStatus, post_batch
from finance.services.idempotency import (
    IdempotentRequest,
    IdempotentResult,
    request_fingerprint,
    run_idempotent_posting,
)
from finance.services.ports import LedgerTransaction, TransactionRunner
from tests.integration.helpers import (
    Background,
    Conn,
    HeldTransaction,
    balance_of,
    count_rows,
    now,
    open_account,
    run_concurrently,
    scalar,
    transfer,
    transfer_draft,
    wait_for_lock_waiters,
)

THREADS = 8
T = TypeVar("T")
POSTINGS_PER_THREAD = 25


def assert_ledger_consistent(conn: Conn, tenant: str, entries: int) -> None:
    """Gap-free chain of `entries` entries, head past the last, every check of `finance check`
    passing, and each account's lines numbered 1..n with running totals in chain order."""
    sequences = [
        int(row[0])
        for row in conn.execute(
            "SELECT sequence FROM journal_entries WHERE tenant_id = %s ORDER BY sequence",
            (tenant,),
        ).fetchall()
    ]
    assert sequences == list(range(entries))
    assert (
        scalar(conn, "SELECT next_sequence FROM ledger_heads WHERE tenant_id = %s", (tenant,))
        == entries
    )
    results = run_checks(conn, [tenant])
    assert [r.check for r in results] == [
        "entries_balanced",
        "trial_balance",
        "balances_match_journal",
        "lines_match_entries",
        "hash_chain",
        "merkle_checkpoints",
    ]
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    rows = conn.execute(
        "SELECT account_id, side, amount_minor, account_posting_sequence, debits_after,"
        " credits_after FROM journal_lines WHERE tenant_id = %s"
        " ORDER BY account_id, entry_sequence, line_number",
        (tenant,),
    ).fetchall()
    running: dict[UUID, tuple[int, int, int]] = {}
    for account, side, amount, posting_sequence, debits_after, credits_after in rows:
        seq, debits, credits = running.get(account, (0, 0, 0))
        seq += 1
        debits += amount if side == "debit" else 0
        credits += amount if side == "credit" else 0
        assert (posting_sequence, debits_after, credits_after) == (seq, debits, credits)
        running[account] = (seq, debits, credits)
    for account, (seq, debits, credits) in running.items():
        assert conn.execute(
            "SELECT posting_sequence, debits_posted, credits_posted FROM balances"
            " WHERE tenant_id = %s AND account_id = %s",
            (tenant, account),
        ).fetchone() == (seq, debits, credits)


def test_hot_pair_of_accounts_loses_no_update(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)

    def worker(index: int) -> list[PostedEntry]:
        rng = random.Random(index)
        return [
            transfer(store, tenant, cash, sales, rng.randint(1, 10_000))
            for _ in range(POSTINGS_PER_THREAD)
        ]

    results = run_concurrently(THREADS, worker)
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, failures
    posted = [entry for batch in results if isinstance(batch, list) for entry in batch]
    total = THREADS * POSTINGS_PER_THREAD
    assert len(posted) == total
    amount = sum(entry.lines[0].amount_minor for entry in posted)
    assert sorted(entry.sequence for entry in posted) == list(range(total))

    cash_balance = store(tenant, lambda tx: ledger.account_balance(tx, cash))
    sales_balance = store(tenant, lambda tx: ledger.account_balance(tx, sales))
    assert (cash_balance.balance.debits_posted, cash_balance.balance.credits_posted) == (amount, 0)
    assert (sales_balance.balance.debits_posted, sales_balance.balance.credits_posted) == (
        0,
        amount,
    )
    assert cash_balance.balance.posting_sequence == total
    assert sales_balance.balance.posting_sequence == total
    assert (cash_balance.signed, sales_balance.signed) == (amount, amount)
    with database.admin() as conn:
        assert count_rows(conn, "journal_lines", "tenant_id", tenant) == 2 * total
        assert_ledger_consistent(conn, tenant, total)


def test_four_accounts_in_random_directions(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    accounts = [open_account(store, tenant, f"acc-{i}", AccountType.ASSET) for i in range(4)]

    def worker(index: int) -> list[tuple[UUID, UUID, int]]:
        rng = random.Random(1_000 + index)
        done = []
        for _ in range(POSTINGS_PER_THREAD):
            debit, credit = rng.sample(accounts, 2)
            amount = rng.randint(1, 500)
            transfer(store, tenant, debit, credit, amount)
            done.append((debit, credit, amount))
        return done

    results = run_concurrently(THREADS, worker)
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, failures
    moves = [move for batch in results if isinstance(batch, list) for move in batch]
    assert len(moves) == THREADS * POSTINGS_PER_THREAD
    debits: Counter[UUID] = Counter()
    credits: Counter[UUID] = Counter()
    touched: Counter[UUID] = Counter()
    for debit, credit, amount in moves:
        debits[debit] += amount
        credits[credit] += amount
        touched[debit] += 1
        touched[credit] += 1
    for account in accounts:
        balance = balance_of(store, tenant, account).balance
        assert (balance.debits_posted, balance.credits_posted, balance.posting_sequence) == (
            debits[account],
            credits[account],
            touched[account],
        )
    with database.admin() as conn:
        assert_ledger_consistent(conn, tenant, len(moves))


def test_no_overdraft_under_concurrent_withdrawals(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    wallet = open_account(
        store, tenant, "wallet", AccountType.LIABILITY, debits_must_not_exceed_credits=True
    )
    funded = 2_000
    transfer(store, tenant, cash, wallet, funded)

    def worker(index: int) -> list[tuple[int, RejectCode | None]]:
        rng = random.Random(2_000 + index)
        outcomes: list[tuple[int, RejectCode | None]] = []
        for _ in range(10):
            amount = rng.randint(20, 80)
            try:
                transfer(store, tenant, wallet, cash, amount)
            except LedgerRejection as exc:
                outcomes.append((amount, exc.code))
            else:
                outcomes.append((amount, None))
        return outcomes

    results = run_concurrently(THREADS, worker)
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, failures
    outcomes = [o for batch in results if isinstance(batch, list) for o in batch]
    accepted = [amount for amount, code in outcomes if code is None]
    refused = [code for _, code in outcomes if code is not None]
    assert accepted
    assert refused, "the withdrawals were meant to exceed the funds"
    assert set(refused) == {RejectCode.OVERDRAFT}
    assert sum(accepted) <= funded
    balance = store(tenant, lambda tx: ledger.account_balance(tx, wallet))
    assert balance.signed == funded - sum(accepted)
    assert balance.signed >= 0
    # A refusal comes only when the funds left cannot cover it.
    assert min(amount for amount, code in outcomes if code is not None) > balance.signed
    with database.admin() as conn:
        assert_ledger_consistent(conn, tenant, 1 + len(accepted))


# Idempotency under races ---------------------------------------------------------------------


def respond(entry: PostedEntry) -> tuple[int, bytes]:
    return 201, json.dumps({"id": str(entry.id), "sequence": entry.sequence}).encode()


def transfer_request(key: str, debit: UUID, credit: UUID, amount: int) -> IdempotentRequest:
    body = {"debit": str(debit), "credit": str(credit), "amount": amount}
    return IdempotentRequest(key, request_fingerprint("POST", "/v1/journal", body))


def idempotent_post(
    run: TransactionRunner, tenant: str, key: str, debit: UUID, credit: UUID, amount: int
) -> IdempotentResult:
    def post(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
        return ledger.post_entry(tx, transfer_draft(debit, credit, amount), entry_id, now())

    request = transfer_request(key, debit, credit, amount)
    return run_idempotent_posting(run, tenant, request, post, respond)


def test_same_key_same_request_posts_once(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)

    results = run_concurrently(
        THREADS, lambda _: idempotent_post(store, tenant, "pay-1", cash, sales, 777)
    )
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, failures
    done = [r for r in results if isinstance(r, IdempotentResult)]
    assert len({(r.status_code, r.body) for r in done}) == 1
    assert sorted(r.replayed for r in done) == [False] + [True] * (THREADS - 1)
    entry_id = UUID(json.loads(done[0].body)["id"])
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 1
        assert count_rows(conn, "idempotency_keys", "tenant_id", tenant) == 1
        assert (
            scalar(conn, "SELECT id FROM journal_entries WHERE tenant_id = %s", (tenant,))
            == entry_id
        )
        assert_ledger_consistent(conn, tenant, 1)
    balance = store(tenant, lambda tx: ledger.account_balance(tx, cash))
    assert balance.signed == 777

    # Later retries replay the same bytes, still without posting.
    again = idempotent_post(store, tenant, "pay-1", cash, sales, 777)
    assert (again.body, again.replayed) == (done[0].body, True)
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 1


def test_same_key_different_request_is_refused(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)
    first = idempotent_post(store, tenant, "pay-2", cash, sales, 100)
    assert not first.replayed
    with pytest.raises(LedgerRejection) as info:
        idempotent_post(store, tenant, "pay-2", cash, sales, 101)
    assert info.value.code is RejectCode.IDEMPOTENCY_KEY_REUSED
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 1
    assert store(tenant, lambda tx: ledger.account_balance(tx, cash)).signed == 100


def test_same_key_different_requests_racing(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)
    amounts = [100 + i for i in range(THREADS)]

    results = run_concurrently(
        THREADS, lambda i: idempotent_post(store, tenant, "pay-3", cash, sales, amounts[i])
    )
    winners = [(i, r) for i, r in enumerate(results) if isinstance(r, IdempotentResult)]
    losers = [r for r in results if not isinstance(r, IdempotentResult)]
    assert len(winners) == 1, results
    assert not winners[0][1].replayed
    assert all(
        isinstance(r, LedgerRejection) and r.code is RejectCode.IDEMPOTENCY_KEY_REUSED
        for r in losers
    ), losers
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 1
    assert (
        store(tenant, lambda tx: ledger.account_balance(tx, cash)).signed == amounts[winners[0][0]]
    )


class Holding:
    """A store whose transactions, once their work is done, stay open until `release()`."""

    def __init__(self, store: PostgresLedgerStore) -> None:
        self._store = store
        self._worked = threading.Event()
        self._release = threading.Event()

    def __call__(self, tenant_id: str, work: Callable[[LedgerTransaction], T]) -> T:
        def held(tx: LedgerTransaction) -> T:
            value = work(tx)
            self._worked.set()
            assert self._release.wait(30), "held transaction never released"
            return value

        return self._store(tenant_id, held)

    def wait_worked(self) -> None:
        assert self._worked.wait(30), "held work did not finish"

    def release(self) -> None:
        self._release.set()


def test_a_request_queued_on_a_posting_key_replays_the_entry_once_it_commits(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)
    holding = Holding(store)
    first = Background(lambda: idempotent_post(holding, tenant, "pay-4", cash, sales, 5))
    holding.wait_worked()
    second = Background(lambda: idempotent_post(store, tenant, "pay-4", cash, sales, 5))
    with database.admin() as conn:
        wait_for_lock_waiters(conn)
    holding.release()
    posted, replayed = first.outcome(), second.outcome()
    assert isinstance(posted, IdempotentResult), posted
    assert isinstance(replayed, IdempotentResult), replayed
    assert (posted.replayed, replayed.replayed) == (False, True)
    assert replayed.body == posted.body
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 1


def test_a_request_queued_on_a_refused_posting_does_the_work_itself(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)
    claimed, refuse = threading.Event(), threading.Event()

    def refused(_tx: LedgerTransaction, _entry_id: UUID) -> PostedEntry:
        claimed.set()  # `post` runs once the key is claimed
        assert refuse.wait(30)
        raise LedgerRejection(RejectCode.OVERDRAFT, "refused after claiming the key")

    request = transfer_request("pay-5", cash, sales, 5)
    first = Background(lambda: run_idempotent_posting(store, tenant, request, refused, respond))
    assert claimed.wait(30)
    second = Background(lambda: idempotent_post(store, tenant, "pay-5", cash, sales, 5))
    with database.admin() as conn:
        wait_for_lock_waiters(conn)
    refuse.set()
    assert isinstance(first.outcome(), LedgerRejection)
    done = second.outcome()
    assert isinstance(done, IdempotentResult), done
    assert not done.replayed
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 1
        assert count_rows(conn, "idempotency_keys", "tenant_id", tenant) == 1


def test_a_posting_queued_on_a_batch_key_replays_the_batch_entry(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)
    request = transfer_request("pay-6", cash, sales, 5)
    item = BatchEntry(request.key, request.request_hash, lambda _: transfer_draft(cash, sales, 5))
    holding = Holding(store)
    batch = Background(
        lambda: holding(
            tenant, lambda tx: post_batch(tx, [item], now(), entries_max=10, respond=respond)
        )
    )
    holding.wait_worked()
    single = Background(lambda: idempotent_post(store, tenant, "pay-6", cash, sales, 5))
    with database.admin() as conn:
        wait_for_lock_waiters(conn)
    holding.release()
    results, replayed = batch.outcome(), single.outcome()
    assert isinstance(results, list), results
    assert isinstance(replayed, IdempotentResult), replayed
    assert (results[0].status, replayed.replayed) == (BatchStatus.CREATED, True)
    assert replayed.body == results[0].body
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 1


# Reversal races ------------------------------------------------------------------------------


def test_racing_reversals_reverse_once(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    sales = open_account(store, tenant, "sales", AccountType.REVENUE)
    rounds, racers = 4, 4
    for amount in range(1, rounds + 1):
        original = transfer(store, tenant, cash, sales, amount * 100)

        def reverse(_: int, original_id: UUID = original.id) -> PostedEntry:
            return store(
                tenant, lambda tx: ledger.reverse_entry(tx, original_id, uuid.uuid4(), now())
            )

        results = run_concurrently(racers, reverse)
        reversals = [r for r in results if isinstance(r, PostedEntry)]
        refusals = [r for r in results if not isinstance(r, PostedEntry)]
        assert len(reversals) == 1, results
        assert reversals[0].reversal_of == original.id
        assert len(refusals) == racers - 1
        assert all(
            isinstance(r, LedgerRejection) and r.code is RejectCode.ALREADY_REVERSED
            for r in refusals
        ), refusals
        with database.admin() as conn:
            assert (
                scalar(
                    conn,
                    "SELECT count(*) FROM journal_entries"
                    " WHERE tenant_id = %s AND reversal_of = %s",
                    (tenant, original.id),
                )
                == 1
            )

    assert store(tenant, lambda tx: ledger.account_balance(tx, cash)).signed == 0
    with database.admin() as conn:
        assert_ledger_consistent(conn, tenant, 2 * rounds)


# A writer queued behind another must book against the balance the other left -----------------


@dataclass(frozen=True)
class Wallet:
    tenant: str
    cash: UUID
    wallet: UUID


def wallet_with(store: PostgresLedgerStore, tenant: str, funds: int) -> Wallet:
    cash = open_account(store, tenant, "cash", AccountType.ASSET)
    wallet = open_account(
        store, tenant, "wallet", AccountType.LIABILITY, debits_must_not_exceed_credits=True
    )
    if funds:
        transfer(store, tenant, cash, wallet, funds)
    return Wallet(tenant, cash, wallet)


def queued_behind(
    database: Database,
    store: PostgresLedgerStore,
    w: Wallet,
    first: Callable[[LedgerTransaction], object],
    second: Callable[[], object],
) -> object:
    """Run `first` and hold its transaction open; start `second`, wait until it queues on a
    lock, commit `first`; return what `second` returned or raised."""
    held = HeldTransaction(store, w.tenant, first)
    queued = Background(second)
    with database.admin() as conn:
        wait_for_lock_waiters(conn)
    held.release()
    return queued.outcome()


def test_withdrawal_queued_behind_a_deposit_sees_the_deposit(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    """The wallet is empty; a deposit of 100 holds the wallet's lock while a withdrawal of 50
    queues behind it. Booked under the lock, the withdrawal sees 100 and must go through."""
    w = wallet_with(store, tenant, 0)
    outcome = queued_behind(
        database,
        store,
        w,
        lambda tx: ledger.post_entry(
            tx, transfer_draft(w.cash, w.wallet, 100), uuid.uuid4(), now()
        ),
        lambda: transfer(store, tenant, w.wallet, w.cash, 50),
    )
    assert isinstance(outcome, PostedEntry), f"withdrawal refused: {outcome!r}"
    assert store(tenant, lambda tx: ledger.account_balance(tx, w.wallet)).signed == 50


def test_withdrawal_queued_behind_a_withdrawal_is_refused_as_overdraft(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    """The wallet holds 100; a withdrawal of 80 holds the lock while one of 50 queues. The
    second must be refused with the client-facing `overdraft` code, not hit the database's
    limit trigger (FN006, an InvariantViolation, a 500 for the client)."""
    w = wallet_with(store, tenant, 100)
    outcome = queued_behind(
        database,
        store,
        w,
        lambda tx: ledger.post_entry(tx, transfer_draft(w.wallet, w.cash, 80), uuid.uuid4(), now()),
        lambda: transfer(store, tenant, w.wallet, w.cash, 50),
    )
    assert isinstance(outcome, LedgerRejection), f"expected an overdraft rejection: {outcome!r}"
    assert outcome.code is RejectCode.OVERDRAFT
    assert store(tenant, lambda tx: ledger.account_balance(tx, w.wallet)).signed == 20


def test_posting_queued_behind_closing_sees_the_account_closed(
    database: Database, store: PostgresLedgerStore, tenant: str
) -> None:
    w = wallet_with(store, tenant, 100)
    outcome = queued_behind(
        database,
        store,
        w,
        lambda tx: ledger.close_account(tx, w.cash, now()),
        lambda: transfer(store, tenant, w.wallet, w.cash, 10),
    )
    assert isinstance(outcome, LedgerRejection), outcome
    assert outcome.code is RejectCode.ACCOUNT_CLOSED
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", tenant) == 1
