"""Versioned SQL migrations, applied in order and recorded in `schema_version`.

Plain SQL files named `NNNN_description.sql` ship inside the package. Each is applied in its
own transaction together with its `schema_version` row, under a session advisory lock so two
processes starting at once do not race. An applied file whose bytes later change is refused:
history is not rewritten silently, in the schema any more than in the ledger.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import psycopg

from finance import __version__

# Arbitrary constant: the advisory lock key that serializes migrators of one database.
_MIGRATION_LOCK_KEY = 0x46494E414E4345  # "FINANCE"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    version      integer PRIMARY KEY,
    name         text NOT NULL,
    checksum     text NOT NULL,
    tool_version text NOT NULL,
    applied_by   text NOT NULL DEFAULT current_user,
    applied_at   timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The database schema cannot be brought to the version this code expects."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str = field(repr=False)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    found = []
    for item in resources.files("finance.migrations").iterdir():
        match = _FILE_NAME.match(item.name)
        if match:
            found.append(Migration(int(match[1]), match[2], item.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration versions must be 1..N without gaps, found {versions}")
    return found


def applied_versions(conn: psycopg.Connection[Any]) -> dict[int, str]:
    """Applied version -> checksum; empty when the database was never migrated."""
    exists = conn.execute("SELECT to_regclass('public.schema_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT version, checksum FROM schema_version").fetchall()
    return {int(version): str(checksum) for version, checksum in rows}


def pending_migrations(conn: psycopg.Connection[Any]) -> list[Migration]:
    applied = applied_versions(conn)
    _refuse_drift(applied)
    return [m for m in available_migrations() if m.version not in applied]


def migrate(conninfo: str) -> list[Migration]:
    """Apply every pending migration; return those applied now."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            conn.execute(_CREATE_SCHEMA_VERSION)
            pending = pending_migrations(conn)
            for migration in pending:
                _apply(conn, migration)
            _check_app_role(conn)
            _grant_app_role(conn)
            return pending
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))


def _apply(conn: psycopg.Connection[Any], migration: Migration) -> None:
    try:
        with conn.transaction():
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_version (version, name, checksum, tool_version)"
                " VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, migration.checksum, __version__),
            )
    except psycopg.Error as exc:
        raise MigrationError(
            f"migration {migration.version:04d}_{migration.name} failed: {exc}"
        ) from exc


def _check_app_role(conn: psycopg.Connection[Any]) -> None:
    """`finance_app` may pre-exist (roles are cluster-wide): refuse one with powers that would
    switch off what the migration sets up."""
    row = conn.execute(
        "SELECT rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb"
        "  FROM pg_roles WHERE rolname = 'finance_app'"
    ).fetchone()
    if row is None or row[0]:
        raise MigrationError(
            "role finance_app must exist without SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB"
        )
    # Readiness checks run as the service: it may read which migrations are applied.
    conn.execute("GRANT SELECT ON schema_version TO finance_app")


def _grant_app_role(conn: psycopg.Connection[Any]) -> None:
    """Let the connecting role SET ROLE to the service role (a no-op for a superuser)."""
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if row and not row[0]:
        conn.execute("GRANT finance_app TO CURRENT_USER")


def _refuse_drift(applied: dict[int, str]) -> None:
    known = {m.version: m for m in available_migrations()}
    for version, checksum in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"database has migration {version} which this version of Finance does not know;"
                " it was migrated by a newer release"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{migration.name} changed after it was applied"
            )
