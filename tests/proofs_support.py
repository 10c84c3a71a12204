"""A synthetic ledger for the proof tests: real entry bodies, chain hashes, a Merkle log and
signed checkpoints, made with the production functions and no database.

`SyntheticLedger(n)` is deterministic for a given id and seed, so two ledgers that differ in one
entry share every hash before it: that is how a rewritten history is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import rfc8785

from finance.proofs import chain
from finance.proofs.checkpoint import CheckpointBody, SignedCheckpoint, body_hash, sign_checkpoint
from finance.proofs.merkle import MerkleLog, leaf_hash
from finance.proofs.range import build_range_package
from finance.proofs.receipt import build_receipt
from finance.proofs.signing import Signer
from tests.signers import MemorySigner

SIGNER_ID = "finance.test"
CREATED_AT = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
NAMESPACE = uuid.UUID("6f1c1f4e-6d8b-4b53-9a3e-2f6f0e6a0c11")
CASH = uuid.uuid5(NAMESPACE, "cash")
SALES = uuid.uuid5(NAMESPACE, "sales")


def make_body(ledger_id: str, sequence: int, amount: int | None = None) -> dict[str, Any]:
    return chain.entry_body(
        ledger_id=ledger_id,
        sequence=sequence,
        entry_uuid=uuid.uuid5(NAMESPACE, f"{ledger_id}/{sequence}"),
        posted_at=CREATED_AT + timedelta(seconds=sequence),
        effective_date=date(2026, 1, 1),
        entry_type="SALE",
        memo=f"sale {sequence}" if sequence % 3 else None,
        source="test",
        source_id=f"s-{sequence}",
        reversal_of=None,
        postings=[
            (CASH, "debit", amount or 100 + sequence, "USD"),
            (SALES, "credit", amount or 100 + sequence, "USD"),
        ],
        metadata={"n": str(sequence)} if sequence % 2 else {},
    )


@contextmanager
def rfc8785_fallback_forbidden() -> Iterator[None]:
    """Inside, any call to rfc8785.dumps fails: shows that `canonical_dumps` took its fast path
    (compute the expected bytes with rfc8785 before entering)."""

    def fallback(value: object) -> bytes:
        raise AssertionError(f"canonical_dumps fell back to rfc8785 for {value!r:.200}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rfc8785, "dumps", fallback)
        yield


class SyntheticLedger:
    """Entries 0..n-1 of one ledger, with checkpoints issued on request."""

    def __init__(
        self,
        size: int,
        ledger_id: str = "acme",
        signer: Signer | None = None,
        edit: Callable[[dict[str, Any]], None] | None = None,
        edit_at: int | None = None,
    ) -> None:
        self.ledger_id = ledger_id
        self.origin = f"{SIGNER_ID}/{ledger_id}"
        self.signer: Signer = signer or MemorySigner()
        self.genesis = chain.genesis_hash(ledger_id, CREATED_AT)
        self.bodies: list[dict[str, Any]] = []
        self.hashes: list[bytes] = []
        self.log = MerkleLog()
        self.checkpoints: list[SignedCheckpoint] = []
        for sequence in range(size):
            body = make_body(ledger_id, sequence)
            if edit is not None and sequence == edit_at:
                edit(body)
            self.append(body)

    def append(self, body: dict[str, Any]) -> None:
        digest = chain.chain_hash(self.prev_hash(len(self.bodies)), body)
        self.bodies.append(body)
        self.hashes.append(digest)
        self.log.append(leaf_hash(digest))

    def prev_hash(self, index: int) -> bytes:
        return self.genesis if index == 0 else self.hashes[index - 1]

    def issue(
        self, size: int | None = None, signers: Sequence[Signer] | None = None
    ) -> SignedCheckpoint:
        """The next checkpoint, over the first `size` entries (default: all)."""
        size = self.log.size if size is None else size
        previous = self.checkpoints[-1].body if self.checkpoints else None
        body = CheckpointBody(
            origin=self.origin,
            tree_size=size,
            root_hash=self.log.root(size),
            chain_head=self.hashes[size - 1],
            seq=len(self.checkpoints),
            prev_checkpoint=None if previous is None else body_hash(previous),
            issued_at=CREATED_AT + timedelta(hours=1 + len(self.checkpoints)),
        )
        signed = sign_checkpoint(body, [(SIGNER_ID, s) for s in signers or [self.signer]])
        self.checkpoints.append(signed)
        return signed

    def package(
        self,
        start: int,
        end: int,
        checkpoint: SignedCheckpoint | None = None,
        signers: Sequence[Signer] | None = None,
    ) -> bytes:
        checkpoint = checkpoint or self.checkpoints[-1]
        size = checkpoint.body.tree_size
        return build_range_package(
            ledger_id=self.ledger_id,
            entries=self.bodies[start : end + 1],
            start_prev_hash=self.prev_hash(start),
            left_frontier=self.log.frontier(start).hashes,
            consistency=[] if end + 1 == size else self.log.consistency_proof(end + 1, size),
            checkpoint=checkpoint,
            generated_at=checkpoint.body.issued_at,
            package_id=uuid.uuid5(
                NAMESPACE, f"{self.ledger_id}/{start}/{end}/{checkpoint.body.seq}"
            ),
            signers=[(SIGNER_ID, s) for s in signers or [self.signer]],
            ledger_created_at=CREATED_AT,
        )

    def receipt(self, index: int, checkpoint: SignedCheckpoint | None = None) -> bytes:
        checkpoint = checkpoint or self.checkpoints[-1]
        return build_receipt(
            self.bodies[index],
            self.prev_hash(index),
            index,
            self.log.inclusion_path(index, checkpoint.body.tree_size),
            checkpoint,
        )
