"""What an offline verifier does with what the service hands out, for tests on every layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import rfc8785

from finance.proofs.checkpoint import SignedCheckpoint
from finance.proofs.receipt import verify_receipt as receipt_verifier
from finance.proofs.signatures import TrustStore
from finance.services.ports import ProofBacklog, ProofStore, ProofTransaction, UnsignedSummary

T = TypeVar("T")


def verify_receipt(receipt: dict[str, Any], trust: TrustStore) -> SignedCheckpoint:
    """What an auditor runs on a served receipt: the offline verifier (docs/proofs.md section 6)
    over its canonical bytes; the signed checkpoint it was proven against."""
    return receipt_verifier(rfc8785.dumps(receipt), trust).checkpoint


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
