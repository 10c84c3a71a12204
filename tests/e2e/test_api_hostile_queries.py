"""Hostile query strings: text the database cannot hold is a 4xx problem, never a 500.

A NUL byte cannot be stored or compared in PostgreSQL text, and a lone surrogate cannot be
encoded as UTF-8; both used to travel from a query parameter (or a decoded cursor) to the
driver and come back as a server error.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from finance import limits
from tests.e2e.helpers import assert_problem, get_json, open_account, pair, post_entry


def cursor_bytes(raw: bytes) -> str:
    """A cursor wrapping these raw JSON bytes (as a client could forge it)."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def books(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    cash = open_account(client, auth, "cash", "asset")
    equity = open_account(client, auth, "equity", "equity")
    entry = post_entry(client, auth, pair(cash, equity, 10), source="shop", source_id="1")
    return {"cash": cash, "equity": equity, "entry": entry}


@pytest.mark.parametrize(
    "query",
    [
        "source=%00",
        "source_id=a%00b",
        "type=%00",
        "type=JOURNAL%00",
        "source=shop&source_id=%00",
        "cursor=%00",
        "limit=1%00",
        "unknown=%00",
    ],
)
@pytest.mark.parametrize("path", ["/v1/journal", "/v1/accounts", "/v1/trial-balance"])
def test_nul_in_the_query_string_is_400(
    client: TestClient, auth: dict[str, str], books: dict[str, Any], path: str, query: str
) -> None:
    response = client.get(f"{path}?{query}", headers=auth)
    assert_problem(response, 400, "invalid_query")


def test_nul_in_the_query_string_of_a_write_is_400(
    client: TestClient, auth: dict[str, str], books: dict[str, Any]
) -> None:
    response = client.post(
        "/v1/journal?x=%00",
        json={"lines": pair(books["cash"], books["equity"], 1)},
        headers={**auth, "Idempotency-Key": "nul-query"},
    )
    assert_problem(response, 400, "invalid_query")
    assert len(get_json(client, "/v1/journal", auth)["data"]) == 1


@pytest.mark.parametrize("value", ["journal", "Journal", "1ABC", "A-B", "A B", "É", "A\u0301"])
def test_type_filter_follows_the_entry_type_rule(
    client: TestClient, auth: dict[str, str], books: dict[str, Any], value: str
) -> None:
    response = client.get("/v1/journal", headers=auth, params={"type": value})
    assert_problem(response, 422, "validation_failed")


@pytest.mark.parametrize(
    "value", ["é💶", "%", "\\", "'; --", "\u2028", "\ufffd", "a" * 128, "\U0010ffff"]
)
@pytest.mark.parametrize("name", ["source", "source_id"])
def test_other_text_filters_accept_any_storable_text(
    client: TestClient, auth: dict[str, str], books: dict[str, Any], name: str, value: str
) -> None:
    assert get_json(client, "/v1/journal", auth, **{name: value})["data"] == []


def test_invalid_utf8_in_the_query_string_is_not_a_server_error(
    client: TestClient, auth: dict[str, str], books: dict[str, Any]
) -> None:
    # %ED%A0%80 would be the UTF-8 form of the surrogate U+D800 (not valid UTF-8).
    for query in ("source=%ED%A0%80", "source=%FF%FE", "source_id=%C3%28"):
        response = client.get(f"/v1/journal?{query}", headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["data"] == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"after":"\\u0000"}',
        b'{"after":"cash\\u0000"}',
        b'{"after":"\\ud800"}',
        b'{"after":"\\udfff\\ud800"}',
        b'{"after":"caf\\u00e9"}',
        b'{"after":""}',
    ],
    ids=["nul", "code-then-nul", "lone-high-surrogate", "reversed-pair", "non-ascii", "empty"],
)
def test_account_cursor_that_is_no_account_code_is_400(
    client: TestClient, auth: dict[str, str], books: dict[str, Any], raw: bytes
) -> None:
    response = client.get("/v1/accounts", headers=auth, params={"cursor": cursor_bytes(raw)})
    assert_problem(response, 400, "invalid_cursor")


def test_issued_account_cursors_still_walk_every_account(
    client: TestClient, auth: dict[str, str], books: dict[str, Any]
) -> None:
    first = get_json(client, "/v1/accounts", auth, limit=1)
    second = get_json(client, "/v1/accounts", auth, limit=1, cursor=first["next_cursor"])
    codes = [a["code"] for a in first["data"] + second["data"]]
    assert codes == ["cash", "equity"]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("path", ["/v1/journal", "/v1/accounts", "/v1/trial-balance"])
def test_cursor_length_is_bounded(
    client: TestClient, auth: dict[str, str], books: dict[str, Any], path: str
) -> None:
    too_long = "A" * (limits.CURSOR_CHARS_MAX + 1)
    response = client.get(path, headers=auth, params={"cursor": too_long})
    body = assert_problem(response, 422, "validation_failed")
    assert "cursor" in body["detail"]
    at_limit = client.get(path, headers=auth, params={"cursor": "A" * limits.CURSOR_CHARS_MAX})
    assert_problem(at_limit, 400, "invalid_cursor")
