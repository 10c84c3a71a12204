"""Sealing a real ledger of a few thousand entries into checkpoints: what is stored (tiles,
frontier, checkpoints, consistency proofs) and every proof served agree with the reference
`MerkleLog` built from the same entry hashes, verify, and cost few reads."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sized
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import pytest

from finance import limits
from finance.adapters.postgres.db import Database
from finance.adapters.postgres.integrity import run_checks
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.proof_store import PostgresProofStore
from finance.bench.loader import append_entries_fast
from finance.bootstrap import SystemClock
from finance.domain.accounts import AccountType
from finance.domain.errors import LedgerRejection, RejectCode
from finance.proofs.chain import chain_hash
from finance.proofs.checkpoint import (
    SignedCheckpoint,
    body_hash,
    verify_checkpoint,
    verify_checkpoint_chain,
)
from finance.proofs.merkle import (
    MerkleLog,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from finance.proofs.signatures import TrustStore
from finance.proofs.tiles import Subtree
from finance.proofs.verification import VerificationFailed
from finance.services.ports import (
    EntryRecord,
    LeafSource,
    ProofBacklog,
    ProofStore,
    ProofTransaction,
    StoredCheckpoint,
    UnsignedSummary,
)
from finance.services.proofs import Proofs
from tests.integration.helpers import (
    new_tenant,
    open_account,
    post_many,
)
from tests.proof_checks import verify_receipt
from tests.signers import SIGNER_ID, FlakySigner, trust_for

T = TypeVar("T")
S = TypeVar("S", bound=Sized)
# Sealed sizes chosen around tile boundaries (tiles of 256 leaves): inside the first tile, its
# end, mid-tile, one more, a power of two, and past it.
SIZES = (3, 256, 700, 701, 2048, 3001)
PROBES = (0, 1, 2, 255, 256, 257, 699, 700, 1024, 2047, 2048, 3000)


@dataclass
class Sealed:
    tenant: str
    hashes: list[bytes]  # entry chain hashes by sequence
    log: MerkleLog
    checkpoints: list[StoredCheckpoint]
    proofs: Proofs
    trust: TrustStore
    debit: UUID
    credit: UUID


def make_proofs(database: Database, signer: FlakySigner | None, **options: Any) -> Proofs:
    signers = [(SIGNER_ID, signer)] if signer is not None else []
    return Proofs(
        PostgresProofStore(database), SystemClock(), signer_id=SIGNER_ID, signers=signers, **options
    )


def chain_hashes(database: Database, tenant: str) -> list[bytes]:
    with database.admin() as conn:
        rows = conn.execute(
            "SELECT hash FROM journal_entries WHERE tenant_id = %s ORDER BY sequence", (tenant,)
        ).fetchall()
    return [bytes(row[0]) for row in rows]


def grow_to(store: PostgresLedgerStore, database: Database, sealed: Sealed, size: int) -> None:
    current = len(chain_hashes(database, sealed.tenant))
    if size > current:
        append_entries_fast(database, sealed.tenant, size - current, sealed.debit, sealed.credit)


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> FlakySigner:
    return FlakySigner(tmp_path_factory.mktemp("keys") / "ledger-signer.pem")


@pytest.fixture(scope="module")
def sealed(store: PostgresLedgerStore, database: Database, signer: FlakySigner) -> Sealed:
    """One ledger sealed at each of SIZES; the first entries go through the real posting path."""
    tenant = new_tenant(store)
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    post_many(store, tenant, SIZES[0], cash, equity)
    proofs = make_proofs(database, signer)
    result = Sealed(
        tenant, [], MerkleLog(), [], proofs, trust_for(signer), debit=cash, credit=equity
    )
    for size in SIZES:
        grow_to(store, database, result, size)
        checkpoint = proofs.seal(tenant)
        assert checkpoint is not None
        assert checkpoint.tree_size == size
    assert len(proofs.sign_pending(tenant).signed) == len(SIZES)
    result.hashes = chain_hashes(database, tenant)
    result.log = MerkleLog(leaf_hash(h) for h in result.hashes)
    result.checkpoints = [proofs.checkpoint(tenant, seq) for seq in range(len(SIZES))]
    return result


# What is stored -------------------------------------------------------------------------


def test_checkpoints_sign_the_merkle_root_and_chain_head(sealed: Sealed) -> None:
    previous = None
    for seq, (size, stored) in enumerate(zip(SIZES, sealed.checkpoints, strict=True)):
        body = stored.body
        assert (body.seq, body.tree_size) == (seq, size)
        assert body.origin == f"{SIGNER_ID}/{sealed.tenant}"
        assert body.root_hash == sealed.log.root(size)
        assert body.chain_head == sealed.hashes[size - 1]
        assert stored.is_signed
        assert stored.signed_at is not None
        assert stored.signed_at >= body.issued_at
        envelope = SignedCheckpoint.from_bytes(stored.envelope().to_bytes())
        verify_checkpoint(envelope, sealed.trust)
        if previous is None:
            assert body.prev_checkpoint is None
        else:
            verify_checkpoint_chain(previous, body)
            assert body.prev_checkpoint == body_hash(previous)
            assert body.issued_at > previous.issued_at
        previous = body


def test_stored_tiles_are_the_roots_of_every_complete_256_leaf_block(
    database: Database, sealed: Sealed
) -> None:
    leaves = [leaf_hash(h) for h in sealed.hashes]
    with database.admin() as conn:
        rows = conn.execute(
            "SELECT height, node_index, hash FROM merkle_nodes WHERE tenant_id = %s",
            (sealed.tenant,),
        ).fetchall()
        head = conn.execute(
            "SELECT tree_size, next_seq, root_hash, frontier FROM proof_heads WHERE tenant_id = %s",
            (sealed.tenant,),
        ).fetchone()
    stored = {Subtree(int(h), int(i)): bytes(x) for h, i, x in rows}
    blocks = SIZES[-1] // 256
    assert stored == {Subtree(8, i): root(leaves[i * 256 : (i + 1) * 256]) for i in range(blocks)}
    assert head is not None
    assert (head[0], head[1], bytes(head[2])) == (SIZES[-1], len(SIZES), sealed.log.root())
    assert bytes(head[3]) == b"".join(sealed.log.frontier(SIZES[-1]).hashes)


def test_finance_check_recomputes_the_sealed_log(database: Database, sealed: Sealed) -> None:
    with database.admin() as conn:
        results = run_checks(conn, [sealed.tenant])
    assert [r.problem for r in results if not r.ok] == []
    assert "merkle_checkpoints" in {r.check for r in results}


# Proofs ---------------------------------------------------------------------------------------


def test_inclusion_paths_match_the_merkle_log(sealed: Sealed) -> None:
    for size in SIZES:
        for index in (p for p in PROBES if p < size):
            path = sealed.proofs.inclusion_path(sealed.tenant, index, size)
            assert path == sealed.log.inclusion_path(index, size), (index, size)
            verify_inclusion(
                index, size, leaf_hash(sealed.hashes[index]), path, sealed.log.root(size)
            )


@pytest.mark.parametrize(("index", "size"), [(5, 5), (-1, 5), (0, SIZES[-1] + 1)])
def test_inclusion_outside_a_sealed_tree_is_refused(sealed: Sealed, index: int, size: int) -> None:
    with pytest.raises(LedgerRejection) as refused:
        sealed.proofs.inclusion_path(sealed.tenant, index, size)
    assert refused.value.code is RejectCode.VALIDATION_FAILED


def test_consistency_between_any_two_checkpoints(sealed: Sealed) -> None:
    """Stored for consecutive checkpoints, computed otherwise: the same proofs either way."""
    for first in range(len(SIZES)):
        for second in range(first, len(SIZES)):
            found = sealed.proofs.consistency(sealed.tenant, first, second)
            old, new = SIZES[first], SIZES[second]
            expected = [] if old == new else sealed.log.consistency_proof(old, new)
            assert list(found.proof) == expected, (first, second)
            assert (found.first.seq, found.second.seq) == (first, second)
            verify_consistency(
                old, new, found.first.body.root_hash, found.second.body.root_hash, found.proof
            )


def test_frontiers_of_any_sealed_size(sealed: Sealed) -> None:
    for size in (0, 1, 2, 255, 256, 257, 1000, 2047, 2048, 2049, 3001):
        frontier = sealed.proofs.frontier(sealed.tenant, size)
        assert frontier.size == size
        assert frontier.hashes == sealed.log.frontier(size).hashes
    with pytest.raises(LedgerRejection) as refused:
        sealed.proofs.frontier(sealed.tenant, SIZES[-1] + 1)
    assert refused.value.code is RejectCode.VALIDATION_FAILED


def test_receipts_verify_against_the_signed_checkpoint(database: Database, sealed: Sealed) -> None:
    with database.admin() as conn:
        ids = dict(
            conn.execute(
                "SELECT sequence, id FROM journal_entries WHERE tenant_id = %s"
                " AND sequence = ANY(%s)",
                (sealed.tenant, list(PROBES)),
            ).fetchall()
        )
    for sequence, entry_id in ids.items():
        receipt = sealed.proofs.receipt(sealed.tenant, entry_id)
        checkpoint = verify_receipt(receipt, sealed.trust)
        assert checkpoint.body.seq == len(SIZES) - 1
        assert receipt["leaf_index"] == sequence
    # Against an older checkpoint that covers it, too.
    older = verify_receipt(sealed.proofs.receipt(sealed.tenant, ids[255], 1), sealed.trust)
    assert older.body.tree_size == 256
    with pytest.raises(LedgerRejection) as refused:
        sealed.proofs.receipt(sealed.tenant, ids[256], 1)
    assert refused.value.code is RejectCode.ENTRY_NOT_COVERED


def test_a_receipt_for_an_altered_entry_does_not_verify(database: Database, sealed: Sealed) -> None:
    """Control for the verification above: it is not vacuous."""
    with database.admin() as conn:
        row = conn.execute(
            "SELECT id FROM journal_entries WHERE tenant_id = %s AND sequence = 700",
            (sealed.tenant,),
        ).fetchone()
    assert row is not None
    receipt = sealed.proofs.receipt(sealed.tenant, row[0])
    for posting in receipt["entry"]["postings"]:  # both sides: it still balances
        posting["amount"] = "999999"
    with pytest.raises(VerificationFailed, match="inclusion"):
        verify_receipt(receipt, sealed.trust)


def test_entries_stream_in_batches_with_their_chain(sealed: Sealed) -> None:
    records = list(sealed.proofs.entries(sealed.tenant, 250, 780, batch_size=64))
    assert [r.sequence for r in records] == list(range(250, 781))
    previous = sealed.hashes[249]
    for record in records:
        assert record.body["entry_id"] == record.sequence
        assert record.prev_hash == previous
        assert chain_hash(record.prev_hash, record.body) == record.hash
        assert record.hash == sealed.hashes[record.sequence]
        previous = record.hash
    assert next(iter(sealed.proofs.entries(sealed.tenant, 0, 0))).sequence == 0


@pytest.mark.parametrize(("first", "last", "code"), [
    (5, 4, RejectCode.VALIDATION_FAILED),
    (-1, 4, RejectCode.VALIDATION_FAILED),
    (0, SIZES[-1], RejectCode.ENTRY_NOT_FOUND),
])  # fmt: skip
def test_entries_outside_the_ledger_are_refused_up_front(
    sealed: Sealed, first: int, last: int, code: RejectCode
) -> None:
    with pytest.raises(LedgerRejection) as refused:
        sealed.proofs.entries(sealed.tenant, first, last)
    assert refused.value.code is code


def test_first_signed_checkpoint_covering_a_size(sealed: Sealed) -> None:
    find = sealed.proofs.first_signed_covering
    assert [find(sealed.tenant, n).seq for n in (1, 3, 4, 256, 257, 701, 2049, 3001)] == [  # type: ignore[union-attr]
        0, 0, 1, 1, 2, 3, 5, 5,
    ]  # fmt: skip
    assert find(sealed.tenant, 3002) is None


def test_list_checkpoints_newest_first(sealed: Sealed) -> None:
    listed = sealed.proofs.list_checkpoints(sealed.tenant, None, 4)
    assert [c.seq for c in listed] == [5, 4, 3, 2]
    assert [c.seq for c in sealed.proofs.list_checkpoints(sealed.tenant, 2, 10)] == [1, 0]


# Reads stay small --------------------------------------------------------------------------


class CountingStore:
    """The proof store, counting the hashes and rows each kind of read returns."""

    def __init__(self, inner: ProofStore) -> None:
        self.inner = inner
        self.rows: dict[str, int] = {}

    def __call__(self, tenant_id: str, work: Callable[[ProofTransaction], T]) -> T:
        return self.inner(tenant_id, lambda tx: work(self._wrap(tx)))

    def backlog(self, tenants_max: int) -> list[ProofBacklog]:
        return self.inner.backlog(tenants_max)

    def unsigned_summary(self) -> UnsignedSummary:
        return self.inner.unsigned_summary()

    def _wrap(self, tx: ProofTransaction) -> ProofTransaction:
        counting = self

        class Counted:
            def __getattr__(self, name: str) -> Any:
                return getattr(tx, name)

            def entry_hashes(self, sequences: Collection[int]) -> dict[int, bytes]:
                return counting.count("entry_hashes", tx.entry_hashes(sequences))

            def merkle_nodes(self, subtrees: Collection[Subtree]) -> dict[Subtree, bytes]:
                return counting.count("merkle_nodes", tx.merkle_nodes(subtrees))

            def leaf_sources(self, start: int, stop: int) -> list[LeafSource]:
                return counting.count("leaf_sources", tx.leaf_sources(start, stop))

            def entry_records(self, start: int, stop: int) -> list[EntryRecord]:
                return counting.count("entry_records", tx.entry_records(start, stop))

        return Counted()

    def count(self, kind: str, found: S) -> S:
        self.rows[kind] = self.rows.get(kind, 0) + len(found)
        return found


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda p, t, ids: p.inclusion_path(t, 1500, 3001), id="inclusion"),
        pytest.param(lambda p, t, ids: p.consistency(t, 0, 5), id="consistency"),
        pytest.param(lambda p, t, ids: p.frontier(t, 3000), id="frontier"),
        pytest.param(lambda p, t, ids: p.receipt(t, ids[1500]), id="receipt"),
    ],
)
def test_proofs_read_a_few_hundred_hashes_not_the_ledger(
    database: Database, sealed: Sealed, operation: Callable[[Proofs, str, dict[int, UUID]], object]
) -> None:
    counting = CountingStore(PostgresProofStore(database))
    proofs = Proofs(counting, SystemClock(), signer_id=SIGNER_ID)
    with database.admin() as conn:
        ids = dict(
            conn.execute(
                "SELECT sequence, id FROM journal_entries WHERE tenant_id = %s AND sequence = 1500",
                (sealed.tenant,),
            ).fetchall()
        )
    operation(proofs, sealed.tenant, ids)
    # Below 256 leaves per tile level (two levels here) plus one entry body for a receipt.
    assert 0 < sum(counting.rows.values()) <= 2 * 255 + 1, counting.rows
    assert "leaf_sources" not in counting.rows


# Sealing rules --------------------------------------------------------------------------------


def test_nothing_new_seals_nothing_and_checkpoint_now_returns_the_latest(
    sealed: Sealed,
) -> None:
    assert sealed.proofs.seal(sealed.tenant) is None
    latest = sealed.proofs.checkpoint_now(sealed.tenant)
    assert latest.seq == len(SIZES) - 1
    assert latest.is_signed


def test_an_empty_ledger_has_no_checkpoint(database: Database, tenant: str) -> None:
    proofs = make_proofs(database, None)
    assert proofs.seal(tenant) is None
    with pytest.raises(LedgerRejection) as refused:
        proofs.checkpoint_now(tenant)
    assert refused.value.code is RejectCode.LEDGER_EMPTY
    with pytest.raises(LedgerRejection) as missing:
        proofs.latest_signed(tenant)
    assert missing.value.code is RejectCode.CHECKPOINT_NOT_FOUND
    assert proofs.list_checkpoints(tenant, None, 10) == []


def test_an_unknown_tenant_is_refused(database: Database) -> None:
    proofs = make_proofs(database, None)
    with pytest.raises(LedgerRejection) as refused:
        proofs.checkpoint_now(f"t-{uuid.uuid4().hex[:12]}")
    assert refused.value.code is RejectCode.TENANT_NOT_FOUND


def test_a_long_backlog_is_sealed_in_bounded_checkpoints(
    store: PostgresLedgerStore,
    database: Database,
    tenant: str,
    signer: FlakySigner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At most CHECKPOINT_LEAVES_MAX entries per checkpoint, read SEAL_LEAF_BATCH at a time;
    an on-demand checkpoint catches up over as many as it takes."""
    monkeypatch.setattr(limits, "CHECKPOINT_LEAVES_MAX", 300)
    monkeypatch.setattr(limits, "SEAL_LEAF_BATCH", 37)
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    append_entries_fast(database, tenant, 1000, cash, equity)
    proofs = make_proofs(database, signer)
    latest = proofs.checkpoint_now(tenant)
    sizes = [c.tree_size for c in reversed(proofs.list_checkpoints(tenant, None, 10))]
    assert sizes == [300, 600, 900, 1000]
    assert latest.tree_size == 1000
    assert latest.is_signed
    log = MerkleLog(leaf_hash(h) for h in chain_hashes(database, tenant))
    assert latest.body.root_hash == log.root()
    with database.admin() as conn:
        assert all(r.ok for r in run_checks(conn, [tenant]))


def test_issued_at_is_strictly_increasing_even_when_the_clock_is_behind(
    store: PostgresLedgerStore, database: Database, tenant: str
) -> None:
    class FrozenClock:
        def now(self) -> datetime:
            return datetime(2020, 1, 1, tzinfo=UTC)

    proofs = Proofs(PostgresProofStore(database), FrozenClock(), signer_id=SIGNER_ID)
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    issued = []
    for _ in range(3):
        post_many(store, tenant, 1, cash, equity)
        checkpoint = proofs.seal(tenant)
        assert checkpoint is not None
        issued.append(checkpoint.body.issued_at)
    assert issued[0] == datetime(2020, 1, 1, tzinfo=UTC)
    assert issued[0] < issued[1] < issued[2]
