"""Databases of their own on the test run's embedded server: one per xdist worker (conftest), and
for the few tests that need a database no other test has touched (stale planner statistics, a
rewritten copy of a ledger)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from finance.adapters.postgres.embedded import with_database
from finance.adapters.postgres.migrate import migrate


def fresh_database(server_uri: str, name: str) -> str:
    """Create (or re-create) database `name`, migrate it, and return its URL."""
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(server_uri, name)
    migrate(url)
    return url


def drop_database(server_uri: str, name: str) -> None:
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
