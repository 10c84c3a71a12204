"""Who may do what: bearer tokens, roles, and tenants that cannot see each other."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.api.routers import accounts, health, journal
from finance.auth.tokens import Role, TokenIssuer, public_key_pem
from finance.services import ledger
from tests.conftest import AUDIENCE, ISSUER, bearer, new_tenant_id
from tests.e2e.helpers import (
    assert_problem,
    get_json,
    open_account,
    pair,
    post_entry,
    writing,
)


def signed(
    issuer: TokenIssuer,
    tenant: str,
    /,
    key: ec.EllipticCurvePrivateKey | None = None,
    **changes: Any,
) -> str:
    """A token naming the trusted key (and signed by it unless `key` is given), with claims
    changed (None removes a claim)."""
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "test",
        "tenant": tenant,
        "roles": ["admin"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    headers = {"kid": issuer.verification_key.kid}
    signer = key if key is not None else issuer._private_key
    return jwt.encode(claims, signer, algorithm="ES256", headers=headers)


def stranger_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def segment(data: dict[str, Any]) -> str:
    """One base64url segment of a compact JWS."""
    return jwt.utils.base64url_encode(json.dumps(data).encode()).decode()


def unsigned_token(tenant: str) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "tenant": tenant, "roles": ["admin"]}
    unsigned = {"alg": "none", "typ": "JWT"}
    return f"{segment(unsigned)}.{segment({**claims, 'iat': now, 'exp': now + 60})}."


def hs256_keyed_with_public_key(issuer: TokenIssuer, tenant: str) -> str:
    """The classic algorithm confusion: valid claims, our kid, HS256 with the verifier's public
    key (PEM bytes) as the HMAC secret. A verifier that let the token choose its algorithm
    would check it with the very bytes it trusts, and accept it."""
    now = int(datetime.now(UTC).timestamp())
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.verification_key.kid}
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "tenant": tenant, "roles": ["admin"]}
    signing_input = f"{segment(header)}.{segment({**claims, 'iat': now, 'exp': now + 60})}"
    secret = public_key_pem(issuer.verification_key.public_key)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{jwt.utils.base64url_encode(mac).decode()}"


def with_claims_swapped(issuer: TokenIssuer, tenant: str) -> str:
    """A genuine token of another tenant whose payload names this tenant, signature kept."""
    header, _, signature = signed(issuer, "someone-else").split(".")
    genuine = jwt.decode(signed(issuer, tenant), options={"verify_signature": False})
    return f"{header}.{segment(genuine)}.{signature}"


def with_kid(issuer: TokenIssuer, tenant: str, kid: str) -> str:
    """Signed by the trusted key, but naming a key id that no configured key has."""
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "tenant": tenant}
    claims |= {"roles": ["admin"], "iat": now, "exp": now + 60}
    return jwt.encode(claims, issuer._private_key, algorithm="ES256", headers={"kid": kid})


def future(seconds: int) -> int:
    return int(datetime.now(UTC).timestamp()) + seconds


TokenFactory = Callable[[TokenIssuer, str], str]

BAD_TOKENS: list[tuple[str, TokenFactory, str]] = [
    ("garbage", lambda _i, _t: "garbage", "token_malformed"),
    ("three-garbage-parts", lambda _i, _t: "aaa.bbb.ccc", "token_malformed"),
    ("non-ascii", lambda _i, _t: "\u00e9\u00e9.\u00e9.\u00e9", "token_malformed"),
    ("oversized", lambda _i, _t: "a" * 9000 + ".b.c", "token_malformed"),
    (
        "expired",
        lambda i, t: i.issue(
            tenant_id=t,
            roles=[Role.ADMIN],
            subject="test",
            ttl_s=60,
            now=datetime.now(UTC) - timedelta(hours=2),
        ),
        "token_expired",
    ),
    (
        "not-yet-valid",
        lambda i, t: i.issue(
            tenant_id=t,
            roles=[Role.ADMIN],
            subject="test",
            ttl_s=600,
            now=datetime.now(UTC) + timedelta(hours=1),
        ),
        "token_not_yet_valid",
    ),
    (
        "other-key-with-its-kid",
        lambda _i, t: TokenIssuer(stranger_key(), issuer=ISSUER, audience=AUDIENCE).issue(
            tenant_id=t, roles=[Role.ADMIN], subject="test", ttl_s=600, now=datetime.now(UTC)
        ),
        "token_unknown_key",
    ),
    (
        "other-key-claiming-trusted-kid",
        lambda i, t: signed(i, t, key=stranger_key()),
        "token_bad_signature",
    ),
    (
        "HS256",
        lambda i, t: jwt.encode(
            {"tenant": t, "roles": ["admin"]},
            "a-shared-secret-of-at-least-32-bytes!",
            algorithm="HS256",
        ),
        "token_bad_algorithm",
    ),
    ("alg-none", lambda _i, t: unsigned_token(t), "token_bad_algorithm"),
    ("HS256-keyed-with-our-public-key", hs256_keyed_with_public_key, "token_bad_algorithm"),
    ("payload-swapped-signature-kept", with_claims_swapped, "token_bad_signature"),
    ("unknown-kid", lambda i, t: with_kid(i, t, "no-such-key"), "token_unknown_key"),
    ("nbf-in-the-future", lambda i, t: signed(i, t, nbf=future(3600)), "token_not_yet_valid"),
    ("expired-beyond-leeway", lambda i, t: signed(i, t, exp=future(-120)), "token_expired"),
    ("wrong-audience", lambda i, t: signed(i, t, aud="someone-else"), "token_bad_audience"),
    ("wrong-issuer", lambda i, t: signed(i, t, iss="evil"), "token_bad_issuer"),
    ("no-tenant-claim", lambda i, _t: signed(i, "x", tenant=None), "token_missing_claim"),
    ("no-exp-claim", lambda i, t: signed(i, t, exp=None), "token_missing_claim"),
    ("bad-tenant-claim", lambda i, _t: signed(i, "x", tenant="Acme Corp"), "token_bad_claim"),
    ("unknown-role", lambda i, t: signed(i, t, roles=["root"]), "token_bad_claim"),
    ("empty-roles", lambda i, t: signed(i, t, roles=[]), "token_bad_claim"),
    ("string-exp", lambda i, t: signed(i, t, exp="99999999999"), "token_bad_claim"),
]


def response_is_bearer_challenge(client: TestClient, headers: dict[bytes, bytes]) -> bool:
    return client.get("/v1/journal", headers=headers).headers.get("WWW-Authenticate") == "Bearer"


def test_no_authorization_header_is_401(client: TestClient, tenant: str) -> None:
    response = client.get("/v1/accounts")
    assert_problem(response, 401, "token_missing")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "value", ["Basic x", "Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc"]
)
def test_non_bearer_authorization_is_401(client: TestClient, value: str) -> None:
    response = client.get("/v1/accounts", headers={"Authorization": value})
    assert_problem(response, 401, "token_malformed")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("factory", "code"), [(f, c) for _, f, c in BAD_TOKENS], ids=[n for n, _, _ in BAD_TOKENS]
)
def test_bad_tokens_are_401_for_reads_and_writes(
    client: TestClient,
    issuer: TokenIssuer,
    tenant: str,
    auth: dict[str, str],
    factory: TokenFactory,
    code: str,
) -> None:
    token = factory(issuer, tenant)
    # Bytes, so that a non-ASCII token reaches the server as the client sent it.
    headers = {b"Authorization": f"Bearer {token}".encode()}
    body = assert_problem(client.get("/v1/accounts", headers=headers), 401, code)
    assert token[:40] not in body["detail"]
    assert response_is_bearer_challenge(client, headers)
    refused = client.post(
        "/v1/accounts",
        json={"code": "cash", "name": "Cash", "type": "asset", "currency": "USD"},
        headers={**headers, b"Idempotency-Key": b"k1"},
    )
    assert_problem(refused, 401, code)
    assert get_json(client, "/v1/accounts", auth)["data"] == []


def test_viewer_reads_but_cannot_write(
    client: TestClient, issuer: TokenIssuer, tenant: str, auth: dict[str, str]
) -> None:
    cash = open_account(client, auth, "cash", "asset")
    equity = open_account(client, auth, "equity", "equity")
    entry = post_entry(client, auth, pair(cash, equity, 10))
    viewer = bearer(issuer, tenant, Role.VIEWER)

    for url in (
        "/v1/accounts",
        f"/v1/accounts/{cash}",
        f"/v1/accounts/{cash}/balance",
        f"/v1/accounts/{cash}/entries",
        "/v1/journal",
        f"/v1/journal/{entry['id']}",
        "/v1/trial-balance",
    ):
        assert client.get(url, headers=viewer).status_code == 200, url

    writes = [
        ("/v1/accounts", {"code": "x", "name": "X", "type": "asset", "currency": "USD"}),
        ("/v1/journal", {"lines": pair(cash, equity, 1)}),
        (f"/v1/journal/{entry['id']}/reverse", {}),
        (f"/v1/accounts/{cash}/close", None),
    ]
    for url, body in writes:
        response = client.post(url, json=body, headers=writing(viewer))
        problem = assert_problem(response, 403, "insufficient_role")
        assert "role" in problem["detail"]
    assert len(get_json(client, "/v1/journal", auth)["data"]) == 1
    assert len(get_json(client, "/v1/accounts", auth)["data"]) == 2
    assert get_json(client, f"/v1/accounts/{cash}", auth)["closed"] is False


def test_accountant_posts_but_only_admin_closes(
    client: TestClient, issuer: TokenIssuer, tenant: str
) -> None:
    accountant = bearer(issuer, tenant, Role.ACCOUNTANT)
    cash = open_account(client, accountant, "cash", "asset")
    equity = open_account(client, accountant, "equity", "equity")
    entry = post_entry(client, accountant, pair(cash, equity, 10))
    reversed_ = client.post(f"/v1/journal/{entry['id']}/reverse", headers=writing(accountant))
    assert reversed_.status_code == 201, reversed_.text

    refused = client.post(f"/v1/accounts/{cash}/close", headers=writing(accountant))
    assert_problem(refused, 403, "insufficient_role")
    assert get_json(client, f"/v1/accounts/{cash}", accountant)["closed"] is False

    admin = bearer(issuer, tenant, Role.ADMIN)
    closed = client.post(f"/v1/accounts/{cash}/close", headers=writing(admin))
    assert closed.status_code == 200, closed.text
    assert get_json(client, f"/v1/accounts/{cash}", accountant)["closed"] is True


def test_several_roles_in_a_token_grant_the_highest(
    client: TestClient, issuer: TokenIssuer, tenant: str
) -> None:
    both = bearer(issuer, tenant, Role.VIEWER, Role.ADMIN)
    cash = open_account(client, both, "cash", "asset")
    closed = client.post(f"/v1/accounts/{cash}/close", headers=writing(both))
    assert closed.status_code == 200, closed.text


def test_tenants_cannot_see_or_touch_each_other(
    client: TestClient,
    issuer: TokenIssuer,
    store: PostgresLedgerStore,
    auth: dict[str, str],
) -> None:
    # Tenant B, with accounts and an entry.
    other = new_tenant_id()
    store(other, lambda tx: ledger.create_tenant(tx, "B", datetime.now(UTC)))
    b_auth = bearer(issuer, other, Role.ADMIN)
    b_cash = open_account(client, b_auth, "cash", "asset")
    b_equity = open_account(client, b_auth, "equity", "equity")
    b_entry = post_entry(client, b_auth, pair(b_cash, b_equity, 99), source="b", source_id="1")

    # Tenant A, with the same account codes.
    a_cash = open_account(client, auth, "cash", "asset")
    a_equity = open_account(client, auth, "equity", "equity")
    a_entry = post_entry(client, auth, pair(a_cash, a_equity, 5), source="b", source_id="1")

    for url, code in (
        (f"/v1/accounts/{b_cash}", "account_not_found"),
        (f"/v1/accounts/{b_cash}/balance", "account_not_found"),
        (f"/v1/accounts/{b_cash}/balance?as_of_sequence=0", "account_not_found"),
        (f"/v1/accounts/{b_cash}/entries", "account_not_found"),
        (f"/v1/journal/{b_entry['id']}", "entry_not_found"),
    ):
        assert_problem(client.get(url, headers=auth), 404, code)
    assert_problem(
        client.post(f"/v1/journal/{b_entry['id']}/reverse", headers=writing(auth)),
        404,
        "entry_not_found",
    )
    assert_problem(
        client.post(f"/v1/accounts/{b_cash}/close", headers=writing(auth)),
        404,
        "account_not_found",
    )

    a_accounts = {a["id"] for a in get_json(client, "/v1/accounts", auth)["data"]}
    assert a_accounts == {a_cash, a_equity}
    a_entries = [e["id"] for e in get_json(client, "/v1/journal", auth)["data"]]
    assert a_entries == [a_entry["id"]]
    for params in ({"account_id": b_cash}, {"reversal_of": b_entry["id"]}):
        assert get_json(client, "/v1/journal", auth, **params)["data"] == []
    assert [e["id"] for e in get_json(client, "/v1/journal", auth, source="b")["data"]] == [
        a_entry["id"]
    ]
    trial = get_json(client, "/v1/trial-balance", auth)
    assert {a["account_id"] for a in trial["accounts"]} == {a_cash, a_equity}
    assert trial["currencies"] == [
        {"currency": "USD", "debits_posted": 5, "credits_posted": 5, "balanced": True}
    ]

    # B's ledger is untouched by all of the above.
    assert get_json(client, f"/v1/accounts/{b_cash}/balance", b_auth)["balance"] == 99
    assert get_json(client, f"/v1/accounts/{b_cash}", b_auth)["closed"] is False
    assert [e["id"] for e in get_json(client, "/v1/journal", b_auth)["data"]] == [b_entry["id"]]


def test_same_idempotency_key_in_two_tenants_is_two_requests(
    client: TestClient,
    issuer: TokenIssuer,
    store: PostgresLedgerStore,
    auth: dict[str, str],
) -> None:
    other = new_tenant_id()
    store(other, lambda tx: ledger.create_tenant(tx, "B", datetime.now(UTC)))
    body = {"code": "cash", "name": "Cash", "type": "asset", "currency": "USD"}
    mine = client.post("/v1/accounts", json=body, headers=writing(auth, "shared-key"))
    theirs = client.post(
        "/v1/accounts", json=body, headers=writing(bearer(issuer, other), "shared-key")
    )
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]


def test_token_for_a_tenant_never_created_cannot_open_accounts(
    client: TestClient, issuer: TokenIssuer
) -> None:
    ghost = bearer(issuer, new_tenant_id(), Role.ADMIN)
    refused = client.post(
        "/v1/accounts",
        json={"code": "cash", "name": "Cash", "type": "asset", "currency": "USD"},
        headers=writing(ghost),
    )
    assert_problem(refused, 403, "tenant_not_found")
    assert get_json(client, "/v1/accounts", ghost)["data"] == []


def test_token_for_a_tenant_never_created_cannot_post(
    client: TestClient, issuer: TokenIssuer
) -> None:
    ghost = bearer(issuer, new_tenant_id(), Role.ADMIN)
    posted = client.post(
        "/v1/journal",
        json={"lines": pair(str(uuid.uuid4()), str(uuid.uuid4()), 1)},
        headers=writing(ghost),
    )
    # Either refusal is a fair answer: the tenant has no ledger and no such accounts.
    assert posted.status_code in (403, 404), posted.text
    assert_problem(posted, posted.status_code, posted.json()["code"])
    assert posted.json()["code"] in ("tenant_not_found", "account_not_found")
    assert get_json(client, "/v1/journal", ghost)["data"] == []
    assert get_json(client, "/v1/trial-balance", ghost)["accounts"] == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"])
def test_operations_endpoints_need_no_token(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.content


def test_openapi_lists_every_v1_route(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.headers["content-type"].startswith("application/json")
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    declared = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    routed = {
        (route.path, method)
        for router in (accounts.router, journal.router, health.router)
        for route in router.routes
        if isinstance(route, APIRoute) and route.path.startswith("/v1/")
        for method in route.methods or ()
    }
    expected = {
        ("/v1/accounts", "GET"),
        ("/v1/accounts", "POST"),
        ("/v1/accounts/{account_id}", "GET"),
        ("/v1/accounts/{account_id}/close", "POST"),
        ("/v1/accounts/{account_id}/balance", "GET"),
        ("/v1/accounts/{account_id}/entries", "GET"),
        ("/v1/journal", "GET"),
        ("/v1/journal", "POST"),
        ("/v1/journal/batch", "POST"),
        ("/v1/journal/{entry_id}", "GET"),
        ("/v1/journal/{entry_id}/reverse", "POST"),
        ("/v1/trial-balance", "GET"),
    }
    assert routed == expected
    assert expected <= declared
    for path, method in expected:
        operation = document["paths"][path][method.lower()]
        problems = operation["responses"]
        assert {"401", "403", "422"} <= set(problems), (path, method)
        # 404 only where something named may not exist (docs/security.md, the OpenAPI rules).
        assert ("404" in problems) == ("{" in path or method == "POST"), (path, method)
        assert set(problems["422"]["content"]) == {"application/problem+json"}
        # A batch's keys are in its body, one per entry.
        if method == "POST" and path != "/v1/journal/batch":
            names = {p["name"] for p in operation.get("parameters", [])}
            assert "Idempotency-Key" in names, path
