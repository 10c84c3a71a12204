"""The order in which POST /v1/journal checks a request, as docs/api.md documents it: each case
breaks two rules at once and the earlier rule's code must win.

    request guards > authentication and role > schema shape > Idempotency-Key header
    > tenant / key replay > each line's amount and currency > line count > type, text and
    metadata > balance > accounts (not found > closed > currency > overflow > overdraft)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.auth.tokens import Role, TokenIssuer
from finance.domain.money import AMOUNT_MINOR_MAX
from finance.services import ledger
from tests.conftest import bearer, new_tenant_id
from tests.e2e.helpers import assert_problem, line, open_account, pair, post_entry, writing


@dataclass(frozen=True)
class Books:
    auth: dict[str, str]
    cash: str  # USD asset that may not go below zero, holding 100
    equity: str  # USD equity
    euros: str  # EUR asset
    closed: str  # USD asset, closed
    full: str  # USD asset whose debits are at the largest storable total


@pytest.fixture
def books(client: TestClient, auth: dict[str, str]) -> Books:
    cash = open_account(client, auth, "cash", "asset", credits_must_not_exceed_debits=True)
    equity = open_account(client, auth, "equity", "equity")
    euros = open_account(client, auth, "euros", "asset", currency="EUR")
    closed = open_account(client, auth, "closed", "asset")
    full = open_account(client, auth, "full", "asset")
    filler = open_account(client, auth, "filler", "equity")
    post_entry(client, auth, pair(cash, equity, 100))
    post_entry(client, auth, pair(full, filler, AMOUNT_MINOR_MAX - 100))
    closing = client.post(f"/v1/accounts/{closed}/close", headers=writing(auth))
    assert closing.status_code == 200, closing.text
    return Books(auth, cash, equity, euros, closed, full)


Lines = Callable[[Books], list[dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    name: str
    lines: Lines
    status: int
    code: str
    extra: dict[str, Any] | None = None

    def __str__(self) -> str:
        return self.name


def unknown() -> str:
    return str(uuid.uuid4())


CASES = [
    # The schema first: a zero amount is refused before the line count is looked at, and a
    # lower-case currency breaks the schema's pattern before the ISO 4217 lookup.
    Case("zero-amount-and-one-line", lambda b: [line(b.cash, "debit", 0)], 422, "invalid_amount"),
    Case(
        "lowercase-currency-and-one-line",
        lambda b: [line(b.cash, "debit", 1, "usd")],
        422,
        "validation_failed",
    ),
    Case(
        "bad-side-and-zero-amount",
        lambda b: [line(b.cash, "up", 0), line(b.equity, "credit", 1)],
        422,
        "invalid_amount",
    ),
    # A REVERSAL type is refused first of all (reversals have their own endpoint), then each
    # line's currency, before the line count and the balance.
    Case(
        "reversal-type-and-unknown-currency",
        lambda b: [line(b.cash, "debit", 1, "XYZ"), line(b.equity, "credit", 1)],
        422,
        "validation_failed",
        {"type": "REVERSAL"},
    ),
    Case(
        "unknown-currency-and-one-line",
        lambda b: [line(b.cash, "debit", 1, "XYZ")],
        422,
        "unknown_currency",
    ),
    Case(
        "unknown-currency-and-unbalanced",
        lambda b: [line(b.cash, "debit", 2, "XYZ"), line(b.equity, "credit", 1)],
        422,
        "unknown_currency",
    ),
    # Then the line count, before type, text and balance.
    Case(
        "one-line-and-bad-type",
        lambda b: [line(b.cash, "debit", 1)],
        422,
        "too_few_lines",
        {"type": "lower"},
    ),
    Case(
        "too-many-lines-and-unbalanced",
        lambda b: [line(b.cash, "debit", 1) for _ in range(101)],
        422,
        "too_many_lines",
    ),
    Case(
        "one-line-and-nul-in-memo",
        lambda b: [line(b.cash, "debit", 1)],
        422,
        "too_few_lines",
        {"memo": "a\x00b"},
    ),
    # Then type and text, before the balance.
    Case(
        "nul-in-memo-and-unbalanced",
        lambda b: [line(b.cash, "debit", 2), line(b.equity, "credit", 1)],
        422,
        "validation_failed",
        {"memo": "a\x00b"},
    ),
    Case(
        "bad-type-and-unbalanced",
        lambda b: [line(b.cash, "debit", 2), line(b.equity, "credit", 1)],
        422,
        "validation_failed",
        {"type": "lower"},
    ),
    # Then the balance, before anything about accounts.
    Case(
        "unbalanced-and-unknown-account",
        lambda b: [line(unknown(), "debit", 2), line(b.closed, "credit", 1)],
        422,
        "unbalanced_entry",
    ),
    # Then the accounts: not found > closed > currency mismatch > overflow > overdraft,
    # whatever the order of the lines.
    Case(
        "closed-then-unknown",
        lambda b: [line(b.closed, "debit", 1), line(unknown(), "credit", 1)],
        404,
        "account_not_found",
    ),
    Case(
        "mismatch-then-closed",
        lambda b: [line(b.euros, "debit", 1), line(b.closed, "credit", 1)],
        422,
        "account_closed",
    ),
    Case(
        "overdraft-then-mismatch",
        lambda b: [
            line(b.equity, "debit", 1_000),
            line(b.cash, "credit", 1_000),
            line(b.euros, "debit", 5),
            line(b.equity, "credit", 5),
        ],
        422,
        "currency_mismatch",
    ),
    Case(
        "overdraft-and-overflow",
        lambda b: [line(b.full, "debit", 1_000), line(b.cash, "credit", 1_000)],
        422,
        "balance_overflow",
    ),
    Case(
        "overdraft",
        lambda b: [line(b.equity, "debit", 1_000), line(b.cash, "credit", 1_000)],
        422,
        "overdraft",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_documented_check_wins(client: TestClient, books: Books, case: Case) -> None:
    body = {"lines": case.lines(books), **(case.extra or {})}
    response = client.post("/v1/journal", json=body, headers=writing(books.auth))
    assert_problem(response, case.status, case.code)


def test_schema_shape_comes_before_the_idempotency_key(client: TestClient, books: Books) -> None:
    response = client.post(
        "/v1/journal", json={"lines": [line(books.cash, "debit", 0)]}, headers=books.auth
    )
    assert_problem(response, 422, "invalid_amount")
    missing_key = client.post(
        "/v1/journal", json={"lines": pair(books.cash, books.equity, 1)}, headers=books.auth
    )
    assert_problem(missing_key, 400, "idempotency_key_missing")


def test_authentication_comes_before_the_schema(client: TestClient) -> None:
    response = client.post(
        "/v1/journal", json={"lines": "nonsense"}, headers={"Idempotency-Key": "k"}
    )
    assert_problem(response, 401, "token_missing")


def test_a_reused_key_comes_before_the_entry_checks(client: TestClient, books: Books) -> None:
    key = f"k-{uuid.uuid4().hex}"
    first = client.post(
        "/v1/journal",
        json={"lines": pair(books.cash, books.equity, 1)},
        headers=writing(books.auth, key),
    )
    assert first.status_code == 201, first.text
    unbalanced = [line(books.cash, "debit", 2), line(books.equity, "credit", 1)]
    response = client.post(
        "/v1/journal", json={"lines": unbalanced}, headers=writing(books.auth, key)
    )
    assert_problem(response, 409, "idempotency_key_reused")


def test_an_unprovisioned_tenant_is_403_before_the_entry_checks(
    client: TestClient, issuer: TokenIssuer
) -> None:
    auth = bearer(issuer, new_tenant_id(), Role.ADMIN)
    body = {"lines": [line(unknown(), "debit", 1, "XYZ")]}
    response = client.post("/v1/journal", json=body, headers=writing(auth))
    assert_problem(response, 403, "tenant_not_found")


def test_reads_of_an_unprovisioned_tenant_find_nothing(
    client: TestClient, issuer: TokenIssuer, store: PostgresLedgerStore
) -> None:
    """Only writes say tenant_not_found: reads just find nothing."""
    auth = bearer(issuer, new_tenant_id(), Role.VIEWER)
    for url in ("/v1/accounts", "/v1/journal"):
        response = client.get(url, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json() == {"data": [], "next_cursor": None}
    trial = client.get("/v1/trial-balance", headers=auth)
    assert trial.status_code == 200, trial.text
    assert trial.json() == {"balanced": True, "currencies": [], "accounts": [], "next_cursor": None}
    assert_problem(client.get(f"/v1/accounts/{unknown()}", headers=auth), 404, "account_not_found")
    assert_problem(client.get(f"/v1/journal/{unknown()}", headers=auth), 404, "entry_not_found")
    # A tenant created later starts from there as usual.
    tenant = new_tenant_id()
    store(tenant, lambda tx: ledger.create_tenant(tx, "Late", datetime.now(UTC)))
    assert client.get("/v1/accounts", headers=bearer(issuer, tenant)).json()["data"] == []
