"""POST /v1/journal/batch over HTTP: one result per entry in order, entries as the single POST
returns them, refusals as problem documents, keys shared with POST /v1/journal, and every
whole-request problem an RFC 9457 error, never a 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from finance import limits
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.auth.tokens import Role, TokenIssuer
from finance.services import ledger
from tests.conftest import bearer, new_tenant_id
from tests.e2e.helpers import (
    PROBLEM_FIELDS,
    assert_problem,
    get_json,
    key,
    open_account,
    pair,
    writing,
)

BATCH = "/v1/journal/batch"


@pytest.fixture
def books(client: TestClient, auth: dict[str, str]) -> dict[str, str]:
    """A no-overdraft wallet with 100 in it, its equity, and a shop to spend at."""
    wallet = open_account(client, auth, "wallet", "asset", credits_must_not_exceed_debits=True)
    equity = open_account(client, auth, "equity", "equity")
    shop = open_account(client, auth, "shop", "expense")
    funded = client.post(
        "/v1/journal", json={"lines": pair(wallet, equity, 100)}, headers=writing(auth)
    )
    assert funded.status_code == 201, funded.text
    return {"wallet": wallet, "equity": equity, "shop": shop}


def spend(books: dict[str, str], amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "idempotency_key": key(),
        "lines": pair(books["shop"], books["wallet"], amount),
        **extra,
    }


def post_batch(client: TestClient, auth: dict[str, str], entries: list[dict[str, Any]]) -> Response:
    return client.post(BATCH, json={"entries": entries}, headers=auth)


def results_of(response: Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    results: list[dict[str, Any]] = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(results)))
    return results


def outcome(result: dict[str, Any]) -> str:
    return str(result["error"]["code"] if result["status"] == "refused" else result["status"])


def test_a_batch_returns_each_entry_as_the_single_post_does(
    client: TestClient, auth: dict[str, str], books: dict[str, str]
) -> None:
    entries = [
        spend(books, 10, memo="coffee", effective_date="2024-05-01"),
        spend(books, 500),
        spend(books, 20, type="PURCHASE", source="till", source_id="42", metadata={"a": "b"}),
    ]
    results = results_of(post_batch(client, auth, entries))

    assert [outcome(r) for r in results] == ["created", "overdraft", "created"]
    assert [r["entry"]["sequence"] for r in (results[0], results[2])] == [1, 2]
    for result in (results[0], results[2]):
        assert set(result) == {"index", "status", "entry"}
        assert get_json(client, f"/v1/journal/{result['entry']['id']}", auth) == result["entry"]
    assert results[0]["entry"]["memo"] == "coffee"
    assert results[2]["entry"]["metadata"] == {"a": "b"}
    error = results[1]["error"]
    assert set(results[1]) == {"index", "status", "error"}
    assert all(name in error for name in PROBLEM_FIELDS)
    assert error == {
        "type": "urn:finance:problem:overdraft",
        "title": "Unprocessable request",
        "status": 422,
        "code": "overdraft",
        "detail": error["detail"],
        "account_id": books["wallet"],
    }
    balance = get_json(client, f"/v1/accounts/{books['wallet']}/balance", auth)
    assert balance["balance"] == 70


def test_a_linked_chain_posts_all_or_nothing(
    client: TestClient, auth: dict[str, str], books: dict[str, str]
) -> None:
    entries = [
        spend(books, 10, linked=True),
        spend(books, 500, linked=True),
        spend(books, 10),
        spend(books, 5),
    ]
    results = results_of(post_batch(client, auth, entries))
    assert [outcome(r) for r in results] == [
        "linked_entry_failed",
        "overdraft",
        "linked_entry_failed",
        "created",
    ]
    assert results[0]["error"]["failed_index"] == "1"
    assert results[0]["error"]["status"] == 422
    assert results[3]["entry"]["sequence"] == 1


def test_a_retry_replays_the_stored_entries_and_a_changed_entry_is_refused(
    client: TestClient, auth: dict[str, str], books: dict[str, str]
) -> None:
    entries = [spend(books, 10), spend(books, 20)]
    first = results_of(post_batch(client, auth, entries))
    changed = {**entries[1], "memo": "not the same request"}
    again = results_of(post_batch(client, auth, [entries[0], changed, spend(books, 1)]))

    assert [outcome(r) for r in again] == ["replayed", "idempotency_key_reused", "created"]
    assert again[0]["entry"] == first[0]["entry"]
    assert again[1]["error"]["status"] == 409


def test_keys_are_shared_with_the_single_post(
    client: TestClient, auth: dict[str, str], books: dict[str, str]
) -> None:
    """The same key and entry replay the same bytes whichever endpoint posted them first."""
    alone = client.post(
        "/v1/journal",
        json={"lines": pair(books["shop"], books["wallet"], 10), "memo": "m"},
        headers=writing(auth, "shared-1"),
    )
    assert alone.status_code == 201
    batched = {"idempotency_key": "shared-1", "memo": "m", "linked": False,
               "lines": pair(books["shop"], books["wallet"], 10)}  # fmt: skip
    response = post_batch(client, auth, [batched])
    assert response.json()["results"][0]["status"] == "replayed"
    assert f'"entry":{alone.text}'.encode() in response.content

    in_batch = results_of(post_batch(client, auth, [spend(books, 5, idempotency_key="shared-2")]))
    single = client.post(
        "/v1/journal",
        json={"lines": pair(books["shop"], books["wallet"], 5)},
        headers=writing(auth, "shared-2"),
    )
    assert single.status_code == 201
    assert single.headers["Idempotent-Replayed"] == "true"
    assert single.json() == in_batch[0]["entry"]


def test_a_full_batch_posts_beyond_the_single_body_limit(
    client: TestClient, auth: dict[str, str], books: dict[str, str]
) -> None:
    entries = [
        {
            "idempotency_key": key(),
            "lines": pair(books["wallet"], books["equity"], 1),
            "memo": "x" * 100,
        }
        for _ in range(limits.BATCH_ENTRIES_MAX_DEFAULT)
    ]
    body = json.dumps({"entries": entries}).encode()
    assert len(body) > limits.BODY_BYTES_MAX
    response = client.post(
        BATCH, content=body, headers={**auth, "Content-Type": "application/json"}
    )
    results = results_of(response)
    assert {r["status"] for r in results} == {"created"}
    assert [r["entry"]["sequence"] for r in results] == list(range(1, 1 + len(entries)))


# Whole-request problems ---------------------------------------------------------------------------


def test_too_many_entries_is_refused_whole(
    client: TestClient, auth: dict[str, str], books: dict[str, str]
) -> None:
    entries = [spend(books, 1) for _ in range(limits.BATCH_ENTRIES_MAX_DEFAULT + 1)]
    problem = assert_problem(post_batch(client, auth, entries), 422, "too_many_entries")
    assert str(limits.BATCH_ENTRIES_MAX_DEFAULT) in problem["detail"]
    assert get_json(client, "/v1/journal", auth)["data"][1:] == []


@pytest.mark.parametrize(
    ("entries", "status", "code"),
    [
        ([], 422, "validation_failed"),
        ([{"idempotency_key": "a"}], 422, "validation_failed"),
        ([{"idempotency_key": "a", "lines": "x"}], 422, "validation_failed"),
        ([{"lines": []}], 422, "validation_failed"),
        ([{"idempotency_key": 7, "lines": []}], 422, "validation_failed"),
        ([{"idempotency_key": "a", "lines": [], "linked": "yes"}], 422, "validation_failed"),
        ([{"idempotency_key": "a", "lines": [], "surprise": 1}], 422, "validation_failed"),
        ([{"idempotency_key": "a b", "lines": []}], 400, "idempotency_key_invalid"),
        ([{"idempotency_key": "", "lines": []}], 400, "idempotency_key_invalid"),
        ([{"idempotency_key": "a", "lines": []}, {"idempotency_key": "a", "lines": []}],
         422, "duplicate_idempotency_key"),
        ([{"idempotency_key": "a", "lines": [], "linked": True}], 422, "linked_chain_open"),
    ],
)  # fmt: skip
def test_malformed_batches_are_problems(
    client: TestClient, auth: dict[str, str], entries: list[Any], status: int, code: str
) -> None:
    assert_problem(post_batch(client, auth, entries), status, code)


def test_an_amount_error_in_any_entry_is_invalid_amount(
    client: TestClient, auth: dict[str, str], books: dict[str, str]
) -> None:
    entries = [spend(books, 1), spend(books, 1)]
    entries[1]["lines"][0]["amount"] = 1.5
    body = assert_problem(post_batch(client, auth, entries), 422, "invalid_amount")
    assert body["errors"][0]["location"][:3] == ["body", "entries", "1"]


@pytest.mark.parametrize(
    ("content", "code", "status"),
    [
        (b"{", "malformed_json", 400),
        (b'{"entries": {}}', "validation_failed", 422),
        (b"[]", "validation_failed", 422),
        (b"", "validation_failed", 422),
    ],
)
def test_bodies_that_are_not_a_batch_are_problems(
    client: TestClient, auth: dict[str, str], content: bytes, code: str, status: int
) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    assert_problem(client.post(BATCH, content=content, headers=headers), status, code)


def test_an_oversized_batch_body_is_refused_before_parsing(
    client: TestClient, auth: dict[str, str]
) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    content = b'{"entries": [' + b" " * limits.BATCH_BODY_BYTES_MAX + b"]}"
    assert_problem(client.post(BATCH, content=content, headers=headers), 413, "body_too_large")


def test_auth_roles_and_tenants(
    client: TestClient, issuer: TokenIssuer, auth: dict[str, str], books: dict[str, str]
) -> None:
    entries = [spend(books, 1)]
    assert_problem(client.post(BATCH, json={"entries": entries}), 401, "token_missing")
    viewer = bearer(issuer, new_tenant_id(), Role.VIEWER)
    assert_problem(post_batch(client, viewer, entries), 403, "insufficient_role")
    stranger = bearer(issuer, new_tenant_id(), Role.ACCOUNTANT)
    assert_problem(post_batch(client, stranger, entries), 403, "tenant_not_found")


def test_another_tenants_accounts_are_not_found(
    client: TestClient, issuer: TokenIssuer, store: PostgresLedgerStore, books: dict[str, str]
) -> None:
    other = new_tenant_id()
    store(other, lambda tx: ledger.create_tenant(tx, "Other", datetime.now(UTC)))
    caller = bearer(issuer, other, Role.ACCOUNTANT)
    results = results_of(post_batch(client, caller, [spend(books, 1)]))
    assert outcome(results[0]) == "account_not_found"


def test_read_only_mode_refuses_batches(readonly_client: TestClient, auth: dict[str, str]) -> None:
    response = readonly_client.post(BATCH, json={"entries": []}, headers=auth)
    assert_problem(response, 503, "ledger_read_only")
