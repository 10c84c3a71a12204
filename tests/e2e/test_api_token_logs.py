"""No token content reaches the logs: not the raw token, not one of its segments (header,
claims, signature), not a claim value, whether the token is good, refused or forbidden.

A bearer token in a log file is a credential anyone with log access can replay until it
expires, and a refused token's claims are attacker-chosen text. The request log names the
caller's tenant (from a verified token only) and nothing else of it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from finance.auth.tokens import TokenIssuer
from tests.e2e.helpers import open_account, writing
from tests.e2e.test_api_auth import segment, signed

Marked = Callable[[TokenIssuer, str, dict[str, Any]], str]


def unsigned(_: TokenIssuer, tenant: str, marks: dict[str, Any]) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {"tenant": tenant, "roles": ["admin"], "iat": now, "exp": now + 60, **marks}
    return f"{segment({'alg': 'none'})}.{segment(claims)}."


REFUSED = (401, 401)
# A token, and the statuses of a read and a write (closing an account) made with it.
TOKENS: list[tuple[str, Marked, tuple[int, int]]] = [
    ("good", lambda i, t, m: signed(i, t, **m), (200, 200)),
    ("viewer", lambda i, t, m: signed(i, t, roles=["viewer"], **m), (200, 403)),
    ("expired", lambda i, t, m: signed(i, t, exp=1_000_000_000, iat=999_999_000, **m), REFUSED),
    (
        "bad-signature",
        lambda i, t, m: signed(i, t, key=ec.generate_private_key(ec.SECP256R1()), **m),
        REFUSED,
    ),
    ("alg-none", unsigned, REFUSED),
    ("wrong-audience", lambda i, t, m: signed(i, t, aud="elsewhere", **m), REFUSED),
    ("no-tenant", lambda i, t, m: signed(i, t, tenant=None, **m), REFUSED),
]


@pytest.mark.parametrize(
    ("maker", "statuses"), [(m, s) for _, m, s in TOKENS], ids=[n for n, _, _ in TOKENS]
)
def test_no_token_content_is_logged(
    client: TestClient,
    issuer: TokenIssuer,
    tenant: str,
    auth: dict[str, str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    maker: Marked,
    statuses: tuple[int, int],
) -> None:
    account = open_account(client, auth, "cash", "asset")
    marks = {"sub": f"subject-{uuid.uuid4().hex}", "jti": f"jti-{uuid.uuid4().hex}"}
    token = maker(issuer, tenant, marks)
    headers = {"Authorization": f"Bearer {token}", "X-Request-Id": f"tokens-{uuid.uuid4().hex}"}
    capfd.readouterr()
    with caplog.at_level(logging.DEBUG):
        read = client.get(f"/v1/accounts/{account}", headers=headers)
        write = client.post(f"/v1/accounts/{account}/close", headers=writing(headers))
    out, err = capfd.readouterr()
    logged = out + err + caplog.text

    assert (read.status_code, write.status_code) == statuses, write.text
    # The capture works: both requests were logged, with their request id.
    assert logged.count(headers["X-Request-Id"]) >= 2, logged
    secrets = [token, *marks.values(), *(part for part in token.split(".") if part)]
    leaked = [secret for secret in secrets if secret in logged]
    assert not leaked
    if statuses == REFUSED:
        # A refused token's claims are attacker text; its tenant is never the request's.
        assert tenant not in logged
