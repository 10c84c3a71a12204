"""Replays over HTTP are the first response byte for byte. A posting's key keeps only the id of
the entry it posted (migration 0007) and a replay renders that entry again, so these compare raw
bytes: single postings, batch entries, keys shared between the two both ways, and reversals."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from tests.e2e.helpers import key, open_account, pair, writing

BATCH = "/v1/journal/batch"


@pytest.fixture
def accounts(client: TestClient, auth: dict[str, str]) -> tuple[str, str]:
    return open_account(client, auth, "cash", "asset"), open_account(
        client, auth, "equity", "equity"
    )


def entry_body(accounts: tuple[str, str], amount: int) -> dict[str, Any]:
    """An entry whose bytes are most likely to come out differently when rendered from what
    the database gives back: metadata out of key order (JSONB reorders it), text beyond ASCII,
    every optional field."""
    cash, equity = accounts
    return {
        "lines": pair(cash, equity, amount),
        "memo": 'café — 10 € \U0001f4b6 "quoted"',
        "effective_date": "2024-02-29",
        "type": "SALE",
        "source": "shop",
        "source_id": f"order-{amount}",
        "metadata": {"z": "1", "note": "naïve", "a": "2", "Z": "\u00e9", "aa": ""},
    }


def stored(database_url: str, tenant: str, idempotency_key: str) -> tuple[Any, ...] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT entry_id, status_code, response_body FROM idempotency_keys"
            " WHERE tenant_id = %s AND key = %s",
            (tenant, idempotency_key),
        ).fetchone()


def batch(client: TestClient, auth: dict[str, str], entries: list[dict[str, Any]]) -> Response:
    response = client.post(BATCH, json={"entries": entries}, headers=auth)
    assert response.status_code == 200, response.text
    return response


def spliced(status: str, *entries: bytes) -> bytes:
    """A batch response as render_batch writes it, around the given entry bytes."""
    results = [
        b'{"index":%d,"status":"%s","entry":%s}' % (index, status.encode(), entry)
        for index, entry in enumerate(entries)
    ]
    return b'{"results":[' + b",".join(results) + b"]}"


def test_a_single_posting_replays_its_first_bytes(
    client: TestClient,
    auth: dict[str, str],
    tenant: str,
    database_url: str,
    accounts: tuple[str, str],
) -> None:
    body, k = entry_body(accounts, 1250), key()
    first = client.post("/v1/journal", json=body, headers=writing(auth, k))
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    # The same request with its keys in another order and other whitespace is the same request.
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    for content in (json.dumps(body), reordered):
        again = client.post(
            "/v1/journal",
            content=content,
            headers={**writing(auth, k), "content-type": "application/json"},
        )
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.content == first.content
    # Kept as the entry's id, not as a copy of those bytes.
    assert stored(database_url, tenant, k) == (uuid.UUID(first.json()["id"]), None, None)


def test_batch_entries_replay_their_first_bytes(
    client: TestClient, auth: dict[str, str], accounts: tuple[str, str]
) -> None:
    entries = [{**entry_body(accounts, amount), "idempotency_key": key()} for amount in (1, 2, 3)]
    first = batch(client, auth, entries)
    again = batch(client, auth, entries)
    created = b'"status":"created"'
    assert first.content.count(created) == 3
    assert again.content == first.content.replace(created, b'"status":"replayed"')


def test_a_batch_replays_a_single_posting_byte_for_byte(
    client: TestClient, auth: dict[str, str], accounts: tuple[str, str]
) -> None:
    body, k = entry_body(accounts, 40), key()
    single = client.post("/v1/journal", json=body, headers=writing(auth, k))
    assert single.status_code == 201, single.text
    response = batch(client, auth, [{**body, "idempotency_key": k}])
    assert response.content == spliced("replayed", single.content)


def test_a_single_posting_replays_a_batch_entry_byte_for_byte(
    client: TestClient, auth: dict[str, str], accounts: tuple[str, str]
) -> None:
    body, k = entry_body(accounts, 50), key()
    response = batch(client, auth, [{**body, "idempotency_key": k}])
    single = client.post("/v1/journal", json=body, headers=writing(auth, k))
    assert single.status_code == 201
    assert single.headers["Idempotent-Replayed"] == "true"
    assert response.content == spliced("created", single.content)


def test_a_reversal_replays_its_first_bytes(
    client: TestClient,
    auth: dict[str, str],
    tenant: str,
    database_url: str,
    accounts: tuple[str, str],
) -> None:
    original = client.post("/v1/journal", json=entry_body(accounts, 60), headers=writing(auth))
    assert original.status_code == 201, original.text
    path, k = f"/v1/journal/{original.json()['id']}/reverse", key()
    options = {"memo": "reversed — typo", "effective_date": "2024-03-01"}
    first = client.post(path, json=options, headers=writing(auth, k))
    assert first.status_code == 201, first.text
    again = client.post(path, json=options, headers=writing(auth, k))
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert again.content == first.content
    assert stored(database_url, tenant, k) == (uuid.UUID(first.json()["id"]), None, None)
    # The key sent to reverse another entry is another request.
    other = client.post(f"/v1/journal/{first.json()['id']}/reverse", headers=writing(auth, k))
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")


def test_a_replay_is_the_entry_as_read_back(
    client: TestClient, auth: dict[str, str], accounts: tuple[str, str]
) -> None:
    """What a replay sends is what GET returns, as JSON: nothing of the first response was
    lost by not keeping it."""
    body, k = entry_body(accounts, 70), key()
    first = client.post("/v1/journal", json=body, headers=writing(auth, k))
    read = client.get(f"/v1/journal/{first.json()['id']}", headers=auth)
    assert read.status_code == 200
    assert json.loads(first.content) == read.json()
    assert list(first.json()["metadata"]) == sorted(body["metadata"])
