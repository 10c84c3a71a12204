"""Signed proofs as use cases (docs/proofs.md, sections 4-6): seal each tenant's Merkle log into
checkpoints, sign them, and serve what auditors verify against them.

Sealing a tenant is one transaction: lock its proof head (SKIP LOCKED, so sealers on several
replicas never wait on each other), read the new entry hashes, store the Merkle subtrees they
complete, store the next checkpoint unsigned and the consistency proof from the previous one.
Signing happens after commit, outside any transaction (an HSM or KMS call is slow and may fail),
oldest unsigned first: a failure stops that tenant's signing, leaves the rest queued, and marks
the process degraded until a signature succeeds again. Postings never wait for any of this.

Every proof is built from the stored subtrees plus fewer than 256 entry hashes per subtree
(`finance.proofs.tiles`), so its cost does not grow with the ledger, and is checked against the
signed roots before it leaves (paired assertions: a wrong proof is a bug, never served).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol, TypeVar
from uuid import UUID

import structlog

from finance import limits
from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.proofs.chain import canonical_bytes
from finance.proofs.checkpoint import CheckpointBody, body_hash, sign_checkpoint
from finance.proofs.merkle import (
    Frontier,
    ProofError,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from finance.proofs.receipt import receipt_json
from finance.proofs.signing import Signer
from finance.proofs.tiles import (
    Range,
    TileBuilder,
    TileLayout,
    consistency_ranges,
    frontier_ranges,
    inclusion_ranges,
)
from finance.services.ports import (
    Clock,
    EntryRecord,
    ProofBacklog,
    ProofHead,
    ProofStore,
    ProofTransaction,
    StoredCheckpoint,
    UnsignedSummary,
)

T = TypeVar("T")
log = structlog.get_logger(__name__)

_ONE_MICROSECOND: Final = timedelta(microseconds=1)
_LOST_RACES_MAX: Final = 3


# Observability ports ----------------------------------------------------------------------


class ProofMetrics(Protocol):
    """Where the use cases report what they did (Prometheus in `finance.observability`)."""

    def checkpoint_issued(self, lag_s: float) -> None: ...
    def checkpoint_signed(self, lag_s: float) -> None: ...
    def signing_failed(self) -> None: ...
    def unsigned_backlog(self, count: int, oldest_age_s: float) -> None: ...


class NullProofMetrics:
    def checkpoint_issued(self, lag_s: float) -> None:
        pass

    def checkpoint_signed(self, lag_s: float) -> None:
        pass

    def signing_failed(self) -> None:
        pass

    def unsigned_backlog(self, count: int, oldest_age_s: float) -> None:
        pass


@dataclass(frozen=True)
class SigningState:
    reason: str | None = None
    since: datetime | None = None

    @property
    def degraded(self) -> bool:
        return self.reason is not None


class SigningStatus:
    """Process-wide: can checkpoints be signed right now, and if not, why and since when. Every
    signing attempt (sealer rounds, on-demand requests) updates it; /readyz reads it. Degraded
    is not down: postings go on and checkpoints queue until the signer is back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = SigningState()

    def failed(self, reason: str, now: datetime) -> None:
        with self._lock:
            since = self._state.since if self._state.degraded else now
            self._state = SigningState(reason, since)

    def recovered(self) -> None:
        with self._lock:
            self._state = SigningState()

    def state(self) -> SigningState:
        with self._lock:
            return self._state


# Results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignOutcome:
    """What one signing pass did: the checkpoints it signed, in seq order, and why it stopped
    early (`error`, the signer's failure), if it did."""

    signed: tuple[StoredCheckpoint, ...]
    error: str | None = None


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 PROOF(first.tree_size, D[second.tree_size]); empty when first is second."""

    first: StoredCheckpoint
    second: StoredCheckpoint
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class _Sealed:
    checkpoint: StoredCheckpoint | None  # None: nothing new, or another sealer holds the head
    ledger_size: int


class Proofs:
    """The proof use cases for every tenant, wired once at start-up (bootstrap)."""

    def __init__(
        self,
        store: ProofStore,
        clock: Clock,
        *,
        signer_id: str,
        signers: Sequence[tuple[str, Signer]] = (),
        status: SigningStatus | None = None,
        metrics: ProofMetrics | None = None,
        layout: TileLayout | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.signer_id = signer_id
        self.signers = tuple(signers)
        self.status = status or SigningStatus()
        self.metrics: ProofMetrics = metrics or NullProofMetrics()
        self.layout = layout or TileLayout()
        self._locks_guard = threading.Lock()
        self._signing_locks: dict[str, threading.Lock] = {}

    def origin(self, tenant_id: str) -> str:
        """The checkpoint `origin`: which log, of which operator (docs/proofs.md, section 4.2)."""
        return f"{self.signer_id}/{tenant_id}"

    # Sealing ------------------------------------------------------------------------------

    def seal(self, tenant_id: str, *, wait: bool = False) -> StoredCheckpoint | None:
        """Issue the next checkpoint, unsigned, over the entries posted since the last one (at
        most CHECKPOINT_LEAVES_MAX of them). None when there is nothing new, or when another
        sealer holds the tenant's head and `wait` is false."""
        return self._seal_once(tenant_id, wait=wait).checkpoint

    def _seal_once(self, tenant_id: str, *, wait: bool) -> _Sealed:
        def work(tx: ProofTransaction) -> _Sealed:
            head = tx.lock_proof_head(wait=wait)
            if head is None:
                return _Sealed(None, -1)
            ledger_size = tx.ledger_size()
            if ledger_size <= head.tree_size:
                return _Sealed(None, ledger_size)
            target = min(ledger_size, head.tree_size + limits.CHECKPOINT_LEAVES_MAX)
            return _Sealed(self._append_checkpoint(tx, head, target), ledger_size)

        sealed = self.store(tenant_id, work)
        if sealed.checkpoint is not None:
            checkpoint = sealed.checkpoint
            self.metrics.checkpoint_issued(_seconds(checkpoint.body.issued_at, checkpoint))
            log.info(
                "checkpoint.issued",
                tenant=tenant_id,
                seq=checkpoint.seq,
                tree_size=checkpoint.tree_size,
            )
        return sealed

    def _append_checkpoint(
        self, tx: ProofTransaction, head: ProofHead, target: int
    ) -> StoredCheckpoint:
        builder = TileBuilder(head.tree_size, head.frontier, self.layout)
        if head.tree_size and builder.root() != head.root_hash:
            raise InvariantViolation(
                f"the stored frontier of {tx.tenant_id} does not give checkpoint "
                f"{head.next_seq - 1}'s root"
            )
        newest = None
        for start in range(head.tree_size, target, limits.SEAL_LEAF_BATCH):
            stop = min(start + limits.SEAL_LEAF_BATCH, target)
            sources = tx.leaf_sources(start, stop)
            if [s.sequence for s in sources] != list(range(start, stop)):
                raise InvariantViolation(f"entries {start}..{stop - 1} are not all there")
            builder.extend(leaf_hash(source.hash) for source in sources)
            tx.insert_merkle_nodes(builder.take_completed())
            newest = sources[-1]
        assert newest is not None  # target > head.tree_size
        body = CheckpointBody(
            origin=self.origin(tx.tenant_id),
            tree_size=target,
            root_hash=builder.root(),
            chain_head=newest.hash,
            seq=head.next_seq,
            prev_checkpoint=head.last_body_hash,
            issued_at=_issued_at(self.clock.now(), head.last_issued_at),
        )
        tx.insert_checkpoint(body, canonical_bytes(body.to_json()), body_hash(body))
        tx.set_frontier(builder.frontier)
        if head.next_seq > 0:
            assert head.root_hash is not None
            proof = self._range_roots(tx, consistency_ranges(head.tree_size, target))
            _verified_consistency(head.tree_size, target, head.root_hash, body.root_hash, proof)
            tx.insert_consistency(head.next_seq - 1, proof)
        return StoredCheckpoint(body, None, None, newest.posted_at)

    # Signing ------------------------------------------------------------------------------

    def sign_pending(
        self, tenant_id: str, signers: Sequence[tuple[str, Signer]] | None = None
    ) -> SignOutcome:
        """Sign the tenant's unsigned checkpoints in seq order, each stored as soon as it is
        signed. The first signer failure stops the pass (the rest stay queued, in order) and
        marks the process degraded; a success clears that."""
        chosen = self.signers if signers is None else tuple(signers)
        done: list[StoredCheckpoint] = []
        lost_races = 0
        with self._signing_lock(tenant_id):
            while True:
                pending = self.store(
                    tenant_id, lambda tx: tx.unsigned_checkpoints(limits.SIGN_BATCH)
                )
                if not pending:
                    return SignOutcome(tuple(done))
                for checkpoint in pending:
                    try:
                        signed = self._sign_one(tenant_id, checkpoint, chosen)
                    except _SigningFailed as failure:
                        return SignOutcome(tuple(done), failure.reason)
                    if signed is None:
                        # Another process signed it first: re-read, unless it keeps winning
                        # (then it is signing this tenant and will finish the queue).
                        lost_races += 1
                        if lost_races > _LOST_RACES_MAX:
                            return SignOutcome(tuple(done))
                        break
                    done.append(signed)

    def _sign_one(
        self,
        tenant_id: str,
        checkpoint: StoredCheckpoint,
        signers: Sequence[tuple[str, Signer]],
    ) -> StoredCheckpoint | None:
        try:
            if not signers:
                raise ValueError("no checkpoint signer is configured")
            envelope = sign_checkpoint(checkpoint.body, signers)
        # A signer is an outside system (HSM, KMS): whatever it raises is an outage to report
        # and retry, never a reason to stop the sealer or lose the queued checkpoints.
        except Exception as exc:
            reason = f"checkpoint signer failed: {type(exc).__name__}: {exc}"
            self.status.failed(reason, self.clock.now())
            self.metrics.signing_failed()
            log.warning("checkpoint.signing_failed", tenant=tenant_id, seq=checkpoint.seq,
                        error=reason)  # fmt: skip
            raise _SigningFailed(reason) from exc
        signed_at = self.clock.now()
        stored = self.store(
            tenant_id,
            lambda tx: tx.store_signatures(checkpoint.seq, envelope.signatures, signed_at),
        )
        self.status.recovered()
        if not stored:
            return None
        self.metrics.checkpoint_signed(_seconds(signed_at, checkpoint))
        log.info("checkpoint.signed", tenant=tenant_id, seq=checkpoint.seq)
        return StoredCheckpoint(
            checkpoint.body, envelope.signatures, signed_at, checkpoint.covers_posted_at
        )

    def _signing_lock(self, tenant_id: str) -> threading.Lock:
        """One signing pass per tenant at a time in this process (the sealer thread and
        on-demand requests), so checkpoints are signed once and in order."""
        with self._locks_guard:
            return self._signing_locks.setdefault(tenant_id, threading.Lock())

    def checkpoint_now(self, tenant_id: str) -> StoredCheckpoint:
        """Seal everything posted so far (waiting for a sealer that holds the head) and sign
        what is queued. The checkpoint covering the ledger as it was when called: signed, or
        still pending if the signer is down (see `status`). LEDGER_EMPTY for an empty ledger."""
        sealed = self._seal_once(tenant_id, wait=True)
        caught_up_to = sealed.ledger_size
        while sealed.checkpoint is not None and sealed.checkpoint.tree_size < caught_up_to:
            sealed = self._seal_once(tenant_id, wait=True)
        latest = self._sign_and_read_latest(tenant_id)
        if not latest.is_signed and not self.status.state().degraded:
            # A sealer issued a newer checkpoint while we signed: sign that one too, once.
            latest = self._sign_and_read_latest(tenant_id)
        return latest

    def _sign_and_read_latest(self, tenant_id: str) -> StoredCheckpoint:
        self.sign_pending(tenant_id)
        latest = self.store(tenant_id, lambda tx: tx.latest_checkpoint(signed_only=False))
        if latest is None:
            raise LedgerRejection(
                RejectCode.LEDGER_EMPTY, "the ledger has no entries yet, so no checkpoint"
            )
        return latest

    # Work lists for sealers and probes ----------------------------------------------------

    def backlog(self, tenants_max: int = limits.SEAL_TENANTS_PER_ROUND_MAX) -> list[ProofBacklog]:
        return self.store.backlog(tenants_max)

    def unsigned_summary(self) -> UnsignedSummary:
        """How many checkpoints wait for the signer over all tenants; also sets the gauge."""
        summary = self.store.unsigned_summary()
        oldest = summary.oldest_issued_at
        age_s = 0.0 if oldest is None else max(0.0, (self.clock.now() - oldest).total_seconds())
        self.metrics.unsigned_backlog(summary.count, age_s)
        return summary

    # Reading checkpoints ------------------------------------------------------------------

    def checkpoint(self, tenant_id: str, seq: int) -> StoredCheckpoint:
        found = self.store(tenant_id, lambda tx: tx.get_checkpoint(seq))
        if found is None:
            raise _checkpoint_not_found(f"checkpoint {seq} does not exist")
        return found

    def latest_signed(self, tenant_id: str) -> StoredCheckpoint:
        found = self.store(tenant_id, lambda tx: tx.latest_checkpoint(signed_only=True))
        if found is None:
            raise _checkpoint_not_found("no checkpoint has been signed yet")
        return found

    def first_signed_covering(self, tenant_id: str, tree_size: int) -> StoredCheckpoint | None:
        """The oldest signed checkpoint with at least `tree_size` entries, if any: the one to
        prove entries 0..tree_size-1 against with the shortest consistency proofs."""
        return self.store(tenant_id, lambda tx: tx.first_signed_checkpoint(tree_size))

    def list_checkpoints(
        self, tenant_id: str, before_seq: int | None, limit: int
    ) -> list[StoredCheckpoint]:
        """Up to `limit` checkpoints, newest first, before `before_seq` (signed or pending)."""
        return self.store(tenant_id, lambda tx: tx.list_checkpoints(before_seq, limit))

    # Proofs -------------------------------------------------------------------------------

    def inclusion_path(self, tenant_id: str, leaf_index: int, tree_size: int) -> list[bytes]:
        """RFC 9162 PATH(leaf_index, D[tree_size]) for a sealed tree size."""
        if not 0 <= leaf_index < tree_size:
            raise _invalid(f"leaf index {leaf_index} is outside a tree of size {tree_size}")

        def work(tx: ProofTransaction) -> list[bytes]:
            _require_sealed(tx, tree_size)
            return self._range_roots(tx, inclusion_ranges(leaf_index, tree_size))

        return self.store(tenant_id, work)

    def consistency(self, tenant_id: str, from_seq: int, to_seq: int) -> ConsistencyProof:
        """The RFC 9162 consistency proof between two checkpoints: the stored one for
        consecutive checkpoints, computed from the tiles otherwise; verified before return."""
        if not 0 <= from_seq <= to_seq:
            raise _invalid(f"from ({from_seq}) must be a checkpoint at or before to ({to_seq})")

        def work(tx: ProofTransaction) -> ConsistencyProof:
            first, second = tx.get_checkpoint(from_seq), tx.get_checkpoint(to_seq)
            if first is None or second is None:
                missing = from_seq if first is None else to_seq
                raise _checkpoint_not_found(f"checkpoint {missing} does not exist")
            if from_seq == to_seq:
                proof: list[bytes] = []
            elif to_seq == from_seq + 1:
                stored = tx.stored_consistency(to_seq)
                if stored is None:
                    raise InvariantViolation(f"no stored consistency proof to {to_seq}")
                proof = stored
            else:
                proof = self._range_roots(tx, consistency_ranges(first.tree_size, second.tree_size))
            first_body, second_body = first.body, second.body
            _verified_consistency(
                first_body.tree_size,
                second_body.tree_size,
                first_body.root_hash,
                second_body.root_hash,
                proof,
            )
            return ConsistencyProof(first, second, tuple(proof))

        return self.store(tenant_id, work)

    def size_consistency(self, tenant_id: str, old_size: int, to_seq: int) -> list[bytes]:
        """PROOF(old_size, D[tree_size of checkpoint to_seq]): from any sealed size (a range
        package's last entry + 1) to a checkpoint, verified against the stored roots."""

        def work(tx: ProofTransaction) -> list[bytes]:
            target = tx.get_checkpoint(to_seq)
            if target is None:
                raise _checkpoint_not_found(f"checkpoint {to_seq} does not exist")
            if not 0 < old_size <= target.tree_size:
                raise _invalid(f"size {old_size} is outside checkpoint {to_seq}'s tree")
            if old_size == target.tree_size:
                return []
            ranges = consistency_ranges(old_size, target.tree_size)
            proof = self._range_roots(tx, ranges)
            old_root = self._range_roots(tx, frontier_ranges(old_size))
            _verified_consistency(
                old_size,
                target.tree_size,
                Frontier(old_size, old_root).root(),
                target.body.root_hash,
                proof,
            )
            return proof

        return self.store(tenant_id, work)

    def frontier(self, tenant_id: str, size: int) -> Frontier:
        """The compact range [0, size) of a sealed size: a range proof's `left_frontier`."""
        if size < 0:
            raise _invalid("a frontier size cannot be negative")
        if size == 0:
            return Frontier.empty()

        def work(tx: ProofTransaction) -> Frontier:
            _require_sealed(tx, size)
            return Frontier(size, self._range_roots(tx, frontier_ranges(size)))

        return self.store(tenant_id, work)

    def receipt(
        self, tenant_id: str, entry_id: UUID, checkpoint_seq: int | None = None
    ) -> dict[str, Any]:
        """The inclusion receipt of docs/proofs.md section 6 for one entry, against the latest
        signed checkpoint (or the signed checkpoint `checkpoint_seq`), verified before it is
        returned. ENTRY_NOT_SEALED while no signed checkpoint covers the entry yet."""

        def work(tx: ProofTransaction) -> dict[str, Any]:
            sequence = tx.entry_sequence(entry_id)
            if sequence is None:
                raise LedgerRejection(
                    RejectCode.ENTRY_NOT_FOUND, f"entry {entry_id} does not exist"
                )
            checkpoint = _receipt_checkpoint(tx, sequence, checkpoint_seq)
            [record] = tx.entry_records(sequence, sequence + 1)
            path = self._range_roots(tx, inclusion_ranges(sequence, checkpoint.tree_size))
            try:
                verify_inclusion(
                    sequence,
                    checkpoint.tree_size,
                    leaf_hash(record.hash),
                    path,
                    checkpoint.body.root_hash,
                )
            except ProofError as exc:
                raise InvariantViolation(f"receipt for entry {sequence}: {exc.reason}") from exc
            return receipt_json(
                record.body, record.prev_hash, sequence, path, checkpoint.envelope()
            )

        return self.store(tenant_id, work)

    # Entries for export -------------------------------------------------------------------

    def ledger_size(self, tenant_id: str) -> int:
        return self.store(tenant_id, lambda tx: tx.ledger_size())

    def ledger_created_at(self, tenant_id: str) -> datetime:
        return self.store(tenant_id, lambda tx: tx.ledger_created_at())

    def first_sequence_posted_at_or_after(self, tenant_id: str, moment: datetime) -> int:
        """The first entry posted at or after `moment`, or the ledger size if none was."""
        return self.store(tenant_id, lambda tx: tx.first_sequence_posted_at_or_after(moment))

    def entries(
        self,
        tenant_id: str,
        first: int,
        last: int,
        *,
        batch_size: int = limits.ENTRY_RECORDS_BATCH,
    ) -> Iterator[EntryRecord]:
        """Entries `first`..`last` (inclusive) in sequence order, each with its canonical body,
        hash and prev_hash, read `batch_size` at a time (one short transaction per batch:
        posted entries never change, so the batches agree). Checked up front: the range must
        exist (ENTRY_NOT_FOUND past the newest entry); the iterator then never holds more than
        one batch in memory."""
        if not 0 <= first <= last:
            raise _invalid(f"the range {first}..{last} is empty or negative")
        if not 1 <= batch_size <= limits.PAGE_SIZE_MAX * 10:
            raise ValueError(f"batch size {batch_size} is out of range")
        size = self.ledger_size(tenant_id)
        if last >= size:
            raise LedgerRejection(
                RejectCode.ENTRY_NOT_FOUND, f"entry {last} does not exist ({size} entries)"
            )
        return self._entry_batches(tenant_id, first, last, batch_size)

    def _entry_batches(
        self, tenant_id: str, first: int, last: int, batch_size: int
    ) -> Iterator[EntryRecord]:
        for start in range(first, last + 1, batch_size):
            stop = min(start + batch_size, last + 1)
            records = self.store(tenant_id, _reader(start, stop))
            if [r.sequence for r in records] != list(range(start, stop)):
                raise InvariantViolation(f"entries {start}..{stop - 1} are not all there")
            yield from records

    # Hashes from tiles ------------------------------------------------------------------

    def _range_roots(self, tx: ProofTransaction, ranges: Sequence[Range]) -> list[bytes]:
        """The roots of `ranges` from the stored subtrees and the few entry hashes below them:
        two batched reads whatever the size of the ledger."""
        reads = self.layout.reads(ranges)
        nodes = tx.merkle_nodes(reads.nodes)
        hashes = tx.entry_hashes(reads.leaves)
        if len(nodes) != len(reads.nodes) or len(hashes) != len(reads.leaves):
            raise InvariantViolation(
                f"the Merkle log of {tx.tenant_id} lacks {len(reads.nodes) - len(nodes)} stored"
                f" subtrees and {len(reads.leaves) - len(hashes)} entries a proof needs"
            )
        leaves = {index: leaf_hash(value) for index, value in hashes.items()}
        return self.layout.range_roots(ranges, nodes, leaves)


class _SigningFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reader(start: int, stop: int) -> Callable[[ProofTransaction], list[EntryRecord]]:
    return lambda tx: tx.entry_records(start, stop)


def _issued_at(now: datetime, previous: datetime | None) -> datetime:
    """Strictly after the previous checkpoint, even if this host's clock is behind the one
    that issued it (the database refuses anything else)."""
    if previous is None:
        return now
    return max(now, previous + _ONE_MICROSECOND)


def _seconds(moment: datetime, checkpoint: StoredCheckpoint) -> float:
    """Checkpoint lag: from the posting of the newest entry covered to `moment`."""
    return max(0.0, (moment - checkpoint.covers_posted_at).total_seconds())


def _verified_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    try:
        verify_consistency(size1, size2, root1, root2, proof)
    except ProofError as exc:
        raise InvariantViolation(f"consistency {size1} -> {size2}: {exc.reason}") from exc


def _require_sealed(tx: ProofTransaction, size: int) -> None:
    latest = tx.latest_checkpoint(signed_only=False)
    sealed = 0 if latest is None else latest.tree_size
    if size > sealed:
        raise _invalid(f"tree size {size} is past the newest checkpoint ({sealed} entries)")


def _receipt_checkpoint(
    tx: ProofTransaction, sequence: int, checkpoint_seq: int | None
) -> StoredCheckpoint:
    if checkpoint_seq is None:
        latest = tx.latest_checkpoint(signed_only=True)
        if latest is None or latest.tree_size <= sequence:
            raise LedgerRejection(
                RejectCode.ENTRY_NOT_SEALED,
                f"no signed checkpoint covers entry {sequence} yet; retry shortly",
            )
        return latest
    chosen = tx.get_checkpoint(checkpoint_seq)
    if chosen is None:
        raise _checkpoint_not_found(f"checkpoint {checkpoint_seq} does not exist")
    if chosen.tree_size <= sequence:
        raise LedgerRejection(
            RejectCode.ENTRY_NOT_COVERED,
            f"checkpoint {checkpoint_seq} covers entries 0..{chosen.tree_size - 1},"
            f" not entry {sequence}",
        )
    if not chosen.is_signed:
        raise LedgerRejection(
            RejectCode.CHECKPOINT_NOT_SIGNED,
            f"checkpoint {checkpoint_seq} is waiting for the signer; retry shortly",
        )
    return chosen


def _checkpoint_not_found(detail: str) -> LedgerRejection:
    return LedgerRejection(RejectCode.CHECKPOINT_NOT_FOUND, detail)


def _invalid(detail: str) -> LedgerRejection:
    return LedgerRejection(RejectCode.VALIDATION_FAILED, detail)
