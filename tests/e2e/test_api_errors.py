"""Refused writes: every one is a 4xx problem with a stable code, and writes nothing.

Each case posts one bad request against a tenant that already holds a small ledger, then
checks the problem document and that everything the tenant can read is unchanged. When the
refused request carried an Idempotency-Key, the key must not have been consumed either: a
valid request with the same key afterwards is executed afresh.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.auth.tokens import Role, TokenIssuer
from finance.services import ledger
from tests.conftest import bearer, new_tenant_id
from tests.e2e.helpers import (
    assert_problem,
    dumps,
    get_json,
    line,
    open_account,
    pair,
    post_entry,
    snapshot,
    writing,
)

SEED_MINOR = 1_000
SQL_TEXT = "Robert'); DROP TABLE journal_entries; -- \" \\ %s %(x)s $1 ; /* */ `"


@dataclass(frozen=True)
class Ledger:
    """A tenant with a little history, and an account of another tenant."""

    auth: dict[str, str]
    cash: str  # asset, USD, may not go below zero (credits_must_not_exceed_debits)
    equity: str  # equity, USD
    euros: str  # asset, EUR
    closed: str  # asset, USD, closed
    foreign: str  # another tenant's USD asset


@pytest.fixture
def books(
    client: TestClient,
    issuer: TokenIssuer,
    store: PostgresLedgerStore,
    auth: dict[str, str],
) -> Ledger:
    cash = open_account(client, auth, "cash", "asset", credits_must_not_exceed_debits=True)
    equity = open_account(client, auth, "equity", "equity")
    euros = open_account(client, auth, "euros", "asset", currency="EUR")
    closed = open_account(client, auth, "old-cash", "asset")
    post_entry(client, auth, pair(cash, equity, SEED_MINOR), memo="seed")
    closing = client.post(f"/v1/accounts/{closed}/close", headers=writing(auth))
    assert closing.status_code == 200, closing.text
    assert closing.json()["closed"] is True

    other = new_tenant_id()
    store(other, lambda tx: ledger.create_tenant(tx, "Other tenant", datetime.now(UTC)))
    foreign = open_account(client, bearer(issuer, other, Role.ADMIN), "cash", "asset")
    return Ledger(auth, cash, equity, euros, closed, foreign)


BodyOf = Callable[[Ledger], bytes]


@dataclass(frozen=True)
class Case:
    name: str
    body: BodyOf
    status: int
    code: str
    content_type: str = "application/json"
    with_key: bool = True

    def __str__(self) -> str:
        return self.name


def entry(lines: Callable[[Ledger], list[dict[str, Any]]], **extra: Any) -> BodyOf:
    return lambda b: dumps({"lines": lines(b), **extra})


def raw(data: bytes) -> BodyOf:
    return lambda _: data


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def amount(value: Any) -> BodyOf:
    return entry(lambda b: pair(b.cash, b.equity, value))


def amount_literal(literal: str) -> BodyOf:
    """An entry whose amounts are written as this JSON literal, byte for byte."""

    def body(b: Ledger) -> bytes:
        lines = [
            f'{{"account_id": "{b.cash}", "side": "debit", "amount": {literal},'
            ' "currency": "USD"}',
            f'{{"account_id": "{b.equity}", "side": "credit", "amount": {literal},'
            ' "currency": "USD"}',
        ]
        return ('{"lines": [' + ", ".join(lines) + "]}").encode()

    return body


def many_lines(count: int) -> BodyOf:
    def lines(b: Ledger) -> list[dict[str, Any]]:
        debits = [line(b.cash, "debit", 1) for _ in range(count - 1)]
        return [*debits, line(b.equity, "credit", count - 1)]

    return entry(lines)


JOURNAL_CASES = [
    Case(
        "unbalanced",
        entry(lambda b: [line(b.cash, "debit", 100), line(b.equity, "credit", 99)]),
        422,
        "unbalanced_entry",
    ),
    Case(
        "unbalanced-across-currencies",
        entry(lambda b: [line(b.cash, "debit", 100), line(b.euros, "credit", 100, "EUR")]),
        422,
        "unbalanced_entry",
    ),
    Case(
        "unknown-account",
        entry(lambda b: pair(str(uuid.uuid4()), b.equity, 100)),
        404,
        "account_not_found",
    ),
    Case(
        "another-tenants-account",
        entry(lambda b: pair(b.foreign, b.equity, 100)),
        404,
        "account_not_found",
    ),
    Case("closed-account", entry(lambda b: pair(b.closed, b.equity, 100)), 422, "account_closed"),
    Case(
        "currency-mismatch",
        entry(lambda b: pair(b.euros, b.equity, 100, "EUR")),
        422,
        "currency_mismatch",
    ),
    Case(
        "overdraft",
        entry(lambda b: pair(b.equity, b.cash, SEED_MINOR + 1)),
        422,
        "overdraft",
    ),
    Case(
        "unknown-currency",
        entry(lambda b: pair(b.cash, b.equity, 1, "XYZ")),
        422,
        "unknown_currency",
    ),
    Case(
        "lowercase-currency",
        entry(lambda b: pair(b.cash, b.equity, 1, "usd")),
        422,
        "validation_failed",
    ),
    Case("zero-amount", amount(0), 422, "invalid_amount"),
    Case("negative-amount", amount(-100), 422, "invalid_amount"),
    Case("amount-2**63", amount(2**63), 422, "invalid_amount"),
    Case("amount-10**30", amount(10**30), 422, "invalid_amount"),
    Case("amount-float", amount_literal("10.0"), 422, "invalid_amount"),
    Case("amount-exponent", amount_literal("1e3"), 422, "invalid_amount"),
    Case("amount-string", amount("10"), 422, "invalid_amount"),
    Case("amount-bool", amount(True), 422, "invalid_amount"),
    Case("amount-null", amount(None), 422, "invalid_amount"),
    Case("amount-5000-digits", amount_literal("9" * 5000), 400, "malformed_json"),
    Case("too-many-lines", many_lines(101), 422, "too_many_lines"),
    Case("one-line", entry(lambda b: [line(b.cash, "debit", 100)]), 422, "too_few_lines"),
    Case("no-lines", entry(lambda _: []), 422, "too_few_lines"),
    Case(
        "bad-side",
        entry(lambda b: [line(b.cash, "up", 1), line(b.equity, "down", 1)]),
        422,
        "validation_failed",
    ),
    Case("bad-account-id", entry(lambda b: pair("cash", b.equity, 1)), 422, "validation_failed"),
    Case("malformed-json", raw(b'{"lines": [{"account_id": '), 400, "malformed_json"),
    Case("invalid-utf8", raw(b'{"lines": [], "memo": "\xff\xfe\xc3("}'), 400, "malformed_json"),
    Case("not-an-object", raw(b"[1, 2, 3]"), 422, "validation_failed"),
    Case(
        "body-over-256KiB",
        entry(lambda b: pair(b.cash, b.equity, 1), memo="x" * (256 * 1024 + 1)),
        413,
        "body_too_large",
    ),
    Case(
        "json-100-deep",
        lambda b: (
            dumps({"lines": pair(b.cash, b.equity, 1)})[:-1] + f', "x": {nested(100)}}}'.encode()
        ),
        400,
        "json_too_deep",
    ),
    Case(
        "unknown-field",
        entry(lambda b: pair(b.cash, b.equity, 1), colour="red"),
        422,
        "validation_failed",
    ),
    Case(
        "unknown-line-field",
        entry(lambda b: [{**ln, "rate": 1} for ln in pair(b.cash, b.equity, 1)]),
        422,
        "validation_failed",
    ),
    Case(
        "wrong-content-type",
        entry(lambda b: pair(b.cash, b.equity, 1)),
        415,
        "unsupported_media_type",
        content_type="text/plain",
    ),
    Case(
        "form-content-type",
        entry(lambda b: pair(b.cash, b.equity, 1)),
        415,
        "unsupported_media_type",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "missing-idempotency-key",
        entry(lambda b: pair(b.cash, b.equity, 1)),
        400,
        "idempotency_key_missing",
        with_key=False,
    ),
    Case(
        "type-REVERSAL",
        entry(lambda b: pair(b.cash, b.equity, 1), type="REVERSAL"),
        422,
        "validation_failed",
    ),
    Case(
        "type-lowercase",
        entry(lambda b: pair(b.cash, b.equity, 1), type="journal"),
        422,
        "validation_failed",
    ),
    Case(
        "nul-in-memo",
        entry(lambda b: pair(b.cash, b.equity, 1), memo="a\x00b"),
        422,
        "validation_failed",
    ),
    Case(
        "nul-in-metadata",
        entry(lambda b: pair(b.cash, b.equity, 1), metadata={"k": "a\x00b"}),
        422,
        "validation_failed",
    ),
    Case(
        "metadata-not-strings",
        entry(lambda b: pair(b.cash, b.equity, 1), metadata={"k": 1}),
        422,
        "validation_failed",
    ),
    Case(
        "bad-effective-date",
        entry(lambda b: pair(b.cash, b.equity, 1), effective_date="2024-13-45"),
        422,
        "validation_failed",
    ),
]


ACCOUNT = {"code": "receivables", "name": "Receivables", "type": "asset", "currency": "USD"}


def account(**changes: Any) -> BodyOf:
    return raw(dumps({**ACCOUNT, **changes}))


ACCOUNT_CASES = [
    Case("duplicate-code", account(code="cash"), 409, "account_code_exists"),
    Case("sql-in-code", account(code="x'; DROP TABLE accounts; --"), 422, "validation_failed"),
    Case("empty-code", account(code=""), 422, "validation_failed"),
    Case("blank-name", account(name="   "), 422, "validation_failed"),
    Case("nul-in-name", account(name="a\x00b"), 422, "validation_failed"),
    Case("unknown-type", account(type="cash"), 422, "validation_failed"),
    Case("unknown-currency", account(currency="XYZ"), 422, "unknown_currency"),
    Case("lowercase-currency", account(currency="usd"), 422, "validation_failed"),
    Case(
        "both-overdraft-flags",
        account(debits_must_not_exceed_credits=True, credits_must_not_exceed_debits=True),
        422,
        "validation_failed",
    ),
    Case(
        "flag-as-string", account(credits_must_not_exceed_debits="true"), 422, "validation_failed"
    ),
    Case("flag-as-int", account(credits_must_not_exceed_debits=1), 422, "validation_failed"),
    Case("metadata-not-strings", account(metadata={"k": ["v"]}), 422, "validation_failed"),
    Case(
        "metadata-33-keys",
        account(metadata={f"k{i}": "v" for i in range(33)}),
        422,
        "validation_failed",
    ),
    Case("unknown-field", account(colour="red"), 422, "validation_failed"),
    Case(
        "missing-field",
        raw(dumps({"code": "x", "name": "X", "type": "asset"})),
        422,
        "validation_failed",
    ),
    Case("malformed-json", raw(b'{"code": "x",'), 400, "malformed_json"),
    Case(
        "invalid-utf8",
        raw(b'{"code": "x", "name": "\xff\xfe", "type": "asset"}'),
        400,
        "malformed_json",
    ),
    Case(
        "5000-digit-integer",
        raw(
            b'{"code": "x", "name": "X", "type": "asset", "currency": "USD",'
            b' "credits_must_not_exceed_debits": ' + b"7" * 5000 + b"}"
        ),
        400,
        "malformed_json",
    ),
    Case("body-over-256KiB", account(name="n" * (256 * 1024)), 413, "body_too_large"),
    Case(
        "json-100-deep",
        raw(dumps(ACCOUNT)[:-1] + f', "metadata": {{"k": {nested(99)}}}}}'.encode()),
        400,
        "json_too_deep",
    ),
    Case("wrong-content-type", account(), 415, "unsupported_media_type", content_type="text/csv"),
    Case("missing-idempotency-key", account(), 400, "idempotency_key_missing", with_key=False),
]


def valid_entry(b: Ledger) -> dict[str, Any]:
    return {"lines": pair(b.cash, b.equity, 7)}


def send(client: TestClient, url: str, case: Case, books: Ledger, idempotency_key: str) -> Any:
    headers = {**books.auth, "Content-Type": case.content_type}
    if case.with_key:
        headers["Idempotency-Key"] = idempotency_key
    return client.post(url, content=case.body(books), headers=headers)


@pytest.mark.parametrize("case", JOURNAL_CASES, ids=str)
def test_bad_journal_post_is_refused_and_writes_nothing(
    client: TestClient, books: Ledger, case: Case
) -> None:
    before = snapshot(client, books.auth)
    response = send(client, "/v1/journal", case, books, "bad-entry-key")
    assert_problem(response, case.status, case.code)
    assert snapshot(client, books.auth) == before
    assert len(before["entries"]["data"]) == 1

    if case.with_key:
        # The refusal did not consume the key: a valid entry under it is posted afresh.
        retry = client.post(
            "/v1/journal", json=valid_entry(books), headers=writing(books.auth, "bad-entry-key")
        )
        assert retry.status_code == 201, retry.text
        assert "Idempotent-Replayed" not in retry.headers
        assert retry.json()["sequence"] == 1


@pytest.mark.parametrize("case", ACCOUNT_CASES, ids=str)
def test_bad_account_post_is_refused_and_writes_nothing(
    client: TestClient, books: Ledger, case: Case
) -> None:
    before = snapshot(client, books.auth)
    response = send(client, "/v1/accounts", case, books, "bad-account-key")
    assert_problem(response, case.status, case.code)
    assert snapshot(client, books.auth) == before
    assert len(before["accounts"]["data"]) == 4

    if case.with_key:
        retry = client.post(
            "/v1/accounts", json=ACCOUNT, headers=writing(books.auth, "bad-account-key")
        )
        assert retry.status_code == 201, retry.text
        assert "Idempotent-Replayed" not in retry.headers


@pytest.mark.parametrize(
    ("target", "status", "code"),
    [
        ("closed", 409, "account_already_closed"),
        ("foreign", 404, "account_not_found"),
        ("unknown", 404, "account_not_found"),
        ("not-a-uuid", 422, "validation_failed"),
    ],
)
def test_bad_close_is_refused_and_writes_nothing(
    client: TestClient, books: Ledger, target: str, status: int, code: str
) -> None:
    account_id = {
        "closed": books.closed,
        "foreign": books.foreign,
        "unknown": str(uuid.uuid4()),
        "not-a-uuid": "cash",
    }[target]
    before = snapshot(client, books.auth)
    response = client.post(f"/v1/accounts/{account_id}/close", headers=writing(books.auth))
    assert_problem(response, status, code)
    assert snapshot(client, books.auth) == before


@pytest.mark.parametrize(
    ("key", "code"),
    [("has space", "idempotency_key_invalid"), ("k" * 256, "idempotency_key_invalid")],
    ids=["space", "too-long"],
)
def test_invalid_idempotency_key_is_refused(
    client: TestClient, books: Ledger, key: str, code: str
) -> None:
    before = snapshot(client, books.auth)
    response = client.post("/v1/journal", json=valid_entry(books), headers=writing(books.auth, key))
    assert_problem(response, 400, code)
    assert snapshot(client, books.auth) == before


def test_sql_metacharacters_are_stored_verbatim(client: TestClient, books: Ledger) -> None:
    metadata = {SQL_TEXT[:60]: SQL_TEXT, "'; DELETE FROM accounts; --": "\u00e9\u2603 ok"}
    idempotency_key = "k';DROP-TABLE-idempotency_keys;--"
    body = {
        "lines": pair(books.cash, books.equity, 5),
        "memo": SQL_TEXT,
        "source": "'; SELECT pg_sleep(10); --",
        "source_id": "1 OR 1=1",
        "metadata": metadata,
    }
    posted = client.post("/v1/journal", json=body, headers=writing(books.auth, idempotency_key))
    assert posted.status_code == 201, posted.text
    entry = posted.json()
    stored = get_json(client, f"/v1/journal/{entry['id']}", books.auth)
    assert stored["memo"] == SQL_TEXT
    assert stored["source"] == body["source"]
    assert stored["source_id"] == "1 OR 1=1"
    assert stored["metadata"] == metadata
    found = get_json(client, "/v1/journal", books.auth, source_id="1 OR 1=1")
    assert [e["id"] for e in found["data"]] == [entry["id"]]

    replay = client.post("/v1/journal", json=body, headers=writing(books.auth, idempotency_key))
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == posted.content

    opened = client.post(
        "/v1/accounts",
        json={
            "code": "a:b.c_d/e-f",
            "name": SQL_TEXT,
            "type": "expense",
            "currency": "USD",
            "metadata": metadata,
        },
        headers=writing(books.auth),
    )
    assert opened.status_code == 201, opened.text
    account = get_json(client, f"/v1/accounts/{opened.json()['id']}", books.auth)
    assert account["name"] == SQL_TEXT
    assert account["code"] == "a:b.c_d/e-f"
    assert account["metadata"] == metadata
    # The tables the text talks about are intact.
    assert len(get_json(client, "/v1/journal", books.auth)["data"]) == 2
    assert len(get_json(client, "/v1/accounts", books.auth)["data"]) == 5


def test_refusals_carry_context(client: TestClient, books: Ledger) -> None:
    """Account-level refusals name the account, so a client can tell which line failed."""
    response = client.post(
        "/v1/journal",
        json={"lines": pair(books.closed, books.equity, 1)},
        headers=writing(books.auth),
    )
    body = assert_problem(response, 422, "account_closed")
    assert body["account_id"] == books.closed
    invalid = client.post(
        "/v1/journal",
        content=json.dumps({"lines": pair(books.cash, books.equity, "1")}),
        headers={**writing(books.auth), "Content-Type": "application/json"},
    )
    errors = assert_problem(invalid, 422, "invalid_amount")["errors"]
    assert errors
    assert all("amount" in e["location"] for e in errors)
