"""The composition root: builds the database, store, token verifier, clock, checkpoint
signers and the sealer once, from validated settings (cosmicpython bootstrap, TigerBeetle
"wire once")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import (
    DATABASE_NAME,
    embedded_server_uri,
    ensure_database,
    ensure_service_login,
)
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.migrate import migrate
from finance.adapters.postgres.proof_store import PostgresProofStore
from finance.adapters.signers.select import open_signers
from finance.auth.tokens import (
    TokenIssuer,
    TokenVerifier,
    load_or_create_issuer_key,
    load_verification_keys,
)
from finance.config import ConfigError, ServiceEnv, Settings, WriteMode
from finance.observability import PrometheusProofMetrics
from finance.proofs.signing import Signer
from finance.services.ports import Clock
from finance.services.proofs import Proofs
from finance.workers.sealer import Sealer

log = structlog.get_logger(__name__)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Container:
    """What the API and the workers share. `signers` sign checkpoints (none: checkpoints are
    sealed and stay pending); `with_sealer` adds the background sealer, which the app starts
    and stops with its lifespan (tests build containers without one unless they ask)."""

    settings: Settings
    database: Database
    store: PostgresLedgerStore
    verifier: TokenVerifier
    clock: SystemClock
    signers: Sequence[tuple[str, Signer]] = ()
    with_sealer: bool = False
    proofs: Proofs = field(init=False)
    sealer: Sealer | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.proofs = proof_service(self.settings, self.database, self.signers, self.clock)
        if self.with_sealer:
            self.sealer = Sealer(self.proofs, interval_s=self.settings.seal_interval)

    def close(self) -> None:
        if self.sealer is not None:
            self.sealer.stop()
        self.database.close()


@dataclass(frozen=True)
class DatabaseUrls:
    service: str  # the service's least-privileged login
    admin: str  # the owning role: migrations, integrity checks


def database_urls(settings: Settings) -> DatabaseUrls:
    """The configured server, or the embedded one (started, with its database created and
    migrated, and a login for the service) when `FINANCE_DATABASE_URL` is unset."""
    if settings.database_url is not None:
        return DatabaseUrls(
            settings.database_url, settings.admin_database_url or settings.database_url
        )
    admin = ensure_database(embedded_server_uri(settings.embedded_pgdata), DATABASE_NAME)
    applied = migrate(admin)
    if applied:
        log.info("migrations.applied", versions=[m.version for m in applied])
    return DatabaseUrls(ensure_service_login(admin), admin)


def database_url(settings: Settings) -> str:
    """The owning role's URL (for `finance migrate`)."""
    return database_urls(settings).admin


def open_database(settings: Settings, *, pool_max: int | None = None) -> Database:
    urls = database_urls(settings)
    database = Database(
        urls.service,
        admin_conninfo=urls.admin,
        pool_max=pool_max or settings.db_pool_max,
        read_only=settings.write_mode is WriteMode.READONLY,
    )
    database.open()
    return database


def local_issuer(settings: Settings) -> TokenIssuer:
    try:
        key = load_or_create_issuer_key(settings.issuer_key_path)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            [f"FINANCE_JWT_ISSUER_KEY / FINANCE_DATA_DIR: cannot use {settings.issuer_key_path}:"
             f" {_reason(exc)}"]
        ) from exc  # fmt: skip
    return TokenIssuer(key, issuer=settings.jwt_issuer, audience=settings.jwt_audience)


def token_verifier(settings: Settings) -> TokenVerifier:
    """Configured public keys, or else the local issuer's key (the embedded default)."""
    if not settings.uses_external_token_keys:
        keys = [local_issuer(settings).verification_key]
    else:
        keys = []
        for variable, kwargs in (
            ("FINANCE_JWT_PUBLIC_KEYS", {"pem_paths": settings.public_key_paths}),
            ("FINANCE_JWT_JWKS_FILE", {"jwks_path": settings.jwt_jwks_file}),
        ):
            try:
                keys.extend(load_verification_keys(**kwargs))
            except (OSError, ValueError) as exc:
                raise ConfigError([f"{variable}: {_reason(exc)}"]) from exc
    try:
        return TokenVerifier(
            keys,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            jwks_url=settings.jwt_jwks_url,
        )
    except ValueError as exc:
        raise ConfigError([f"token verification settings: {_reason(exc)}"]) from exc


def proof_service(
    settings: Settings, database: Database, signers: Sequence[tuple[str, Signer]], clock: Clock
) -> Proofs:
    return Proofs(
        PostgresProofStore(database),
        clock,
        signer_id=settings.signer_id,
        signers=signers,
        metrics=PrometheusProofMetrics(),
    )


def default_signers(settings: Settings) -> list[tuple[str, Signer]]:
    """The configured checkpoint signers (KMS, PKCS#11 or local key files: open_signers), each
    tried once, named FINANCE_SIGNER_ID in the signatures they make. ConfigError, one line per
    unusable key, if any cannot sign."""
    return [(settings.signer_id, signer) for signer in open_signers(settings)]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)


def bootstrap(
    settings: Settings, *, signers: Sequence[tuple[str, Signer]] | None = None
) -> Container:
    """Everything the API needs. Token keys and signers load first, so a configuration error
    stops the process before any database is started."""
    verifier = token_verifier(settings)
    chosen = default_signers(settings) if signers is None else list(signers)
    database = open_database(settings)
    problem = database.service_role_problem()
    if problem is not None:
        if settings.service_env is ServiceEnv.PRODUCTION:
            database.close()
            raise ConfigError([f"FINANCE_DATABASE_URL: {problem}"])
        log.warning("database.service_role", problem=problem)
    return Container(
        settings=settings,
        database=database,
        store=PostgresLedgerStore(database),
        verifier=verifier,
        clock=SystemClock(),
        signers=chosen,
        with_sealer=settings.runs_sealer,
    )
