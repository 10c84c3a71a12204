"""What an offline verifier does with what the service hands out, for tests on every layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from finance.proofs.chain import chain_hash
from finance.proofs.checkpoint import SignedCheckpoint, verify_checkpoint
from finance.proofs.merkle import leaf_hash, verify_inclusion
from finance.proofs.signatures import TrustStore
from finance.proofs.strict_json import b64decode_hash
from finance.services.ports import ProofBacklog, ProofStore, ProofTransaction, UnsignedSummary

T = TypeVar("T")


def verify_receipt(receipt: dict[str, Any], trust: TrustStore) -> SignedCheckpoint:
    """docs/proofs.md 3.4: the checkpoint's signature, then the entry's hash and its inclusion
    path against the tree size and root of that verified checkpoint (never the receipt's)."""
    assert receipt["type"] == "finance/entry-receipt/v1"
    assert set(receipt) == {
        "type", "entry", "prev_hash", "leaf_index", "inclusion_path", "checkpoint"
    }  # fmt: skip
    checkpoint = SignedCheckpoint.from_json(receipt["checkpoint"])
    verify_checkpoint(checkpoint, trust)
    entry = receipt["entry"]
    assert entry["entry_id"] == receipt["leaf_index"]
    digest = chain_hash(b64decode_hash(receipt["prev_hash"]), entry)
    path = [b64decode_hash(value) for value in receipt["inclusion_path"]]
    verify_inclusion(
        receipt["leaf_index"],
        checkpoint.body.tree_size,
        leaf_hash(digest),
        path,
        checkpoint.body.root_hash,
    )
    return checkpoint


class OnlyTenants:
    """A proof store whose cross-tenant work list shows only `tenants`: a test's sealer must not
    seal or sign the ledgers of other tests sharing the worker's database."""

    def __init__(self, inner: ProofStore, *tenants: str) -> None:
        self.inner = inner
        self.tenants = set(tenants)

    def __call__(self, tenant_id: str, work: Callable[[ProofTransaction], T]) -> T:
        return self.inner(tenant_id, work)

    def backlog(self, tenants_max: int) -> list[ProofBacklog]:
        mine = [b for b in self.inner.backlog(1_000_000) if b.tenant_id in self.tenants]
        return mine[:tenants_max]

    def unsigned_summary(self) -> UnsignedSummary:
        return self.inner.unsigned_summary()
