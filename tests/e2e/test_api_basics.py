"""A first walk through the API: open accounts, post, replay, reverse, read balances."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def open_account(
    client: TestClient, auth: dict[str, str], code: str, kind: str, **extra: Any
) -> str:
    response = client.post(
        "/v1/accounts",
        json={"code": code, "name": code.title(), "type": kind, "currency": "USD", **extra},
        headers={**auth, "Idempotency-Key": f"open-{code}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_post_replay_reverse(client: TestClient, auth: dict[str, str]) -> None:
    cash = open_account(client, auth, "cash", "asset")
    equity = open_account(client, auth, "equity", "equity")
    body = {
        "lines": [
            {"account_id": cash, "side": "debit", "amount": 2500, "currency": "USD"},
            {"account_id": equity, "side": "credit", "amount": 2500, "currency": "USD"},
        ],
        "memo": "owner investment",
    }
    first = client.post("/v1/journal", json=body, headers={**auth, "Idempotency-Key": "k1"})
    assert first.status_code == 201, first.text
    entry = first.json()
    assert entry["sequence"] == 0
    assert len(entry["hash"]) == 64

    again = client.post("/v1/journal", json=body, headers={**auth, "Idempotency-Key": "k1"})
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"

    balance = client.get(f"/v1/accounts/{cash}/balance", headers=auth).json()
    assert (balance["debits_posted"], balance["credits_posted"], balance["balance"]) == (
        2500,
        0,
        2500,
    )

    reversal = client.post(
        f"/v1/journal/{entry['id']}/reverse", headers={**auth, "Idempotency-Key": "r1"}
    )
    assert reversal.status_code == 201, reversal.text
    assert reversal.json()["reversal_of"] == entry["id"]
    assert reversal.json()["prev_hash"] == entry["hash"]
    balance = client.get(f"/v1/accounts/{cash}/balance", headers=auth).json()
    assert balance["balance"] == 0
