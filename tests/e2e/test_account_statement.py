"""Account statements page by the account's posting number, so an entry that touches the
account twice is listed whole even when a page ends between its lines."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.helpers import get_json, line, open_account, post_entry


def walk(client: TestClient, url: str, auth: dict[str, str], limit: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):
        page = get_json(client, url, auth, limit=limit, **({"cursor": cursor} if cursor else {}))
        assert len(page["data"]) <= limit
        lines.extend(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return lines
    raise AssertionError(f"pagination did not end: {lines}")


@pytest.mark.parametrize("limit", [1, 2, 3, 50])
def test_an_entry_touching_the_account_twice_is_listed_whole(
    client: TestClient, auth: dict[str, str], limit: int
) -> None:
    cash = open_account(client, auth, "cash", "asset")
    equity = open_account(client, auth, "equity", "equity")
    split = post_entry(
        client,
        auth,
        [line(cash, "debit", 5), line(cash, "debit", 7), line(equity, "credit", 12)],
    )
    later = post_entry(client, auth, [line(cash, "debit", 100), line(equity, "credit", 100)])

    lines = walk(client, f"/v1/accounts/{cash}/entries", auth, limit)
    assert [ln["entry_id"] for ln in lines] == [split["id"], split["id"], later["id"]]
    assert lines[0]["line_number"] != lines[1]["line_number"]
    assert [ln["amount"] for ln in lines] == [5, 7, 100]
    assert [ln["debits_after"] for ln in lines] == [5, 12, 112]
    assert [ln["account_posting_sequence"] for ln in lines] == [1, 2, 3]

    equity_lines = walk(client, f"/v1/accounts/{equity}/entries", auth, limit)
    assert [ln["credits_after"] for ln in equity_lines] == [12, 112]
