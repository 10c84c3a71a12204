"""Rate limits through the app: 429 problem with Retry-After once a caller's bucket is empty,
other callers unaffected, served again after the wait, and nothing written by a refusal.

The app's limiter runs on a clock the test turns (the buckets themselves are unit-tested in
tests/unit/test_ratelimit.py), so "waiting" is exact and a slow machine cannot refill a bucket
behind the test's back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from finance.adapters.postgres.db import Database
from finance.api.app import create_app
from finance.api.ratelimit import RateLimiter
from finance.auth.tokens import Role, TokenIssuer
from tests.conftest import bearer, make_container
from tests.e2e.helpers import assert_problem, get_json, key, open_account, pair, writing
from tests.unit.test_ratelimit import ManualClock

RATE_PER_S = 0.5  # one request more every 2 s
BURST = 4
RETRY_AFTER_S = "2"


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def limited(database: Database, issuer: TokenIssuer, clock: ManualClock) -> Iterator[TestClient]:
    """The API with a small limit on the test's clock (the settings are checked to reach the
    app: the limiter is then swapped for one with the same limits on the manual clock)."""
    container = make_container(
        database, issuer, rate_limit_per_second=RATE_PER_S, rate_limit_burst=BURST
    )
    app = create_app(container)
    configured: RateLimiter = app.state.rate_limiter
    assert configured.callers is not None
    assert (configured.callers.rate_per_s, configured.callers.burst) == (RATE_PER_S, BURST)
    app.state.rate_limiter = RateLimiter.create(RATE_PER_S, BURST, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def limited_count(kind: str) -> float:
    return REGISTRY.get_sample_value("finance_http_rate_limited_total", {"kind": kind}) or 0.0


def use_up(client: TestClient, auth: dict[str, str], count: int = BURST) -> None:
    for _ in range(count):
        assert client.get("/v1/accounts", headers=auth).status_code == 200


def test_over_the_limit_is_a_429_problem_with_retry_after(
    limited: TestClient, clock: ManualClock, auth: dict[str, str], issuer: TokenIssuer, tenant: str
) -> None:
    use_up(limited, auth)
    before = limited_count("token")
    refused = limited.get("/v1/accounts", headers=auth)
    body = assert_problem(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == RETRY_AFTER_S
    assert f"retry after {RETRY_AFTER_S} s" in body["detail"]
    assert limited_count("token") == before + 1

    # Other callers have buckets of their own: another subject of the same tenant, and the same
    # subject in another tenant.
    colleague = issuer.issue(
        tenant_id=tenant, roles=[Role.VIEWER], subject="reports", ttl_s=600, now=datetime.now(UTC)
    )
    assert limited.get("/v1/accounts", headers={"Authorization": f"Bearer {colleague}"}).is_success
    other_tenant = bearer(issuer, "t-elsewhere", Role.VIEWER)
    assert limited.get("/v1/accounts", headers=other_tenant).status_code == 200

    # A fresh token for the same caller does not reset its bucket.
    assert_problem(limited.get("/v1/accounts", headers=bearer(issuer, tenant)), 429, "rate_limited")

    clock.advance(float(RETRY_AFTER_S))
    assert limited.get("/v1/accounts", headers=auth).status_code == 200
    assert_problem(limited.get("/v1/accounts", headers=auth), 429, "rate_limited")


def test_a_refused_posting_writes_nothing_and_posts_once_when_retried(
    limited: TestClient, clock: ManualClock, auth: dict[str, str]
) -> None:
    cash = open_account(limited, auth, "cash", "asset")
    equity = open_account(limited, auth, "equity", "equity")
    use_up(limited, auth, BURST - 2)
    entry = {"lines": pair(cash, equity, 700), "memo": "refused first"}
    posting_key = key()
    refused = limited.post("/v1/journal", json=entry, headers=writing(auth, posting_key))
    assert_problem(refused, 429, "rate_limited")

    clock.advance(3600.0)  # refills the whole burst
    assert get_json(limited, "/v1/journal", auth)["data"] == []
    posted = limited.post("/v1/journal", json=entry, headers=writing(auth, posting_key))
    assert posted.status_code == 201, posted.text
    assert "Idempotent-Replayed" not in posted.headers
    replayed = limited.post("/v1/journal", json=entry, headers=writing(auth, posting_key))
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.content == posted.content
    [only] = get_json(limited, "/v1/journal", auth)["data"]
    assert only["id"] == posted.json()["id"]


def test_failed_authentication_is_limited_per_address_and_probes_never(
    limited: TestClient, clock: ManualClock, auth: dict[str, str]
) -> None:
    clock.advance(3600.0)
    before = limited_count("address")
    for _ in range(BURST):
        assert_problem(limited.get("/v1/accounts"), 401, "token_missing")
    storm = limited.get("/v1/accounts", headers={"Authorization": "Bearer not-a-token"})
    assert_problem(storm, 429, "rate_limited")
    assert storm.headers["Retry-After"] == RETRY_AFTER_S
    assert limited_count("address") == before + 1

    # A caller that authenticates from the same address is not held back by the storm.
    assert limited.get("/v1/accounts", headers=auth).status_code == 200
    # Probes and metrics need no token and are never limited, even with every bucket empty.
    use_up(limited, auth, BURST - 1)
    assert_problem(limited.get("/v1/accounts", headers=auth), 429, "rate_limited")
    for path in ("/healthz", "/readyz", "/metrics") * BURST:
        assert limited.get(path).status_code == 200, path


def test_the_429_is_in_the_openapi_document(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    responses = document["paths"]["/v1/journal"]["post"]["responses"]
    assert "application/problem+json" in responses["429"]["content"]
