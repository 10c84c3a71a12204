"""What commands share: settings, the database, the local token issuer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.bootstrap import SystemClock, default_signers, open_database, proof_service
from finance.config import Settings, load_settings
from finance.services.ports import LedgerTransaction
from finance.services.proofs import Proofs

T = TypeVar("T")


def settings() -> Settings:
    return load_settings()


@contextmanager
def database(config: Settings) -> Iterator[Database]:
    """The service's database for one command: its least-privileged login for ledger work
    (honouring FINANCE_WRITE_MODE), the owner's for checks and listings."""
    db = open_database(config, pool_max=2)
    try:
        yield db
    finally:
        db.close()


def in_tenant(config: Settings, tenant_id: str, work: Callable[[LedgerTransaction], T]) -> T:
    """Run one unit of work for a tenant, on a short-lived pool."""
    with database(config) as db:
        return PostgresLedgerStore(db)(tenant_id, work)


def proofs(config: Settings, db: Database) -> Proofs:
    """The proof use cases with the configured checkpoint signers."""
    return proof_service(config, db, default_signers(config), SystemClock())
