"""A database that refuses writes (the posting freeze held by PostgreSQL, or a standby after a
failover) is a 503 ledger_read_only for the API and one error line for the CLI, not a 500 or
an "unexpected" error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from psycopg.errors import ReadOnlySqlTransaction

from finance import limits
from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import ensure_service_login
from finance.api.app import create_app
from finance.auth.tokens import TokenIssuer
from finance.cli.main import describe_failure
from tests.conftest import make_container
from tests.e2e.helpers import (
    assert_problem,
    environment,
    get_json,
    ok,
    one_error_line,
    open_account,
    pair,
    post_entry,
    run,
    writing,
)

READ_ONLY_LINE = "error: the ledger is in read-only mode (FINANCE_WRITE_MODE=readonly)"


@pytest.fixture(scope="module")
def standby_client(database_url: str, issuer: TokenIssuer) -> Iterator[TestClient]:
    """The API configured read-write on a database whose transactions are read-only: the
    request guard lets writes through and PostgreSQL refuses them."""
    database = Database(
        ensure_service_login(database_url), admin_conninfo=database_url, pool_max=2, read_only=True
    )
    database.open()
    try:
        with TestClient(
            create_app(make_container(database, issuer)), raise_server_exceptions=False
        ) as c:
            yield c
    finally:
        database.close()


def test_a_write_refused_by_the_database_is_503_ledger_read_only(
    client: TestClient, standby_client: TestClient, auth: dict[str, str]
) -> None:
    cash = open_account(client, auth, "cash", "asset")
    equity = open_account(client, auth, "equity", "equity")
    entry = post_entry(client, auth, pair(cash, equity, 5))

    writes = [
        ("/v1/journal", {"lines": pair(cash, equity, 1)}),
        ("/v1/accounts", {"code": "x", "name": "X", "type": "asset", "currency": "USD"}),
        (f"/v1/journal/{entry['id']}/reverse", {}),
        (f"/v1/accounts/{cash}/close", None),
    ]
    for url, body in writes:
        refused = standby_client.post(url, json=body, headers=writing(auth))
        assert_problem(refused, 503, "ledger_read_only")
        assert refused.headers["Retry-After"] == str(limits.READ_ONLY_RETRY_AFTER_S)

    # Reads go on, and nothing was written.
    assert get_json(standby_client, f"/v1/accounts/{cash}/balance", auth)["balance"] == 5
    assert len(get_json(client, "/v1/journal", auth)["data"]) == 1
    assert len(get_json(client, "/v1/accounts", auth)["data"]) == 2


def test_describe_failure_names_the_read_only_mode() -> None:
    exc = ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction")
    assert describe_failure(exc) == (READ_ONLY_LINE.removeprefix("error: "), 1)


def test_cli_writes_in_read_only_mode_are_one_error_line(tmp_path: Path, database_url: str) -> None:
    writable = environment(tmp_path, database_url)
    tenant = f"ro-{uuid.uuid4().hex[:10]}"
    ok(writable, "tenants", "create", tenant)
    cash = ok(
        writable,
        "accounts", "create", "--tenant", tenant, "--code", "cash", "--name", "Cash",
        "--type", "asset", "--currency", "USD", "--json",
    ).json()  # fmt: skip

    frozen = environment(tmp_path, database_url, FINANCE_WRITE_MODE="readonly")
    entry = (
        '{"lines": ['
        f'{{"account_id": "{cash["id"]}", "side": "debit", "amount": 1, "currency": "USD"}},'
        f'{{"account_id": "{cash["id"]}", "side": "credit", "amount": 1, "currency": "USD"}}]}}'
    )
    open_bank = (
        "accounts", "create", "--tenant", tenant, "--code", "bank", "--name", "Bank",
        "--type", "asset", "--currency", "USD",
    )  # fmt: skip
    refused = [
        run(frozen, "post", "--tenant", tenant, stdin=entry),
        run(frozen, *open_bank),
        run(frozen, "tenants", "create", f"{tenant}-2"),
    ]
    for result in refused:
        assert one_error_line(result, 1, READ_ONLY_LINE) == READ_ONLY_LINE
        assert result.out == ""

    # Reads work in read-only mode, and nothing was written.
    listed = ok(frozen, "accounts", "list", "--tenant", tenant, "--json").json()
    assert [a["code"] for a in listed] == ["cash"]
    balance = ok(frozen, "balance", "--tenant", tenant, "cash", "--json").json()
    assert balance["posting_sequence"] == 0
