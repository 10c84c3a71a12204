"""Connections: a pool of service connections and short-lived admin connections.

Every pooled connection runs as the `finance_app` role with statement and lock timeouts, so
row-level security and the table privileges apply to all service code. Each unit of work sets
the tenant for its own transaction only (`set_config(..., true)`), so a connection returned to
the pool carries no tenant into the next request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import errors
from psycopg_pool import ConnectionPool

from finance import limits
from finance.adapters.postgres.migrate import pending_migrations
from finance.domain.errors import InvariantViolation

T = TypeVar("T")
log = structlog.get_logger(__name__)

APP_ROLE = "finance_app"
# Deadlocks and serialization failures are safe to retry: the transaction was rolled back whole.
_RETRYABLE = (errors.DeadlockDetected, errors.SerializationFailure)


@contextmanager
def translate_invariants() -> Iterator[None]:
    """Refusals by the invariant triggers (SQLSTATE class FN), including the deferred ones that
    fire at COMMIT, and CHECK failures: the domain let through what it must not. A bug, not a
    client error, and never mistaken for an unavailable database."""
    try:
        yield
    except errors.CheckViolation as exc:
        raise InvariantViolation(
            f"database CHECK refused a write: {exc.diag.message_primary}"
        ) from exc
    except psycopg.Error as exc:
        if exc.sqlstate and exc.sqlstate.startswith("FN"):
            raise InvariantViolation(
                f"ledger trigger refused a write ({exc.sqlstate}): {exc.diag.message_primary}"
            ) from exc
        raise


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.autocommit = True
    conn.execute(f"SET ROLE {APP_ROLE}")
    conn.execute(f"SET statement_timeout = {limits.STATEMENT_TIMEOUT_MS}")
    conn.execute(f"SET lock_timeout = {limits.LOCK_TIMEOUT_MS}")
    conn.execute(
        f"SET idle_in_transaction_session_timeout = {limits.IDLE_IN_TRANSACTION_TIMEOUT_MS}"
    )
    conn.autocommit = False


class Database:
    """The service's view of PostgreSQL. Built once at start-up (bootstrap)."""

    def __init__(self, conninfo: str, *, pool_max: int = limits.POOL_SIZE_MAX) -> None:
        self.conninfo = conninfo
        self.pool = ConnectionPool(
            conninfo,
            min_size=min(limits.POOL_SIZE_MIN, pool_max),
            max_size=pool_max,
            timeout=limits.POOL_TIMEOUT_S,
            configure=_configure,
            kwargs={"application_name": "finance"},
            open=False,
        )

    def open(self) -> None:
        self.pool.open(wait=True, timeout=limits.POOL_TIMEOUT_S)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def transaction(self, tenant_id: str | None) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection, scoped to `tenant_id` for RLS."""
        with self.pool.connection() as conn, conn.transaction():
            if tenant_id is not None:
                conn.execute("SELECT set_config('finance.tenant_id', %s, true)", (tenant_id,))
            yield conn

    def run(self, tenant_id: str | None, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run `work` in a tenant transaction, retrying deadlocks and serialization failures."""
        for attempt in range(1, limits.TRANSACTION_RETRIES_MAX + 1):
            try:
                with translate_invariants(), self.transaction(tenant_id) as conn:
                    return work(conn)
            except _RETRYABLE as exc:
                if attempt == limits.TRANSACTION_RETRIES_MAX:
                    raise
                log.warning("transaction.retry", attempt=attempt, error=type(exc).__name__)
                time.sleep(0.002 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def admin(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection as the configured (owning) role: migrations, checks, tenant listing."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            yield conn

    def ready(self) -> tuple[bool, str]:
        """Readiness: the database answers and no migration is pending."""
        try:
            with self.admin() as conn:
                pending = pending_migrations(conn)
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as a reason
            return False, f"database unreachable: {type(exc).__name__}"
        if pending:
            return False, f"{len(pending)} migration(s) pending"
        return True, "ok"
