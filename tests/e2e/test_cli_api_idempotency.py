"""One Idempotency-Key, two entry points: `finance post` and POST /v1/journal fingerprint the
same request alike and render the same bytes, so either replays what the other posted."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from finance.api.schemas import EntryOut, render
from tests.e2e.helpers import environment, get_json, ok, open_account, pair, writing


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return environment(tmp_path, database_url)


def stored_entry(database_url: str, tenant: str, key: str) -> uuid.UUID:
    """The entry the key names (it keeps no copy of the response)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT entry_id, response_body FROM idempotency_keys"
            " WHERE tenant_id = %s AND key = %s",
            (tenant, key),
        ).fetchone()
    assert row is not None
    assert row[1] is None
    return uuid.UUID(str(row[0]))


def entry_body(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    cash = open_account(client, auth, "cash", "asset")
    equity = open_account(client, auth, "equity", "equity")
    # Non-ASCII text and metadata: where two JSON encoders are most likely to differ.
    return {
        "lines": pair(cash, equity, 1250),
        "memo": "café — 10 € \U0001f4b6",
        "metadata": {"note": "naïve", "z": "1", "a": "2"},
        "source": "shop",
    }


def test_a_key_used_by_the_cli_replays_identically_from_the_api(
    client: TestClient,
    auth: dict[str, str],
    tenant: str,
    env: dict[str, str],
    database_url: str,
) -> None:
    body = entry_body(client, auth)
    key = f"both-{uuid.uuid4().hex}"
    posted = ok(
        env, "post", "--tenant", tenant, "--idempotency-key", key, "--json",
        stdin=json.dumps(body),
    ).json()  # fmt: skip
    assert stored_entry(database_url, tenant, key) == uuid.UUID(posted["id"])

    replay = client.post("/v1/journal", json=body, headers=writing(auth, key))
    assert replay.status_code == 201, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    # The bytes the CLI got (it prints them parsed), as the API renders a response.
    assert replay.content == render(EntryOut.model_validate(posted))
    assert replay.json() == posted
    assert len(get_json(client, "/v1/journal", auth)["data"]) == 1


def test_a_key_used_by_the_api_replays_identically_from_the_cli(
    client: TestClient,
    auth: dict[str, str],
    tenant: str,
    env: dict[str, str],
    database_url: str,
) -> None:
    body = entry_body(client, auth)
    key = f"both-{uuid.uuid4().hex}"
    first = client.post("/v1/journal", json=body, headers=writing(auth, key))
    assert first.status_code == 201, first.text
    assert stored_entry(database_url, tenant, key) == uuid.UUID(first.json()["id"])

    # The same request with its keys in another order is the same request.
    reordered = json.dumps(dict(reversed(list(body.items()))))
    again = ok(env, "post", "--tenant", tenant, "--idempotency-key", key, stdin=reordered)
    assert f"posted entry 0 {first.json()['id']} (replayed)" in again.out
    as_json = ok(
        env, "post", "--tenant", tenant, "--idempotency-key", key, "--json", stdin=reordered
    ).json()
    assert as_json == first.json()
    assert len(get_json(client, "/v1/journal", auth)["data"]) == 1
