"""The trial balance pages its accounts by code (like GET /v1/accounts), while the totals per
currency cover every account on every page."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from finance import limits
from tests.e2e.helpers import assert_problem, get_json, open_account, pair, post_entry


@pytest.fixture
def books(client: TestClient, auth: dict[str, str]) -> dict[str, str]:
    ids = {
        code: open_account(client, auth, code, kind, currency)
        for code, kind, currency in [
            ("b-cash", "asset", "USD"),
            ("a-equity", "equity", "USD"),
            ("d-euros", "asset", "EUR"),
            ("c-equity-eur", "equity", "EUR"),
            ("e-yen", "asset", "JPY"),
        ]
    }
    post_entry(client, auth, pair(ids["b-cash"], ids["a-equity"], 1_000))
    post_entry(client, auth, pair(ids["d-euros"], ids["c-equity-eur"], 250, "EUR"))
    return ids


ALL_CURRENCIES = [
    {"currency": "EUR", "debits_posted": 250, "credits_posted": 250, "balanced": True},
    {"currency": "JPY", "debits_posted": 0, "credits_posted": 0, "balanced": True},
    {"currency": "USD", "debits_posted": 1_000, "credits_posted": 1_000, "balanced": True},
]


def pages(client: TestClient, auth: dict[str, str], limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = get_json(client, "/v1/trial-balance", auth, **params)
        found.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(("limit", "sizes"), [(1, [1] * 5), (2, [2, 2, 1]), (5, [5]), (500, [5])])
def test_pages_walk_every_account_once_in_code_order(
    client: TestClient,
    auth: dict[str, str],
    books: dict[str, str],
    limit: int,
    sizes: list[int],
) -> None:
    walked = pages(client, auth, limit)
    assert [len(page["accounts"]) for page in walked] == sizes
    codes = [a["code"] for page in walked for a in page["accounts"]]
    assert codes == ["a-equity", "b-cash", "c-equity-eur", "d-euros", "e-yen"]
    by_code = {a["code"]: a for page in walked for a in page["accounts"]}
    assert by_code["b-cash"]["balance"] == 1_000
    assert by_code["c-equity-eur"]["balance"] == 250
    # The totals are over all accounts, whatever page they come with.
    for page in walked:
        assert page["currencies"] == ALL_CURRENCIES
        assert page["balanced"] is True


def test_the_default_page_size_applies(
    client: TestClient, auth: dict[str, str], books: dict[str, str]
) -> None:
    assert limits.PAGE_SIZE_DEFAULT >= 5
    trial = get_json(client, "/v1/trial-balance", auth)
    assert len(trial["accounts"]) == 5
    assert trial["next_cursor"] is None


def test_account_cursors_are_trial_balance_cursors(
    client: TestClient, auth: dict[str, str], books: dict[str, str]
) -> None:
    """Both lists page by code, so a cursor of one positions the other."""
    cursor = get_json(client, "/v1/accounts", auth, limit=2)["next_cursor"]
    rest = get_json(client, "/v1/trial-balance", auth, cursor=cursor)
    assert [a["code"] for a in rest["accounts"]] == ["c-equity-eur", "d-euros", "e-yen"]


@pytest.mark.parametrize("limit", ["0", "501", "x"])
def test_limit_out_of_range_is_422(
    client: TestClient, auth: dict[str, str], books: dict[str, str], limit: str
) -> None:
    response = client.get("/v1/trial-balance", headers=auth, params={"limit": limit})
    assert_problem(response, 422, "validation_failed")


def test_a_journal_cursor_is_refused(
    client: TestClient, auth: dict[str, str], books: dict[str, str]
) -> None:
    cursor = get_json(client, "/v1/journal", auth, limit=1)["next_cursor"]
    response = client.get("/v1/trial-balance", headers=auth, params={"cursor": cursor})
    assert_problem(response, 400, "invalid_cursor")
