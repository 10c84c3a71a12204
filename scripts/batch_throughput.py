"""Entries per second: N entries posted one request at a time versus in one batch.

A quick measurement, not a benchmark (`finance bench` is that): it starts an embedded
PostgreSQL under a temporary directory (or uses --database-url, an owner's URL of a migrated
database), opens a tenant with two accounts, then posts N two-line entries

* one at a time, each in its own transaction, as `POST /v1/journal` does (idempotency key,
  post_entry, stored response), and
* as one batch, as `POST /v1/journal/batch` does,

first through the use cases on the service's own pool, then through the in-process API
(FastAPI's TestClient, so JSON and HTTP handling count but no network). It counts the
statements each way by wrapping the pool's connections. Usage:

    .venv/bin/python scripts/batch_throughput.py [--entries 1000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import embedded_server_uri, ensure_service_login
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.migrate import migrate
from finance.api.app import create_app
from finance.api.schemas import BatchEntryCreate, EntryCreate, entry_response
from finance.auth.tokens import Role, TokenIssuer, TokenVerifier
from finance.bootstrap import Container, SystemClock
from finance.config import LogFormat, Settings
from finance.domain.accounts import AccountSpec, AccountType
from finance.observability import configure_logging
from finance.services import batches, ledger
from finance.services.idempotency import IdempotentRequest, request_fingerprint, run_idempotent
from finance.services.ports import LedgerTransaction


class Statements:
    """Counts what the pool's connections send: every statement (Connection.execute goes
    through Cursor.execute), and BEGIN and COMMIT."""

    def __init__(self) -> None:
        self.count = 0
        self._cursor_execute = psycopg.Cursor.execute
        self._begin = psycopg.Transaction.__enter__
        self._end = psycopg.Transaction.__exit__

    def __enter__(self) -> Statements:
        counter = self

        def cursor_execute(cur: Any, *args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            return counter._cursor_execute(cur, *args, **kwargs)

        def begin(tx: Any) -> Any:
            counter.count += 1
            return counter._begin(tx)

        def end(tx: Any, *args: Any) -> Any:
            counter.count += 1
            return counter._end(tx, *args)

        psycopg.Cursor.execute = cursor_execute  # type: ignore[method-assign]
        psycopg.Transaction.__enter__ = begin  # type: ignore[method-assign]
        psycopg.Transaction.__exit__ = end  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        psycopg.Cursor.execute = self._cursor_execute  # type: ignore[method-assign]
        psycopg.Transaction.__enter__ = self._begin  # type: ignore[method-assign]
        psycopg.Transaction.__exit__ = self._end  # type: ignore[method-assign]


def entry_body(debit: uuid.UUID, credit: uuid.UUID, amount: int) -> dict[str, Any]:
    return {
        "lines": [
            {"account_id": str(debit), "side": "debit", "amount": amount, "currency": "USD"},
            {"account_id": str(credit), "side": "credit", "amount": amount, "currency": "USD"},
        ],
        "memo": "throughput",
    }


def timed(label: str, entries: int, work: Callable[[], object]) -> float:
    with Statements() as statements:
        started = time.perf_counter()
        work()
        elapsed = time.perf_counter() - started
    rate = entries / elapsed
    print(
        f"{label:<40} {entries:>6} entries {elapsed * 1000:>9.1f} ms {rate:>9.0f} entries/s"
        f" {statements.count:>6} statements"
    )
    return rate


def new_books(store: PostgresLedgerStore) -> tuple[str, uuid.UUID, uuid.UUID]:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    store(tenant, lambda tx: ledger.create_tenant(tx, "Throughput", now))
    accounts = []
    for code, kind in (("cash", AccountType.ASSET), ("equity", AccountType.EQUITY)):
        spec = AccountSpec(code=code, name=code, type=kind, currency="USD")
        opened = store(tenant, lambda tx, s=spec: ledger.open_account(tx, s, uuid.uuid4(), now))
        accounts.append(opened.id)
    return tenant, accounts[0], accounts[1]


def use_cases(store: PostgresLedgerStore, count: int) -> None:
    tenant, cash, equity = new_books(store)
    bodies = [EntryCreate.model_validate(entry_body(cash, equity, i + 1)) for i in range(count)]

    def singles() -> None:
        for body in bodies:
            fingerprint = request_fingerprint("POST", "/v1/journal", body.idempotency_body())

            def operation(tx: LedgerTransaction, body: EntryCreate = body) -> tuple[int, bytes]:
                now = datetime.now(UTC)
                draft = body.to_draft(now.date())
                return entry_response(ledger.post_entry(tx, draft, uuid.uuid4(), now))

            request = IdempotentRequest(f"s-{uuid.uuid4().hex}", fingerprint)
            run_idempotent(store, tenant, request, operation)

    def batch() -> None:
        items = [
            BatchEntryCreate.model_validate(
                {"idempotency_key": f"b-{uuid.uuid4().hex}", **entry_body(cash, equity, i + 1)}
            ).to_batch_entry()
            for i in range(count)
        ]
        results = store(
            tenant,
            lambda tx: batches.post_batch(
                tx, items, datetime.now(UTC), entries_max=count, respond=entry_response
            ),
        )
        assert all(r.status is batches.BatchStatus.CREATED for r in results)

    single_rate = timed("use case: one transaction per entry", count, singles)
    batch_rate = max(timed(f"use case: one batch (run {n})", count, batch) for n in (1, 2, 3))
    print(f"{'':<40} best batch / single: {batch_rate / single_rate:.1f}x")


def api(database: Database, store: PostgresLedgerStore, count: int) -> None:
    issuer = TokenIssuer(ec.generate_private_key(ec.SECP256R1()), issuer="t", audience="a")
    settings = Settings(jwt_issuer="t", jwt_audience="a", batch_entries_max=max(count, 1_000))
    container = Container(
        settings=settings,
        database=database,
        store=store,
        verifier=TokenVerifier([issuer.verification_key], issuer="t", audience="a"),
        clock=SystemClock(),
    )
    tenant, cash, equity = new_books(store)
    token = issuer.issue(
        tenant_id=tenant, roles=(Role.ACCOUNTANT,), subject="t", ttl_s=600, now=datetime.now(UTC)
    )
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(container)) as client:

        def singles() -> None:
            for i in range(count):
                headers = {**auth, "Idempotency-Key": f"s-{uuid.uuid4().hex}"}
                response = client.post(
                    "/v1/journal", json=entry_body(cash, equity, i + 1), headers=headers
                )
                assert response.status_code == 201, response.text

        def batch() -> None:
            entries = [
                {"idempotency_key": f"b-{uuid.uuid4().hex}", **entry_body(cash, equity, i + 1)}
                for i in range(count)
            ]
            response = client.post("/v1/journal/batch", json={"entries": entries}, headers=auth)
            assert response.status_code == 200, response.text

        single_rate = timed("API: POST /v1/journal per entry", count, singles)
        runs = (1, 2, 3)
        batch_rate = max(
            timed(f"API: POST /v1/journal/batch (run {n})", count, batch) for n in runs
        )
        print(f"{'':<40} best batch / single: {batch_rate / single_rate:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000)
    parser.add_argument("--database-url", help="owner URL of a database to migrate and use")
    args = parser.parse_args()
    configure_logging("warning", LogFormat.JSON, stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="finance-throughput-") as scratch:
        admin = args.database_url or embedded_server_uri(Path(scratch) / "pgdata")
        migrate(admin)
        database = Database(ensure_service_login(admin), admin_conninfo=admin, pool_max=4)
        database.open()
        try:
            store = PostgresLedgerStore(database)
            use_cases(store, args.entries)
            api(database, store, args.entries)
        finally:
            database.close()


if __name__ == "__main__":
    main()
