"""The composition root: builds the database, store, token verifier and clock once, from
validated settings (cosmicpython bootstrap, TigerBeetle "wire once")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import (
    DATABASE_NAME,
    embedded_server_uri,
    ensure_database,
)
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.migrate import migrate
from finance.auth.tokens import (
    TokenIssuer,
    TokenVerifier,
    load_or_create_issuer_key,
    load_verification_keys,
)
from finance.config import Settings

log = structlog.get_logger(__name__)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    database: Database
    store: PostgresLedgerStore
    verifier: TokenVerifier
    clock: SystemClock

    def close(self) -> None:
        self.database.close()


def database_url(settings: Settings) -> str:
    """The configured server, or the embedded one (started, with its database created and
    migrated) when `FINANCE_DATABASE_URL` is unset."""
    if settings.database_url is not None:
        return settings.database_url
    url = ensure_database(embedded_server_uri(settings.embedded_pgdata), DATABASE_NAME)
    applied = migrate(url)
    if applied:
        log.info("migrations.applied", versions=[m.version for m in applied])
    return url


def local_issuer(settings: Settings) -> TokenIssuer:
    key = load_or_create_issuer_key(settings.issuer_key_path)
    return TokenIssuer(key, issuer=settings.jwt_issuer, audience=settings.jwt_audience)


def token_verifier(settings: Settings) -> TokenVerifier:
    """Configured public keys, or else the local issuer's key (the embedded default)."""
    if settings.uses_external_token_keys:
        keys = load_verification_keys(
            pem_paths=settings.public_key_paths, jwks_path=settings.jwt_jwks_file
        )
    else:
        keys = [local_issuer(settings).verification_key]
    return TokenVerifier(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        jwks_url=settings.jwt_jwks_url,
    )


def bootstrap(settings: Settings, *, conninfo: str | None = None) -> Container:
    url = conninfo or database_url(settings)
    database = Database(url, pool_max=settings.db_pool_max)
    database.open()
    return Container(
        settings=settings,
        database=database,
        store=PostgresLedgerStore(database),
        verifier=token_verifier(settings),
        clock=SystemClock(),
    )
