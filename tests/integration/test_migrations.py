"""Migrations: applied once, recorded in `schema_version`, serialized between migrators, and
refused when an applied file no longer matches what was applied."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from finance import __version__
from finance.adapters.postgres import migrate as migrations
from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import with_database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.migrate import (
    MigrationError,
    available_migrations,
    migrate,
    pending_migrations,
)
from finance.api.schemas import entry_response
from finance.domain.accounts import AccountType
from finance.domain.entries import PostedEntry
from finance.services import ledger
from finance.services.idempotency import IdempotentRequest, run_idempotent_posting
from finance.services.ports import LedgerTransaction
from tests.integration.helpers import (
    now,
    open_account,
    run_concurrently,
    scalar,
    transfer,
    transfer_draft,
)


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


def test_responses_stored_before_0008_replay_byte_for_byte_after_it(
    scratch_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0008 rewrites no row: a key completed with a body before it replays that body exactly
    (here one that rendering the entry again would not give: metadata in the client's order),
    and keys used after it name their entries."""
    before = [m for m in available_migrations() if m.version < 8]
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "available_migrations", lambda: before)
        migrate(scratch_url)
    scratch = Database(scratch_url, pool_max=2)
    scratch.open()
    try:
        store = PostgresLedgerStore(scratch)
        tenant = "t-upgrade"
        store(tenant, lambda tx: ledger.create_tenant(tx, "Upgrade", now()))
        cash = open_account(store, tenant, "cash", AccountType.ASSET)
        equity = open_account(store, tenant, "equity", AccountType.EQUITY)
        entry = transfer(store, tenant, cash, equity, 5)
        request = IdempotentRequest("old", bytes(range(32)))
        as_sent = b'{"id":"%s","metadata":{"z":"1","a":"2"}}' % str(entry.id).encode()
        with psycopg.connect(scratch_url, autocommit=True) as conn:
            # What the release before 0008 wrote: a claim, completed with the response.
            conn.execute(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash) VALUES (%s, %s, %s)",
                (tenant, request.key, request.request_hash),
            )
            conn.execute(
                "UPDATE idempotency_keys SET status_code = 201, response_body = %s,"
                " completed_at = now() WHERE tenant_id = %s AND key = %s",
                (as_sent, tenant, request.key),
            )

        assert 8 in [m.version for m in migrate(scratch_url)]

        def post(tx: LedgerTransaction, entry_id: uuid.UUID) -> PostedEntry:
            return ledger.post_entry(tx, transfer_draft(cash, equity, 5), entry_id, now())

        replayed = run_idempotent_posting(store, tenant, request, post, entry_response)
        assert (replayed.status_code, replayed.body, replayed.replayed) == (201, as_sent, True)
        new = IdempotentRequest("new", bytes(32))
        posted = run_idempotent_posting(store, tenant, new, post, entry_response)
        with psycopg.connect(scratch_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT key, entry_id, status_code, response_body FROM idempotency_keys"
                " WHERE tenant_id = %s ORDER BY key",
                (tenant,),
            ).fetchall()
            assert scalar(conn, "SELECT count(*) FROM journal_entries") == 2
    finally:
        scratch.close()
    assert rows == [
        ("new", uuid.UUID(json.loads(posted.body)["id"]), None, None),
        ("old", None, 201, as_sent),
    ]
