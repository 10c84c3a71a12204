"""Migrations: applied once, recorded in `schema_version`, serialized between migrators, and
refused when an applied file no longer matches what was applied."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from finance import __version__
from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import with_database
from finance.adapters.postgres.migrate import (
    MigrationError,
    available_migrations,
    migrate,
    pending_migrations,
)
from tests.integration.helpers import run_concurrently, scalar


@pytest.fixture
def scratch_url(pg_server_uri: str) -> Iterator[str]:
    """A throwaway, empty database on the test server, dropped afterwards."""
    name = f"finance_scratch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(pg_server_uri, name)
    finally:
        with psycopg.connect(pg_server_uri, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_migrating_a_migrated_database_applies_nothing(database_url: str) -> None:
    assert migrate(database_url) == []
    assert migrate(database_url) == []


def test_schema_version_records_every_migration(database_url: str) -> None:
    expected = available_migrations()
    assert expected, "the package ships no migrations"
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT version, name, checksum, tool_version, applied_by, applied_at"
            " FROM schema_version ORDER BY version"
        ).fetchall()
        assert pending_migrations(conn) == []
    assert [(r[0], r[1], r[2]) for r in rows] == [(m.version, m.name, m.checksum) for m in expected]
    for _, _, _, tool_version, applied_by, applied_at in rows:
        assert tool_version == __version__
        assert applied_by
        assert applied_at is not None


def test_migrated_database_is_ready(database: Database) -> None:
    assert database.ready() == (True, "ok")


def test_fresh_database_migrated_by_two_processes_at_once(scratch_url: str) -> None:
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert len(pending_migrations(conn)) == len(available_migrations())
    results = run_concurrently(2, lambda _: migrate(scratch_url))
    assert all(isinstance(r, list) for r in results), results
    applied = sorted(len(r) for r in results if isinstance(r, list))
    assert applied == [0, len(available_migrations())]
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert pending_migrations(conn) == []
        assert scalar(conn, "SELECT count(*) FROM schema_version") == len(available_migrations())
        assert scalar(conn, "SELECT to_regclass('public.journal_entries') IS NOT NULL")
    assert migrate(scratch_url) == []


def test_changed_checksum_is_refused(scratch_url: str) -> None:
    migrate(scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET checksum = 'x' WHERE version = 1")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            pending_migrations(conn)
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(scratch_url)
    scratch = Database(scratch_url, pool_max=1)
    scratch.open()
    try:
        ready, reason = scratch.ready()
    finally:
        scratch.close()
    assert not ready
    assert "changed after it was applied" in reason
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        # Nothing was re-applied or re-recorded.
        assert scalar(conn, "SELECT checksum FROM schema_version WHERE version = 1") == "x"
        assert scalar(conn, "SELECT count(*) FROM schema_version") == len(available_migrations())


def test_unknown_applied_version_is_refused(scratch_url: str) -> None:
    migrate(scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, name, checksum, tool_version)"
            " VALUES (9999, 'from_the_future', 'y', '9.9.9')"
        )
    with pytest.raises(MigrationError, match="newer release"):
        migrate(scratch_url)
