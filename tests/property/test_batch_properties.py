"""Batches on the real PostgreSQL against a model written here in plain integers: for random
transfers between no-overdraft accounts, with random linked chains, every entry's outcome, the
balances and the chain are those of posting the batch in order, each chain all or nothing."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.integrity import run_checks
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountSpec, AccountType
from finance.domain.entries import EntryDraft, PostedEntry
from finance.services import ledger
from finance.services.batches import BatchEntry, post_batch
from finance.services.idempotency import request_fingerprint
from finance.services.ports import LedgerTransaction
from tests.integration.helpers import transfer_draft

ACCOUNTS = 3
FUNDING = 100


@dataclass(frozen=True)
class Transfer:
    source: int  # the account that pays (credited); it may not go below zero
    target: int
    amount: int
    linked: bool


transfers = st.builds(
    Transfer,
    st.integers(0, ACCOUNTS - 1),
    st.integers(0, ACCOUNTS - 1),
    st.integers(1, 80),
    st.booleans(),
).filter(lambda t: t.source != t.target)


def model(batch: list[Transfer]) -> tuple[list[str], list[int]]:
    """The outcome of each transfer and the final balances, from first principles."""
    balances = [FUNDING] * ACCOUNTS
    outcomes: list[str] = []
    chain: list[Transfer] = []
    for transfer in batch:
        chain.append(transfer)
        if transfer.linked:
            continue
        trial = list(balances)
        failed = None
        for index, step in enumerate(chain):
            trial[step.source] -= step.amount
            trial[step.target] += step.amount
            if trial[step.source] < 0:
                failed = index
                break
        if failed is None:
            balances = trial
            outcomes.extend(["created"] * len(chain))
        else:
            outcomes.extend(
                "overdraft" if index == failed else "linked_entry_failed"
                for index in range(len(chain))
            )
        chain = []
    return outcomes, balances


def respond(entry: PostedEntry) -> tuple[int, bytes]:
    return 201, json.dumps({"sequence": entry.sequence}).encode()


def fund(store: PostgresLedgerStore, tenant: str, equity: UUID, number: int) -> UUID:
    """A no-overdraft wallet holding FUNDING."""
    spec = AccountSpec(
        f"wallet-{number}", "Wallet", AccountType.ASSET, "USD", credits_must_not_exceed_debits=True
    )
    now = datetime.now(UTC)

    def work(tx: LedgerTransaction) -> UUID:
        wallet = ledger.open_account(tx, spec, uuid.uuid4(), now).id
        ledger.post_entry(tx, transfer_draft(wallet, equity, FUNDING), uuid.uuid4(), now)
        return wallet

    return store(tenant, work)


def item(index: int, transfer: Transfer, accounts: list[UUID]) -> BatchEntry:
    def draft(_today: date) -> EntryDraft:
        target, source = accounts[transfer.target], accounts[transfer.source]
        return transfer_draft(target, source, transfer.amount)

    fingerprint = request_fingerprint("POST", "/v1/journal", {"index": index})
    return BatchEntry(f"k-{index}", fingerprint, draft, transfer.linked)


def balance(store: PostgresLedgerStore, tenant: str, account: UUID) -> int:
    return store(tenant, lambda tx: ledger.account_balance(tx, account)).signed


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(transfers, min_size=1, max_size=30))
def test_a_batch_posts_as_the_model_says(
    store: PostgresLedgerStore, database: Database, batch: list[Transfer]
) -> None:
    batch[-1] = Transfer(batch[-1].source, batch[-1].target, batch[-1].amount, linked=False)
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    store(tenant, lambda tx: ledger.create_tenant(tx, "Batch property", now))
    equity = store(
        tenant,
        lambda tx: ledger.open_account(
            tx, AccountSpec("equity", "Equity", AccountType.EQUITY, "USD"), uuid.uuid4(), now
        ),
    ).id
    accounts = [fund(store, tenant, equity, number) for number in range(ACCOUNTS)]
    entries = [item(index, t, accounts) for index, t in enumerate(batch)]
    results = store(
        tenant,
        lambda tx: post_batch(tx, entries, now, entries_max=1_000, respond=respond),
    )

    outcomes, balances = model(batch)
    assert [r.rejection.code.value if r.rejection else r.status.value for r in results] == outcomes
    created = [json.loads(r.body or b"")["sequence"] for r in results if r.body is not None]
    assert created == list(range(ACCOUNTS, ACCOUNTS + len(created)))
    assert [balance(store, tenant, account) for account in accounts] == balances
    with database.admin() as conn:
        assert [r.problem for r in run_checks(conn, [tenant]) if not r.ok] == []
