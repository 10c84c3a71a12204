"""Tracing: every response has an X-Request-Id, is logged once and is counted, including the
request guard's refusals and the 500 of an unexpected exception."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from finance import limits
from finance.adapters.postgres.db import Database
from finance.api.app import create_app
from finance.auth.tokens import TokenIssuer
from tests.conftest import make_container
from tests.e2e.helpers import assert_problem, open_account, pair, writing


class BrokenClock:
    """A clock that fails: stands for any bug that raises inside a request."""

    def now(self) -> datetime:
        raise RuntimeError("the clock broke")


@pytest.fixture(scope="module")
def broken_client(database: Database, issuer: TokenIssuer) -> Iterator[TestClient]:
    container = make_container(database, issuer)
    container.clock = BrokenClock()  # type: ignore[assignment]
    with TestClient(create_app(container), raise_server_exceptions=False) as c:
        yield c


def requests_counted(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("finance_http_requests_total", labels) or 0.0


def request_lines(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "request"]


def test_an_unexpected_exception_is_a_traced_and_counted_500(
    client: TestClient, broken_client: TestClient, auth: dict[str, str]
) -> None:
    cash = open_account(client, auth, "cash", "asset")
    equity = open_account(client, auth, "equity", "equity")
    before = requests_counted("POST", "/v1/journal", 500)
    with capture_logs() as logs:
        response = broken_client.post(
            "/v1/journal",
            json={"lines": pair(cash, equity, 1)},
            headers={**writing(auth), "X-Request-Id": "trace-500"},
        )
    body = assert_problem(response, 500, "internal_error")
    assert "clock" not in body["detail"]
    assert response.headers["X-Request-Id"] == "trace-500"

    failed = [entry for entry in logs if entry["event"] == "request.failed"]
    assert len(failed) == 1
    assert failed[0]["request_id"] == "trace-500"
    assert failed[0]["error"] == "RuntimeError"
    assert failed[0]["log_level"] == "error"
    assert failed[0]["exc_info"] is True
    [line] = request_lines(logs)
    assert (line["request_id"], line["status"], line["route"]) == (
        "trace-500",
        500,
        "/v1/journal",
    )
    assert line["tenant"] is not None
    assert requests_counted("POST", "/v1/journal", 500) == before + 1


def guard_refusals(auth: dict[str, str]) -> list[tuple[str, dict[str, Any], int, str]]:
    too_large = b"[" + b" " * (limits.BODY_BYTES_MAX + 1) + b"]"
    deep = b"[" * (limits.JSON_DEPTH_MAX + 1) + b"]" * (limits.JSON_DEPTH_MAX + 1)
    json_body = {**writing(auth), "Content-Type": "application/json"}
    return [
        ("/v1/journal", {"content": too_large, "headers": json_body}, 413, "body_too_large"),
        (
            "/v1/journal",
            {"content": b"lines", "headers": {**writing(auth), "Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        ("/v1/journal", {"content": deep, "headers": json_body}, 400, "json_too_deep"),
        ("/v1/journal?x=%00", {"json": {}, "headers": json_body}, 400, "invalid_query"),
    ]


def test_guard_refusals_are_traced_logged_and_counted(
    client: TestClient, auth: dict[str, str]
) -> None:
    for url, request, status, code in guard_refusals(auth):
        before = requests_counted("POST", "unmatched", status)
        request["headers"] = {**request["headers"], "X-Request-Id": f"guard-{code}"}
        with capture_logs() as logs:
            response = client.post(url, **request)
        assert_problem(response, status, code)
        assert response.headers["X-Request-Id"] == f"guard-{code}"
        [line] = request_lines(logs)
        assert (line["request_id"], line["status"]) == (f"guard-{code}", status)
        assert requests_counted("POST", "unmatched", status) == before + 1


def test_read_only_refusal_is_traced_and_counted(
    readonly_client: TestClient, auth: dict[str, str]
) -> None:
    before = requests_counted("POST", "unmatched", 503)
    with capture_logs() as logs:
        response = readonly_client.post(
            "/v1/journal", json={}, headers={**writing(auth), "X-Request-Id": "frozen"}
        )
    assert_problem(response, 503, "ledger_read_only")
    assert response.headers["X-Request-Id"] == "frozen"
    assert [line["status"] for line in request_lines(logs)] == [503]
    assert requests_counted("POST", "unmatched", 503) == before + 1


@pytest.mark.parametrize(
    "given",
    [
        "a",
        "req-123",
        "2f1c0a9e-6d7b-4c1e-9a8f-0b1c2d3e4f50",
        "svc.api:trace_7-9",
        "x" * limits.REQUEST_ID_CHARS_MAX,
    ],
)
def test_a_plain_request_id_is_echoed(client: TestClient, given: str) -> None:
    assert client.get("/healthz", headers={"X-Request-Id": given}).headers["X-Request-Id"] == given


@pytest.mark.parametrize(
    "given",
    [
        "",
        "x" * (limits.REQUEST_ID_CHARS_MAX + 1),
        "a b",
        "id;drop",
        "a/b",
        '"quoted"',
        "{json}",
        b"caf\xe9",
        b"line\x01break",
    ],
)
def test_any_other_request_id_is_replaced(client: TestClient, given: str | bytes) -> None:
    raw = given if isinstance(given, bytes) else given.encode()
    with capture_logs() as logs:
        response = client.get("/healthz", headers={b"X-Request-Id": raw})
    echoed = response.headers["X-Request-Id"]
    assert echoed != given
    assert len(echoed) == 32
    assert int(echoed, 16) >= 0
    assert [line["request_id"] for line in request_lines(logs)] == [echoed]


def test_a_generated_request_id_differs_per_request(client: TestClient) -> None:
    ids = {client.get("/healthz").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


def test_problems_of_the_routers_are_traced_too(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get("/v1/nothing", headers={**auth, "X-Request-Id": "r-404"})
    assert_problem(response, 404, "not_found")
    assert response.headers["X-Request-Id"] == "r-404"
