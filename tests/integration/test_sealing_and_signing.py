"""Sealers racing each other and postings never fork or duplicate a checkpoint; a signer that
fails leaves checkpoints queued in order, and signs them in seq order when it is back."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.integrity import run_checks
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.proof_store import PostgresProofStore
from finance.bootstrap import SystemClock
from finance.domain.accounts import AccountType
from finance.proofs.checkpoint import CheckpointBody, verify_checkpoint, verify_checkpoint_chain
from finance.proofs.merkle import MerkleLog, leaf_hash, verify_consistency
from finance.proofs.signatures import TrustStore
from finance.services.ports import StoredCheckpoint
from finance.services.proofs import Proofs, SigningStatus
from finance.workers.sealer import Sealer
from tests.integration.helpers import (
    new_tenant,
    open_account,
    post_many,
    run_concurrently,
)
from tests.proof_checks import OnlyTenants
from tests.signers import SIGNER_ID, FlakySigner, trust_for


@pytest.fixture
def signer(tmp_path: Path) -> FlakySigner:
    return FlakySigner(tmp_path / "ledger-signer.pem")


def proofs_for(database: Database, signer: FlakySigner | None, *tenants: str) -> Proofs:
    """Proofs on the real store; a sealer built on it sees only `tenants`."""
    signers = [] if signer is None else [(SIGNER_ID, signer)]
    return Proofs(
        OnlyTenants(PostgresProofStore(database), *tenants),
        SystemClock(),
        signer_id=SIGNER_ID,
        signers=signers,
        status=SigningStatus(),
    )


def accounts(store: PostgresLedgerStore, tenant: str) -> tuple[object, object]:
    return (
        open_account(store, tenant, "cash"),
        open_account(store, tenant, "equity", AccountType.EQUITY),
    )


def all_checkpoints(proofs: Proofs, tenant: str) -> list[StoredCheckpoint]:
    return list(reversed(proofs.list_checkpoints(tenant, None, 500)))


def assert_one_unbroken_chain(
    database: Database, proofs: Proofs, tenant: str, *, trust: TrustStore | None = None
) -> list[StoredCheckpoint]:
    """Seqs 0..n-1 without gaps or duplicates, each body linked to the previous, sizes growing,
    roots those of the entries, stored consistency proofs verifying, signatures (if `trust`)
    verifying; and `finance check` agrees."""
    checkpoints = all_checkpoints(proofs, tenant)
    assert [c.seq for c in checkpoints] == list(range(len(checkpoints)))
    with database.admin() as conn:
        hashes = [
            bytes(row[0])
            for row in conn.execute(
                "SELECT hash FROM journal_entries WHERE tenant_id = %s ORDER BY sequence",
                (tenant,),
            )
        ]
        assert all(r.ok for r in run_checks(conn, [tenant])), run_checks(conn, [tenant])
    log = MerkleLog(leaf_hash(h) for h in hashes)
    previous: CheckpointBody | None = None
    for checkpoint in checkpoints:
        body = checkpoint.body
        assert body.root_hash == log.root(body.tree_size)
        if trust is not None:
            verify_checkpoint(checkpoint.envelope(), trust)
        if previous is not None:
            verify_checkpoint_chain(previous, body)
            assert body.tree_size > previous.tree_size
            stored = proofs.consistency(tenant, previous.seq, body.seq).proof
            verify_consistency(
                previous.tree_size, body.tree_size, previous.root_hash, body.root_hash, stored
            )
        previous = body
    return checkpoints


# Concurrency ----------------------------------------------------------------------------------


def test_two_sealers_and_postings_at_once_never_fork_the_checkpoint_chain(
    store: PostgresLedgerStore, database: Database, tenant: str
) -> None:
    """Two sealers (one waiting for the head, one skipping it when locked) loop while entries
    are posted: every checkpoint is issued once, in order, and extends the previous."""
    debit, credit = accounts(store, tenant)
    proofs = proofs_for(database, None)
    posting_done = threading.Event()

    def work(worker: int) -> int:
        if worker == 0:
            post_many(store, tenant, 120, debit, credit, per_transaction=3)  # type: ignore[arg-type]
            posting_done.set()
            return 0
        issued = 0
        while not posting_done.is_set():
            if proofs.seal(tenant, wait=worker == 1) is not None:
                issued += 1
        return issued

    results = run_concurrently(3, work)
    assert all(isinstance(r, int) for r in results), results
    proofs.checkpoint_now(tenant)
    checkpoints = assert_one_unbroken_chain(database, proofs, tenant)
    assert checkpoints[-1].tree_size == 120
    assert len(checkpoints) >= 2


def test_concurrent_on_demand_checkpoints_agree(
    store: PostgresLedgerStore, database: Database, tenant: str, signer: FlakySigner
) -> None:
    debit, credit = accounts(store, tenant)
    post_many(store, tenant, 10, debit, credit)  # type: ignore[arg-type]
    proofs = proofs_for(database, signer)
    results = run_concurrently(4, lambda _: proofs.checkpoint_now(tenant))
    assert all(isinstance(r, StoredCheckpoint) for r in results), results
    assert {r.seq for r in results if isinstance(r, StoredCheckpoint)} == {0}
    assert all(r.is_signed for r in results if isinstance(r, StoredCheckpoint))
    assert_one_unbroken_chain(database, proofs, tenant, trust=trust_for(signer))


def test_a_checkpoint_is_signed_once_even_by_racing_signers(
    store: PostgresLedgerStore, database: Database, tenant: str, signer: FlakySigner
) -> None:
    """Two processes' worth of Proofs (separate in-process locks) sign the same queue."""
    debit, credit = accounts(store, tenant)
    sealer = proofs_for(database, None)
    for _ in range(5):
        post_many(store, tenant, 2, debit, credit)  # type: ignore[arg-type]
        sealer.seal(tenant)
    replicas = [proofs_for(database, signer) for _ in range(2)]
    outcomes = run_concurrently(2, lambda i: replicas[i].sign_pending(tenant))
    signed = [c.seq for o in outcomes if not isinstance(o, Exception) for c in o.signed]
    assert sorted(signed) == list(range(5))
    checkpoints = assert_one_unbroken_chain(database, sealer, tenant, trust=trust_for(signer))
    assert all(c.is_signed for c in checkpoints)


# Degraded mode --------------------------------------------------------------------------------


def test_signer_outage_queues_checkpoints_and_recovery_signs_them_in_order(
    store: PostgresLedgerStore, database: Database, tenant: str, signer: FlakySigner
) -> None:
    debit, credit = accounts(store, tenant)
    proofs = proofs_for(database, signer)
    post_many(store, tenant, 3, debit, credit)  # type: ignore[arg-type]
    assert proofs.checkpoint_now(tenant).is_signed

    signer.go_down()
    for _ in range(3):
        post_many(store, tenant, 2, debit, credit)  # type: ignore[arg-type]
        pending = proofs.checkpoint_now(tenant)
        assert not pending.is_signed
    state = proofs.status.state()
    assert state.degraded
    assert state.reason is not None
    assert "HSM unreachable" in state.reason
    queued = [c for c in all_checkpoints(proofs, tenant) if not c.is_signed]
    assert [c.seq for c in queued] == [1, 2, 3]
    assert proofs.unsigned_summary().count >= 3
    with pytest.raises(Exception, match="entry_not_sealed"):
        proofs.receipt(tenant, post_many(store, tenant, 1, debit, credit)[0].id)  # type: ignore[arg-type]

    signer.come_back()
    outcome = proofs.sign_pending(tenant)
    assert outcome.error is None
    assert [c.seq for c in outcome.signed] == [1, 2, 3]
    assert not proofs.status.state().degraded
    checkpoints = assert_one_unbroken_chain(database, proofs, tenant, trust=trust_for(signer))
    signed_at = [c.signed_at for c in checkpoints]
    assert all(moment is not None for moment in signed_at)
    assert signed_at == sorted(signed_at)  # type: ignore[type-var]


def test_a_failure_mid_queue_keeps_the_rest_queued_in_order(
    store: PostgresLedgerStore, database: Database, tenant: str, signer: FlakySigner
) -> None:
    debit, credit = accounts(store, tenant)
    unsigned = proofs_for(database, None)
    for _ in range(4):
        post_many(store, tenant, 1, debit, credit)  # type: ignore[arg-type]
        unsigned.seal(tenant)
    assert unsigned.sign_pending(tenant).error == (
        "checkpoint signer failed: ValueError: no checkpoint signer is configured"
    )

    class FailsOnThirdCall(FlakySigner):
        def sign(self, message: bytes) -> bytes:
            if self.calls == 2:
                self.go_down()
            return super().sign(message)

    flaky = FailsOnThirdCall(signer._signer.path)  # the same key
    proofs = proofs_for(database, flaky)
    first = proofs.sign_pending(tenant)
    assert [c.seq for c in first.signed] == [0, 1]
    assert first.error is not None
    assert [c.is_signed for c in all_checkpoints(proofs, tenant)] == [True, True, False, False]
    flaky.come_back()
    second = proofs.sign_pending(tenant)
    assert ([c.seq for c in second.signed], second.error) == ([2, 3], None)
    assert_one_unbroken_chain(database, proofs, tenant, trust=trust_for(signer))


def test_a_sealer_round_seals_every_tenant_and_stops_signing_at_an_outage(
    store: PostgresLedgerStore, database: Database, signer: FlakySigner
) -> None:
    tenants = [new_tenant(store) for _ in range(2)]
    for tenant in tenants:
        debit, credit = accounts(store, tenant)
        post_many(store, tenant, 2, debit, credit)  # type: ignore[arg-type]
    proofs = proofs_for(database, signer, *tenants)
    sealer = Sealer(proofs, interval_s=0.05)

    signer.go_down()
    report = sealer.run_round()
    assert {b.tenant_id for b in proofs.backlog()} == set(tenants)  # sealed, not yet signed
    assert report.signing_error is not None
    assert (report.tenants, report.sealed, report.signed) == (2, 2, 0)
    for tenant in tenants:
        assert [c.is_signed for c in all_checkpoints(proofs, tenant)] == [False]

    signer.come_back()
    sealer.run_round()
    for tenant in tenants:
        assert [c.is_signed for c in all_checkpoints(proofs, tenant)] == [True]
    assert proofs.backlog() == []


def test_the_sealer_thread_starts_and_stops(
    store: PostgresLedgerStore, database: Database, tenant: str, signer: FlakySigner
) -> None:
    debit, credit = accounts(store, tenant)
    proofs = proofs_for(database, signer, tenant)
    sealer = Sealer(proofs, interval_s=0.02)
    sealer.start()
    try:
        assert sealer.running
        post_many(store, tenant, 5, debit, credit)  # type: ignore[arg-type]
        deadline = threading.Event()
        for _ in range(250):
            found = proofs.list_checkpoints(tenant, None, 1)
            if found and found[0].tree_size == 5 and found[0].is_signed:
                break
            deadline.wait(0.02)
        else:
            raise AssertionError("the sealer did not seal and sign within 5 s")
    finally:
        sealer.stop()
    assert not sealer.running
