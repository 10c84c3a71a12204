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
from finance.adapters.postgres.migrate import MigrationError, pending_migrations
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
    except errors.ForeignKeyViolation as exc:
        # Checked at commit (migration 0008): a key claimed for an entry that was not posted.
        if exc.diag.constraint_name == "idempotency_keys_entry_fkey":
            raise InvariantViolation(
                f"an idempotency key names an entry that was not posted: {exc.diag.message_detail}"
            ) from exc
        raise
    except psycopg.Error as exc:
        if exc.sqlstate and exc.sqlstate.startswith("FN"):
            raise InvariantViolation(
                f"ledger trigger refused a write ({exc.sqlstate}): {exc.diag.message_primary}"
            ) from exc
        raise


def _configure_for(read_only: bool) -> Callable[[psycopg.Connection[Any]], None]:
    def configure(conn: psycopg.Connection[Any]) -> None:
        conn.autocommit = True
        conn.execute(f"SET ROLE {APP_ROLE}")
        conn.execute(f"SET statement_timeout = {limits.STATEMENT_TIMEOUT_MS}")
        conn.execute(f"SET lock_timeout = {limits.LOCK_TIMEOUT_MS}")
        conn.execute(
            f"SET idle_in_transaction_session_timeout = {limits.IDLE_IN_TRANSACTION_TIMEOUT_MS}"
        )
        # Cached plans (prepared statements, and the foreign-key checks of every posted line)
        # are planned for the average tenant, never for one tenant's value: a tenant created
        # since the last ANALYZE is estimated at one row, and a plan made for that estimate can
        # read all of its accounts to find one (docs/performance.md, migration 0004).
        conn.execute("SET plan_cache_mode = force_generic_plan")
        if read_only:
            # The posting freeze, held by the database for every entry point (API and CLI).
            conn.execute("SET default_transaction_read_only = on")
        conn.autocommit = False

    return configure


class Database:
    """The service's view of PostgreSQL. Built once at start-up (bootstrap)."""

    def __init__(
        self,
        conninfo: str,
        *,
        admin_conninfo: str | None = None,
        pool_max: int = limits.POOL_SIZE_MAX,
        read_only: bool = False,
    ) -> None:
        """`conninfo` is the service's own (least-privileged) login; `admin_conninfo` the
        owning role's, for migrations and integrity checks (defaults to `conninfo`)."""
        self.conninfo = conninfo
        self.admin_conninfo = admin_conninfo or conninfo
        self.pool = ConnectionPool(
            conninfo,
            min_size=min(limits.POOL_SIZE_MIN, pool_max),
            max_size=pool_max,
            timeout=limits.POOL_TIMEOUT_S,
            configure=_configure_for(read_only),
            kwargs={"application_name": "finance", "connect_timeout": limits.CONNECT_TIMEOUT_S},
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
        """A connection as the owning role: migrations, integrity checks, tenant listing."""
        with psycopg.connect(
            self.admin_conninfo, autocommit=True, connect_timeout=limits.CONNECT_TIMEOUT_S
        ) as conn:
            yield conn

    def ready(self) -> tuple[bool, str]:
        """Readiness: the database answers the service's own login and no migration is
        pending (or unknown to this release)."""
        try:
            with self.pool.connection() as conn:
                pending = pending_migrations(conn)
        except MigrationError as exc:
            return False, str(exc)
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as a reason
            return False, f"database unreachable: {type(exc).__name__}"
        if pending:
            return False, f"{len(pending)} migration(s) pending"
        return True, "ok"

    def service_role_problem(self) -> str | None:
        """Why the service's login could get around the ledger's protections, if it can: a
        superuser, a role that bypasses row-level security, or the tables' owner can all
        `RESET ROLE` and then disable triggers or rewrite rows."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT r.rolsuper, r.rolbypassrls,"
                "       pg_has_role(session_user, t.tableowner, 'USAGE')"
                "  FROM pg_roles r, pg_tables t"
                " WHERE r.rolname = session_user"
                "   AND t.schemaname = 'public' AND t.tablename = 'journal_entries'"
            ).fetchone()
            conn.rollback()
        if row is None:
            return "the ledger tables do not exist; run `finance migrate`"
        superuser, bypass_rls, owner = row
        if superuser or bypass_rls or owner:
            return (
                "the service connects as a role that is a superuser, bypasses row-level security"
                " or owns the ledger tables; give it a login role that is only a member of"
                " finance_app (FINANCE_DATABASE_URL) and migrate with FINANCE_ADMIN_DATABASE_URL"
            )
        return None
