"""The batch use case on the real PostgreSQL: entries posted in order in one transaction, each
with its own idempotency key; a refused entry stops only its linked chain; replays and reused
keys; whole-request refusals write nothing; tenants stay apart; the integrity checks pass."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from uuid import UUID

import pytest

from finance import limits
from finance.adapters.postgres.db import Database
from finance.adapters.postgres.integrity import run_checks
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountType
from finance.domain.entries import EntryDraft, PostedEntry
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services import ledger
from finance.services.batches import BatchEntry, BatchResult, BatchStatus, post_batch
from finance.services.idempotency import (
    IdempotentRequest,
    request_fingerprint,
    run_idempotent_posting,
)
from finance.services.ports import LedgerTransaction
from tests.integration.helpers import (
    Conn,
    balance_of,
    count_rows,
    counting_key_writes,
    new_tenant,
    now,
    open_account,
    run_concurrently,
    tenant_snapshot,
    transfer,
    transfer_draft,
)

ENTRIES_MAX = 1_000


@dataclass(frozen=True)
class Books:
    """A no-overdraft wallet funded with 100 from equity, and a shop that spends from it."""

    tenant: str
    wallet: UUID
    equity: UUID
    shop: UUID


@pytest.fixture
def books(store: PostgresLedgerStore, tenant: str) -> Books:
    wallet = open_account(
        store, tenant, "wallet", AccountType.ASSET, credits_must_not_exceed_debits=True
    )
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    shop = open_account(store, tenant, "shop", AccountType.EXPENSE)
    transfer(store, tenant, wallet, equity, 100)
    return Books(tenant, wallet, equity, shop)


def respond(entry: PostedEntry) -> tuple[int, bytes]:
    """A stand-in for the API's EntryOut bytes: what each test reads back."""
    body = {"id": str(entry.id), "sequence": entry.sequence, "hash": entry.hash.hex()}
    return 201, json.dumps(body).encode()


def item(
    debit: UUID, credit: UUID, amount: int, *, key: str | None = None, linked: bool = False
) -> BatchEntry:
    """A transfer as a batch entry; its fingerprint covers the accounts and the amount."""
    body = {"debit": str(debit), "credit": str(credit), "amount": amount}
    return BatchEntry(
        f"k-{uuid.uuid4().hex}" if key is None else key,
        request_fingerprint("POST", "/v1/journal", body),
        lambda _today: transfer_draft(debit, credit, amount),
        linked,
    )


def spend(books: Books, amount: int, **options: Any) -> BatchEntry:
    return item(books.shop, books.wallet, amount, **options)


def run(
    store: PostgresLedgerStore,
    tenant: str,
    entries: Sequence[BatchEntry],
    *,
    entries_max: int = ENTRIES_MAX,
) -> list[BatchResult]:
    return store(
        tenant,
        lambda tx: post_batch(tx, entries, now(), entries_max=entries_max, respond=respond),
    )


def statuses(results: Sequence[BatchResult]) -> list[str]:
    return [
        result.rejection.code.value if result.rejection else result.status.value
        for result in results
    ]


def body(result: BatchResult) -> dict[str, Any]:
    assert result.body is not None
    parsed: dict[str, Any] = json.loads(result.body)
    return parsed


def wallet_balance(store: PostgresLedgerStore, books: Books) -> int:
    return balance_of(store, books.tenant, books.wallet).signed


def assert_healthy(database: Database, tenant: str) -> None:
    with database.admin() as conn:
        results = run_checks(conn, [tenant])
    assert [r.problem for r in results if not r.ok] == []


def entries_of(conn: Conn, tenant: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT sequence, id, hash, prev_hash FROM journal_entries WHERE tenant_id = %s"
        " ORDER BY sequence",
        (tenant,),
    ).fetchall()


# Posting in order ----------------------------------------------------------------------------


def test_a_batch_posts_every_entry_in_order_on_consecutive_sequences(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    entries = [item(books.wallet, books.equity, amount) for amount in range(1, 301)]
    results = run(store, books.tenant, entries)

    assert [r.status for r in results] == [BatchStatus.CREATED] * 300
    assert [body(r)["sequence"] for r in results] == list(range(1, 301))
    with database.admin() as conn:
        rows = entries_of(conn, books.tenant)
        assert [row[0] for row in rows] == list(range(301))
        # Each entry chains to the one before it, in the order of the batch.
        assert all(row[3] == previous[2] for previous, row in itertools.pairwise(rows))
        assert [str(row[1]) for row in rows[1:]] == [body(r)["id"] for r in results]
        # Each key names its entry, and keeps no copy of the response.
        stored = conn.execute(
            "SELECT key, entry_id, status_code, response_body FROM idempotency_keys"
            " WHERE tenant_id = %s",
            (books.tenant,),
        ).fetchall()
        assert {key: rest for key, *rest in stored} == {
            entry.key: [UUID(body(r)["id"]), None, None]
            for entry, r in zip(entries, results, strict=True)
        }
    assert wallet_balance(store, books) == 100 + sum(range(1, 301))
    assert_healthy(database, books.tenant)


def test_the_line_posting_numbers_follow_the_chain_across_the_batch(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    results = run(store, books.tenant, [spend(books, 10), spend(books, 20), spend(books, 30)])
    ids = [body(r)["id"] for r in results]
    with database.admin() as conn:
        numbers = conn.execute(
            "SELECT entry_id, account_posting_sequence, credits_after FROM journal_lines"
            " WHERE tenant_id = %s AND account_id = %s ORDER BY account_posting_sequence",
            (books.tenant, books.wallet),
        ).fetchall()
    # The funding entry was the wallet's posting 1; the batch's three spends are 2, 3, 4.
    assert [(str(n[0]), n[1], n[2]) for n in numbers[1:]] == [
        (ids[0], 2, 10),
        (ids[1], 3, 30),
        (ids[2], 4, 60),
    ]


def test_a_refused_entry_does_not_stop_the_others_nor_count_for_later_balances(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    # 60 fits the wallet's 100; the second 60 does not; 40 fits only if that one never counted.
    results = run(store, books.tenant, [spend(books, 60), spend(books, 60), spend(books, 40)])

    assert statuses(results) == ["created", "overdraft", "created"]
    assert [body(results[0])["sequence"], body(results[2])["sequence"]] == [1, 2]
    assert results[1].rejection is not None
    assert results[1].rejection.context == {"account_id": str(books.wallet)}
    assert wallet_balance(store, books) == 0
    assert_healthy(database, books.tenant)


def test_each_entry_is_refused_with_its_own_code(
    store: PostgresLedgerStore, tenant: str, books: Books
) -> None:
    def refused_draft(code: RejectCode) -> BatchEntry:
        def draft(_today: date) -> EntryDraft:
            raise LedgerRejection(code, "refused while building the draft")

        return BatchEntry(f"k-{uuid.uuid4().hex}", b"\x01" * 32, draft)

    results = run(
        store,
        tenant,
        [
            refused_draft(RejectCode.UNBALANCED_ENTRY),
            item(uuid.uuid4(), books.wallet, 5),
            spend(books, 5),
            spend(books, 500),
        ],
    )
    assert statuses(results) == ["unbalanced_entry", "account_not_found", "created", "overdraft"]


def test_a_batch_that_refuses_every_entry_writes_nothing(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    with database.admin() as conn:
        before = tenant_snapshot(conn, books.tenant)
    results = run(store, books.tenant, [spend(books, 500), item(uuid.uuid4(), books.shop, 1)])
    assert statuses(results) == ["overdraft", "account_not_found"]
    with database.admin() as conn:
        assert tenant_snapshot(conn, books.tenant) == before


# Linked chains ----------------------------------------------------------------------------------


def test_a_linked_chain_is_refused_whole_and_the_other_entries_post(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    with database.admin() as conn:
        before = count_rows(conn, "journal_entries", "tenant_id", books.tenant)
    results = run(
        store,
        books.tenant,
        [
            spend(books, 10),
            spend(books, 20, linked=True),
            spend(books, 500, linked=True),  # the overdraft that fails the chain
            spend(books, 30),
            spend(books, 40),
        ],
    )

    assert statuses(results) == [
        "created",
        "linked_entry_failed",
        "overdraft",
        "linked_entry_failed",
        "created",
    ]
    failed = results[1].rejection
    assert failed is not None
    assert failed.context == {"failed_index": "2"}
    assert "overdraft" in failed.detail
    assert wallet_balance(store, books) == 100 - 10 - 40
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", books.tenant) == before + 2
    assert_healthy(database, books.tenant)


def test_a_chain_books_against_its_own_entries_and_a_refused_chain_counts_for_nothing(
    store: PostgresLedgerStore, books: Books
) -> None:
    results = run(
        store,
        books.tenant,
        [
            # Funds 50 then spends 120 of the 150: only possible together.
            item(books.wallet, books.equity, 50, linked=True),
            spend(books, 120),
            # Funds 500 then overdraws: refused whole, so its funding never happened...
            item(books.wallet, books.equity, 500, linked=True),
            spend(books, 1_000),
            # ...and 100 is more than the 30 left.
            spend(books, 100),
            spend(books, 30),
        ],
    )
    assert statuses(results) == [
        "created",
        "created",
        "linked_entry_failed",
        "overdraft",
        "overdraft",
        "created",
    ]
    assert wallet_balance(store, books) == 0


def test_a_batch_whose_last_entry_is_linked_is_refused_whole(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    with database.admin() as conn:
        before = tenant_snapshot(conn, books.tenant)
    with pytest.raises(LedgerRejection) as refused:
        run(store, books.tenant, [spend(books, 1), spend(books, 2, linked=True)])
    assert refused.value.code is RejectCode.LINKED_CHAIN_OPEN
    assert refused.value.context == {"index": "1"}
    with database.admin() as conn:
        assert tenant_snapshot(conn, books.tenant) == before


# Idempotency -------------------------------------------------------------------------------------


def test_a_retried_batch_replays_every_entry_and_writes_nothing(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    entries = [spend(books, 10), spend(books, 500), spend(books, 20, linked=True), spend(books, 1)]
    first = run(store, books.tenant, entries)
    assert statuses(first) == ["created", "overdraft", "created", "created"]
    with database.admin() as conn:
        before = tenant_snapshot(conn, books.tenant)

    again = run(store, books.tenant, [entries[0], entries[2], entries[3]])

    assert statuses(again) == ["replayed"] * 3
    assert [r.body for r in again] == [first[0].body, first[2].body, first[3].body]
    with database.admin() as conn:
        assert tenant_snapshot(conn, books.tenant) == before


def test_a_refused_entry_stores_nothing_under_its_key(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    key = "order-7"
    results = run(store, books.tenant, [spend(books, 10), spend(books, 500, key=key)])
    assert statuses(results) == ["created", "overdraft"]
    with database.admin() as conn:
        keys = conn.execute(
            "SELECT count(*) FROM idempotency_keys WHERE tenant_id = %s AND key = %s",
            (books.tenant, key),
        ).fetchone()
    assert keys == (0,)

    # The corrected entry goes through with the same key.
    retried = run(store, books.tenant, [spend(books, 50, key=key)])
    assert statuses(retried) == ["created"]
    assert wallet_balance(store, books) == 40


def test_a_key_used_for_another_request_refuses_only_its_entry(
    store: PostgresLedgerStore, books: Books
) -> None:
    run(store, books.tenant, [spend(books, 10, key="order-1")])
    results = run(
        store, books.tenant, [spend(books, 1), spend(books, 11, key="order-1"), spend(books, 2)]
    )
    assert statuses(results) == ["created", "idempotency_key_reused", "created"]
    assert wallet_balance(store, books) == 100 - 10 - 1 - 2


def test_a_reused_key_fails_its_linked_chain(store: PostgresLedgerStore, books: Books) -> None:
    run(store, books.tenant, [spend(books, 10, key="order-1")])
    results = run(
        store, books.tenant, [spend(books, 1, linked=True), spend(books, 11, key="order-1")]
    )
    assert statuses(results) == ["linked_entry_failed", "idempotency_key_reused"]


def test_a_replayed_entry_stays_posted_when_its_chain_fails(
    store: PostgresLedgerStore, books: Books
) -> None:
    """Nothing in a later request can undo an entry an earlier one posted: it is reported as
    replayed, and the rest of the chain is refused."""
    done = spend(books, 10)
    first = run(store, books.tenant, [done])
    results = run(store, books.tenant, [replace(done, linked=True), spend(books, 500)])
    assert statuses(results) == ["replayed", "overdraft"]
    assert results[0].body == first[0].body


def test_keys_are_shared_with_single_postings_both_ways(
    store: PostgresLedgerStore, books: Books
) -> None:
    """A batch entry's fingerprint is that of the same entry posted alone, so either replays
    the other's stored response."""

    def single(entry: BatchEntry) -> tuple[bytes, bool]:
        def post(tx: LedgerTransaction, entry_id: UUID) -> PostedEntry:
            return ledger.post_entry(tx, entry.draft(now().date()), entry_id, now())

        request = IdempotentRequest(entry.key, entry.request_hash)
        result = run_idempotent_posting(store, books.tenant, request, post, respond)
        return result.body, result.replayed

    posted_alone = spend(books, 10)
    body_alone, _ = single(posted_alone)
    assert statuses(run(store, books.tenant, [posted_alone])) == ["replayed"]
    assert run(store, books.tenant, [posted_alone])[0].body == body_alone

    posted_in_batch = spend(books, 20)
    [result] = run(store, books.tenant, [posted_in_batch])
    assert single(posted_in_batch) == (result.body, True)
    assert wallet_balance(store, books) == 70


@pytest.mark.parametrize(
    ("keys", "code"),
    [
        (["a", "b", "a"], RejectCode.DUPLICATE_IDEMPOTENCY_KEY),
        (["a", "b c"], RejectCode.IDEMPOTENCY_KEY_INVALID),
        (["a", ""], RejectCode.IDEMPOTENCY_KEY_INVALID),
        (["a", "x" * 256], RejectCode.IDEMPOTENCY_KEY_INVALID),
    ],
)
def test_bad_or_repeated_keys_refuse_the_whole_batch(
    store: PostgresLedgerStore, database: Database, books: Books, keys: list[str], code: RejectCode
) -> None:
    with database.admin() as conn:
        before = tenant_snapshot(conn, books.tenant)
    with pytest.raises(LedgerRejection) as refused:
        run(store, books.tenant, [spend(books, 1, key=key) for key in keys])
    assert refused.value.code is code
    assert refused.value.context == {"index": str(len(keys) - 1)}
    with database.admin() as conn:
        assert tenant_snapshot(conn, books.tenant) == before


# Limits ------------------------------------------------------------------------------------------


def test_the_configured_maximum_holds_and_a_full_batch_posts(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    with database.admin() as conn:
        before = tenant_snapshot(conn, books.tenant)
    with pytest.raises(LedgerRejection) as refused:
        run(store, books.tenant, [spend(books, 1) for _ in range(11)], entries_max=10)
    assert refused.value.code is RejectCode.TOO_MANY_ENTRIES
    with pytest.raises(LedgerRejection) as empty:
        run(store, books.tenant, [])
    assert empty.value.code is RejectCode.VALIDATION_FAILED
    with database.admin() as conn:
        assert tenant_snapshot(conn, books.tenant) == before

    full = [item(books.wallet, books.equity, 1) for _ in range(ENTRIES_MAX)]
    assert statuses(run(store, books.tenant, full)) == ["created"] * ENTRIES_MAX
    assert_healthy(database, books.tenant)


def test_the_lines_of_a_batch_are_bounded(
    store: PostgresLedgerStore, books: Books, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "BATCH_LINES_PER_ENTRY_AVG", 1)
    # Six two-line entries: within 6 entries, but 12 lines over 6 x 1.
    with pytest.raises(LedgerRejection) as refused:
        run(store, books.tenant, [spend(books, 1) for _ in range(6)], entries_max=6)
    assert refused.value.code is RejectCode.TOO_MANY_LINES
    three = [spend(books, 1) for _ in range(3)]
    assert statuses(run(store, books.tenant, three, entries_max=6)) == ["created"] * 3


# Tenants -----------------------------------------------------------------------------------------


def test_tenants_stay_apart(store: PostgresLedgerStore, database: Database, books: Books) -> None:
    other = new_tenant(store)
    theirs = open_account(store, other, "cash", AccountType.ASSET)
    mine = open_account(store, other, "equity", AccountType.EQUITY)

    # Another tenant's account is unknown here; the same key is a different key there.
    results = run(store, books.tenant, [item(theirs, books.equity, 5, key="shared")])
    assert statuses(results) == ["account_not_found"]
    assert statuses(run(store, books.tenant, [spend(books, 5, key="shared")])) == ["created"]
    assert statuses(run(store, other, [item(theirs, mine, 5, key="shared")])) == ["created"]
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", other) == 1
    assert_healthy(database, other)
    assert_healthy(database, books.tenant)


def test_an_unknown_tenant_is_refused_whole(store: PostgresLedgerStore, books: Books) -> None:
    with pytest.raises(LedgerRejection) as refused:
        run(store, f"t-{uuid.uuid4().hex[:12]}", [spend(books, 1)])
    assert refused.value.code is RejectCode.TENANT_NOT_FOUND


# Round trips and concurrency ---------------------------------------------------------------------


class Counting:
    """A LedgerTransaction that counts the calls to each of its methods (each is one statement,
    except the claim, which is two when a key was used before)."""

    def __init__(self, tx: LedgerTransaction, calls: dict[str, int]) -> None:
        self._tx = tx
        self._calls = calls
        self.tenant_id = tx.tenant_id

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._tx, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls[name] = self._calls.get(name, 0) + 1
            return method(*args, **kwargs)

        return counted


@pytest.mark.parametrize("size", [1, 500])
def test_a_batch_takes_the_same_few_statements_whatever_its_size(
    store: PostgresLedgerStore, books: Books, size: int
) -> None:
    calls: dict[str, int] = {}
    entries = [spend(books, 500)] + [item(books.wallet, books.equity, 1) for _ in range(size)]

    def work(tx: LedgerTransaction) -> list[BatchResult]:
        counted: Any = Counting(tx, calls)
        return post_batch(counted, entries, now(), entries_max=ENTRIES_MAX, respond=respond)

    results = store(books.tenant, work)
    assert statuses(results) == ["overdraft"] + ["created"] * size
    assert calls == {
        "claim_idempotency_keys": 1,
        "lock_accounts": 1,
        "release_idempotency_keys": 1,
        "lock_chain_head": 1,
        "insert_entries": 1,
    }


def test_a_retried_batch_reads_its_replayed_entries_in_one_call(
    store: PostgresLedgerStore, books: Books
) -> None:
    entries = [item(books.wallet, books.equity, 1) for _ in range(50)]
    first = run(store, books.tenant, entries)
    calls: dict[str, int] = {}

    def work(tx: LedgerTransaction) -> list[BatchResult]:
        counted: Any = Counting(tx, calls)
        return post_batch(counted, entries, now(), entries_max=ENTRIES_MAX, respond=respond)

    again = store(books.tenant, work)
    assert [r.body for r in again] == [r.body for r in first]
    assert calls == {"claim_idempotency_keys": 1, "get_entries": 1}


def test_a_batch_writes_each_key_once_and_gives_back_the_refused_ones(
    database: Database, books: Books
) -> None:
    counts: dict[str, int] = {}
    entries = [spend(books, 500)] + [item(books.wallet, books.equity, 1) for _ in range(20)]
    results = counting_key_writes(database, counts)(
        books.tenant,
        lambda tx: post_batch(tx, entries, now(), entries_max=ENTRIES_MAX, respond=respond),
    )
    assert statuses(results) == ["overdraft"] + ["created"] * 20
    assert counts == {"inserted": 21, "updated": 0, "deleted": 1}


def test_concurrent_retries_of_one_batch_post_each_entry_once(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    entries = [item(books.wallet, books.equity, amount) for amount in range(1, 21)]
    outcomes = run_concurrently(4, lambda _: run(store, books.tenant, entries))

    bodies: dict[str, set[bytes | None]] = {}
    for outcome in outcomes:
        assert not isinstance(outcome, Exception), outcome
        assert {r.status for r in outcome} <= {BatchStatus.CREATED, BatchStatus.REPLAYED}
        for entry, result in zip(entries, outcome, strict=True):
            bodies.setdefault(entry.key, set()).add(result.body)
    # Every worker saw the one response of each key.
    assert all(len(seen) == 1 for seen in bodies.values())
    with database.admin() as conn:
        assert count_rows(conn, "journal_entries", "tenant_id", books.tenant) == 1 + 20
    assert wallet_balance(store, books) == 100 + sum(range(1, 21))
    assert_healthy(database, books.tenant)


def test_batches_and_single_postings_interleave_on_one_chain(
    store: PostgresLedgerStore, database: Database, books: Books
) -> None:
    def work(worker: int) -> object:
        if worker % 2:
            return run(store, books.tenant, [spend(books, 1) for _ in range(10)])
        return [transfer(store, books.tenant, books.shop, books.wallet, 1) for _ in range(5)]

    outcomes = run_concurrently(4, work)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    # 2 batches of 10 and 2 x 5 singles, all within the wallet's 100.
    assert wallet_balance(store, books) == 100 - 30
    assert_healthy(database, books.tenant)
