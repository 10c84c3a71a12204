"""Unit tests for finance.auth.tokens: issuing, verifying and refusing ES256 bearer tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm

from finance.auth import tokens
from finance.auth.tokens import (
    TENANT_ID_PATTERN,
    Principal,
    Role,
    TokenError,
    TokenIssuer,
    TokenVerifier,
    VerificationKey,
    key_id,
    load_or_create_issuer_key,
    load_verification_keys,
    public_key_pem,
    role_satisfies,
)

ISSUER = "https://finance.example/auth"
AUDIENCE = "finance-api"
ALL_CODES = {
    "token_missing",
    "token_malformed",
    "token_expired",
    "token_not_yet_valid",
    "token_bad_issuer",
    "token_bad_audience",
    "token_bad_signature",
    "token_unknown_key",
    "token_bad_algorithm",
    "token_missing_claim",
    "token_bad_claim",
}
_DROP = object()  # marks a claim to leave out of a crafted token

# The P-256 example key of RFC 7515, appendix A.3, and its RFC 7638 thumbprint computed outside
# Python (printf '<canonical JWK>' | openssl dgst -sha256 -binary | basenc --base64url).
RFC7515_X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
RFC7515_Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
RFC7515_THUMBPRINT = "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"


# --- helpers ---------------------------------------------------------------------------------


def _p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(value: object) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _now() -> datetime:
    return datetime.now(UTC)


def _claims(**overrides: object) -> dict[str, Any]:
    """A valid claim set for the test issuer/audience, with some claims replaced or dropped."""
    now = int(_now().timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "tenant": "acme",
        "roles": ["accountant"],
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "c0ffee00-0000-4000-8000-000000000000",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not _DROP}


def _sign(
    claims: dict[str, Any],
    private_key: Any,
    *,
    kid: str | None,
    alg: str = "ES256",
) -> str:
    headers = {} if kid is None else {"kid": kid}
    return jwt.encode(claims, private_key, algorithm=alg, headers=headers)


def _craft(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, as an attacker would, bypassing PyJWT's own safeguards."""
    return f"{_b64url_json(header)}.{_b64url_json(claims)}.{_b64url(signature)}"


def _refused(verifier: TokenVerifier, token: str) -> TokenError:
    with pytest.raises(TokenError) as info:
        verifier.verify(token)
    error = info.value
    assert error.code in ALL_CODES
    assert error.detail
    if token.strip():
        assert token not in error.detail
        assert token not in str(error)
    return error


@pytest.fixture
def signing_key() -> ec.EllipticCurvePrivateKey:
    return _p256()


@pytest.fixture
def issuer(signing_key: ec.EllipticCurvePrivateKey) -> TokenIssuer:
    return TokenIssuer(signing_key, issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def kid(issuer: TokenIssuer) -> str:
    return issuer.verification_key.kid


@pytest.fixture
def verifier(issuer: TokenIssuer) -> TokenVerifier:
    return TokenVerifier([issuer.verification_key], issuer=ISSUER, audience=AUDIENCE)


# --- the happy path --------------------------------------------------------------------------


def test_issued_token_round_trips_into_the_right_principal(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.issue(
        tenant_id="acme-eu_1",
        roles=[Role.ACCOUNTANT, Role.VIEWER, Role.ACCOUNTANT],
        subject="user-42",
        ttl_s=600,
        now=_now(),
    )

    principal = verifier.verify(token)

    assert principal.tenant_id == "acme-eu_1"
    assert principal.roles == frozenset({Role.ACCOUNTANT, Role.VIEWER})
    assert principal.subject == "user-42"
    assert principal.token_id is not None
    assert uuid.UUID(principal.token_id).version == 4


def test_issued_token_has_es256_header_with_thumbprint_kid_and_all_claims(
    issuer: TokenIssuer, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    token = issuer.issue(
        tenant_id="acme", roles=[Role.ADMIN, Role.VIEWER], subject="alice", ttl_s=120, now=now
    )

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == key_id(signing_key.public_key())
    claims = jwt.decode(token, options={"verify_signature": False})
    issued_at = int(now.timestamp())
    assert {name: claims[name] for name in claims if name != "jti"} == {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "tenant": "acme",
        "roles": ["viewer", "admin"],
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + 120,
    }
    assert uuid.UUID(claims["jti"]).version == 4


def test_each_issued_token_gets_a_fresh_jti(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    def issue() -> str:
        return issuer.issue(
            tenant_id="acme", roles=[Role.VIEWER], subject="bob", ttl_s=60, now=_now()
        )

    first, second = verifier.verify(issue()), verifier.verify(issue())

    assert first.token_id != second.token_id


def test_token_without_jti_verifies_with_no_token_id(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _sign(_claims(jti=_DROP), signing_key, kid=kid)

    assert verifier.verify(token).token_id is None


def test_token_without_nbf_is_accepted(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _sign(_claims(nbf=_DROP), signing_key, kid=kid)

    assert verifier.verify(token).tenant_id == "acme"


def test_audience_list_containing_ours_is_accepted(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _sign(_claims(aud=["other-api", AUDIENCE]), signing_key, kid=kid)

    assert verifier.verify(token).subject == "user-42"


def test_single_configured_key_is_used_when_header_has_no_kid(
    signing_key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier
) -> None:
    token = _sign(_claims(), signing_key, kid=None)
    assert "kid" not in jwt.get_unverified_header(token)

    assert verifier.verify(token).roles == frozenset({Role.ACCOUNTANT})


def test_kid_selects_among_several_keys(issuer: TokenIssuer) -> None:
    other = TokenIssuer(_p256(), issuer=ISSUER, audience=AUDIENCE)
    verifier = TokenVerifier(
        [other.verification_key, issuer.verification_key], issuer=ISSUER, audience=AUDIENCE
    )

    for source, tenant in ((issuer, "first"), (other, "second")):
        token = source.issue(
            tenant_id=tenant, roles=[Role.VIEWER], subject="s", ttl_s=60, now=_now()
        )
        assert verifier.verify(token).tenant_id == tenant


# --- refusals: time --------------------------------------------------------------------------


def test_expired_token_is_refused(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue(
        tenant_id="acme",
        roles=[Role.VIEWER],
        subject="s",
        ttl_s=60,
        now=_now() - timedelta(hours=2),
    )

    error = _refused(verifier, token)

    assert error.code == "token_expired"
    assert isinstance(error.__cause__, jwt.ExpiredSignatureError)


def test_leeway_tolerates_recent_expiry_but_not_beyond(
    issuer: TokenIssuer, signing_key: ec.EllipticCurvePrivateKey, kid: str
) -> None:
    now = int(_now().timestamp())
    token = _sign(_claims(iat=now - 100, nbf=now - 100, exp=now - 10), signing_key, kid=kid)
    lenient = TokenVerifier(
        [issuer.verification_key], issuer=ISSUER, audience=AUDIENCE, leeway_s=30
    )
    strict = TokenVerifier([issuer.verification_key], issuer=ISSUER, audience=AUDIENCE, leeway_s=0)

    assert lenient.verify(token).subject == "user-42"
    assert _refused(strict, token).code == "token_expired"


def test_token_with_nbf_in_the_future_is_refused(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    now = int(_now().timestamp())
    token = _sign(_claims(nbf=now + 3600, exp=now + 7200), signing_key, kid=kid)

    assert _refused(verifier, token).code == "token_not_yet_valid"


def test_token_issued_in_the_future_is_refused(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.issue(
        tenant_id="acme",
        roles=[Role.VIEWER],
        subject="s",
        ttl_s=60,
        now=_now() + timedelta(hours=1),
    )

    assert _refused(verifier, token).code == "token_not_yet_valid"


# --- refusals: issuer, audience, signature ---------------------------------------------------


def test_wrong_issuer_is_refused(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _sign(_claims(iss="https://evil.example/auth"), signing_key, kid=kid)

    assert _refused(verifier, token).code == "token_bad_issuer"


def test_wrong_audience_is_refused(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _sign(_claims(aud="another-api"), signing_key, kid=kid)

    assert _refused(verifier, token).code == "token_bad_audience"


def test_token_signed_by_another_p256_key_under_our_kid_is_refused(
    kid: str, verifier: TokenVerifier
) -> None:
    token = _sign(_claims(), _p256(), kid=kid)

    error = _refused(verifier, token)

    assert error.code == "token_bad_signature"
    assert isinstance(error.__cause__, jwt.InvalidSignatureError)


def test_tampered_claims_break_the_signature(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue(tenant_id="acme", roles=[Role.VIEWER], subject="s", ttl_s=60, now=_now())
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin"]
    forged = f"{header}.{_b64url_json(claims)}.{signature}"

    assert _refused(verifier, forged).code == "token_bad_signature"


def test_es256_header_with_p384_signature_is_refused(kid: str, verifier: TokenVerifier) -> None:
    # Signed by hand: PyJWT itself would refuse to sign ES256 with a P-384 key.
    p384 = ec.generate_private_key(ec.SECP384R1())
    header = _b64url_json({"alg": "ES256", "kid": kid, "typ": "JWT"})
    signing_input = f"{header}.{_b64url_json(_claims())}"
    r, s = decode_dss_signature(p384.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    raw_signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")

    token = f"{signing_input}.{_b64url(raw_signature)}"

    assert _refused(verifier, token).code == "token_bad_signature"


# --- refusals: algorithm ---------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_unsigned_alg_none_token_is_refused(kid: str, verifier: TokenVerifier, alg: str) -> None:
    token = _craft({"alg": alg, "kid": kid, "typ": "JWT"}, _claims())
    assert token.endswith(".")

    assert _refused(verifier, token).code == "token_bad_algorithm"


def test_alg_none_without_kid_is_refused_even_with_a_single_key(verifier: TokenVerifier) -> None:
    token = _craft({"alg": "none"}, _claims())

    assert _refused(verifier, token).code == "token_bad_algorithm"


def test_hs256_keyed_with_our_public_key_pem_is_refused(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    # The classic key-confusion attack: the public key is public, so anyone can compute this MAC.
    secret = public_key_pem(signing_key.public_key())
    signing_input = f"{_b64url_json({'alg': 'HS256', 'kid': kid})}.{_b64url_json(_claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{_b64url(mac)}"

    assert _refused(verifier, token).code == "token_bad_algorithm"


def test_es384_token_from_a_p384_key_is_refused(kid: str, verifier: TokenVerifier) -> None:
    token = _sign(_claims(), ec.generate_private_key(ec.SECP384R1()), kid=kid, alg="ES384")

    assert _refused(verifier, token).code == "token_bad_algorithm"


@pytest.mark.parametrize(
    "alg",
    [
        "HS256",
        "HS512",
        "RS256",
        "PS256",
        "ES384",
        "ES512",
        "ES256K",
        "EdDSA",
        "es256",
        "ES256 ",
        "",
    ],
)
def test_any_algorithm_but_es256_is_refused(kid: str, verifier: TokenVerifier, alg: str) -> None:
    token = _craft({"alg": alg, "kid": kid}, _claims(), signature=b"\x01" * 64)

    assert _refused(verifier, token).code == "token_bad_algorithm"


@pytest.mark.parametrize("alg", [None, 256, ["ES256"]])
def test_missing_or_non_string_alg_is_refused(
    kid: str, verifier: TokenVerifier, alg: object
) -> None:
    header: dict[str, Any] = {"kid": kid} if alg is None else {"alg": alg, "kid": kid}
    token = _craft(header, _claims(), signature=b"\x01" * 64)

    assert _refused(verifier, token).code == "token_bad_algorithm"


# --- refusals: key selection -----------------------------------------------------------------


def test_unknown_kid_is_refused(
    signing_key: ec.EllipticCurvePrivateKey, verifier: TokenVerifier
) -> None:
    # Even though the signature would verify with the only configured key.
    token = _sign(_claims(), signing_key, kid="some-other-key")

    assert _refused(verifier, token).code == "token_unknown_key"


def test_missing_kid_is_refused_when_several_keys_are_configured(
    issuer: TokenIssuer, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    other = TokenIssuer(_p256(), issuer=ISSUER, audience=AUDIENCE)
    verifier = TokenVerifier(
        [issuer.verification_key, other.verification_key], issuer=ISSUER, audience=AUDIENCE
    )
    token = _sign(_claims(), signing_key, kid=None)

    assert _refused(verifier, token).code == "token_unknown_key"


def test_non_string_kid_is_refused_as_malformed(verifier: TokenVerifier) -> None:
    token = _craft({"alg": "ES256", "kid": 7}, _claims(), signature=b"\x01" * 64)

    assert _refused(verifier, token).code == "token_malformed"


# --- refusals: claims ------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "tenant", "roles"])
def test_missing_required_claim_is_refused(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier, claim: str
) -> None:
    token = _sign(_claims(**{claim: _DROP}), signing_key, kid=kid)

    error = _refused(verifier, token)

    assert error.code == "token_missing_claim"
    assert claim in error.detail


@pytest.mark.parametrize(
    "tenant",
    ["Acme", "", "-acme", "_acme", "acme\n", "ac me", "acmé", "a" * 64, 42, ["acme"], {"id": "a"}],
)
def test_bad_tenant_claim_is_refused(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier, tenant: object
) -> None:
    token = _sign(_claims(tenant=tenant), signing_key, kid=kid)

    error = _refused(verifier, token)

    assert error.code == "token_bad_claim"
    assert "tenant" in error.detail


@pytest.mark.parametrize(
    "roles",
    [[], ["root"], ["admin", "root"], ["Admin"], "admin", [1], [["admin"]], {"admin": True}],
)
def test_bad_roles_claim_is_refused(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier, roles: object
) -> None:
    token = _sign(_claims(roles=roles), signing_key, kid=kid)

    error = _refused(verifier, token)

    assert error.code == "token_bad_claim"
    assert "roles" in error.detail


@pytest.mark.parametrize(
    "overrides",
    [
        {"sub": 42},
        {"sub": ""},
        {"sub": "x" * 257},
        {"jti": 42},
        {"jti": ""},
        {"iat": "yesterday"},
        {"iat": True},
        {"exp": "99999999999"},
        {"nbf": "0"},
    ],
)
def test_badly_typed_claim_is_refused(
    signing_key: ec.EllipticCurvePrivateKey,
    kid: str,
    verifier: TokenVerifier,
    overrides: dict[str, object],
) -> None:
    token = _sign(_claims(**overrides), signing_key, kid=kid)

    assert _refused(verifier, token).code == "token_bad_claim"


def test_null_claim_counts_as_missing(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier
) -> None:
    token = _sign(_claims(tenant=None), signing_key, kid=kid)

    assert _refused(verifier, token).code == "token_missing_claim"


# --- refusals: not a token at all ------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "   "])
def test_empty_token_is_reported_missing(verifier: TokenVerifier, token: str) -> None:
    assert _refused(verifier, token).code == "token_missing"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.@@@.###",
        "é.é.é",
        "Bearer abc.def.ghi",
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0=.c2ln",  # padding is not compact JWS
        "x" * 10_000,
        f"{_b64url(b'not json')}.{_b64url_json({})}.c2ln",
        f"{_b64url_json(['ES256'])}.{_b64url_json({})}.c2ln",
        "a" * 9 + "." + "b" * 9 + "." + "c" * 9,
    ],
)
def test_malformed_token_is_refused(verifier: TokenVerifier, token: str) -> None:
    assert _refused(verifier, token).code == "token_malformed"


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2, 3]", b'"a string"', b"null"])
def test_correctly_signed_payload_that_is_not_a_claim_set_is_malformed(
    signing_key: ec.EllipticCurvePrivateKey, kid: str, verifier: TokenVerifier, payload: bytes
) -> None:
    # The signature is checked first, so only a trusted signer can make the payload matter.
    token = jwt.api_jws.encode(payload, signing_key, algorithm="ES256", headers={"kid": kid})

    assert _refused(verifier, token).code == "token_malformed"


# Hypothesis tests cannot take function-scoped fixtures, so they share one issuer and token.
_STATIC_ISSUER = TokenIssuer(_p256(), issuer=ISSUER, audience=AUDIENCE)
_STATIC_TOKEN = _STATIC_ISSUER.issue(
    tenant_id="acme", roles=[Role.VIEWER], subject="s", ttl_s=86_400, now=_now()
)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_text_only_ever_raises_token_error(text: str) -> None:
    verifier = TokenVerifier([_STATIC_ISSUER.verification_key], issuer=ISSUER, audience=AUDIENCE)

    with pytest.raises(TokenError) as info:
        verifier.verify(text)

    assert info.value.code in ALL_CODES


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_single_character_change_is_refused(data: st.DataObject) -> None:
    verifier = TokenVerifier([_STATIC_ISSUER.verification_key], issuer=ISSUER, audience=AUDIENCE)
    position = data.draw(st.integers(0, len(_STATIC_TOKEN) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    replacement = data.draw(
        st.sampled_from(alphabet).filter(lambda c: c != _STATIC_TOKEN[position])
    )
    mutated = _STATIC_TOKEN[:position] + replacement + _STATIC_TOKEN[position + 1 :]

    with pytest.raises(TokenError) as info:
        verifier.verify(mutated)

    assert info.value.code in ALL_CODES


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granted", "required", "expected"),
    [
        ({Role.ADMIN}, Role.ADMIN, True),
        ({Role.ADMIN}, Role.ACCOUNTANT, True),
        ({Role.ADMIN}, Role.VIEWER, True),
        ({Role.ACCOUNTANT}, Role.ADMIN, False),
        ({Role.ACCOUNTANT}, Role.ACCOUNTANT, True),
        ({Role.ACCOUNTANT}, Role.VIEWER, True),
        ({Role.VIEWER}, Role.ADMIN, False),
        ({Role.VIEWER}, Role.ACCOUNTANT, False),
        ({Role.VIEWER}, Role.VIEWER, True),
        ({Role.VIEWER, Role.ACCOUNTANT}, Role.ACCOUNTANT, True),
        (set(), Role.VIEWER, False),
    ],
)
def test_role_hierarchy(granted: set[Role], required: Role, expected: bool) -> None:
    assert role_satisfies(frozenset(granted), required) is expected
    principal = Principal(tenant_id="acme", roles=frozenset(granted), subject="s", token_id=None)
    assert principal.has(required) is expected


def test_roles_are_their_wire_strings() -> None:
    assert [role.value for role in Role] == ["viewer", "accountant", "admin"]
    assert Role("admin") is Role.ADMIN


def test_tenant_pattern_is_a_lowercase_slug() -> None:
    assert TENANT_ID_PATTERN == r"^[a-z0-9][a-z0-9_-]{0,62}$"


# --- key ids ---------------------------------------------------------------------------------


def _rfc7515_public_key() -> ec.EllipticCurvePublicKey:
    def coordinate(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    numbers = ec.EllipticCurvePublicNumbers(
        coordinate(RFC7515_X), coordinate(RFC7515_Y), ec.SECP256R1()
    )
    return numbers.public_key()


def test_key_id_is_the_rfc7638_thumbprint() -> None:
    # Built by hand: required members only, sorted, no whitespace (RFC 7638 section 3).
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{RFC7515_X}","y":"{RFC7515_Y}"}}'
    by_hand = _b64url(hashlib.sha256(canonical.encode()).digest())

    assert by_hand == RFC7515_THUMBPRINT
    assert key_id(_rfc7515_public_key()) == RFC7515_THUMBPRINT


def test_key_id_is_stable_across_serialisation() -> None:
    public_key = _p256().public_key()
    reloaded = serialization.load_pem_public_key(public_key_pem(public_key))
    assert isinstance(reloaded, ec.EllipticCurvePublicKey)

    assert key_id(public_key) == key_id(public_key) == key_id(reloaded)
    assert key_id(public_key) != key_id(_p256().public_key())
    assert "=" not in key_id(public_key)
    assert len(key_id(public_key)) == 43  # 32 bytes of SHA-256, base64url without padding


def test_key_id_refuses_other_curves() -> None:
    with pytest.raises(ValueError, match="P-256"):
        key_id(ec.generate_private_key(ec.SECP384R1()).public_key())


def test_verification_key_refuses_other_curves() -> None:
    with pytest.raises(ValueError, match="P-256"):
        VerificationKey(kid="k", public_key=ec.generate_private_key(ec.SECP384R1()).public_key())


# --- loading verification keys ---------------------------------------------------------------


def _write_jwks(path: Path, *jwks: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"keys": list(jwks)}), encoding="utf-8")
    return path


def _jwk(public_key: ec.EllipticCurvePublicKey, **members: Any) -> dict[str, Any]:
    return {**ECAlgorithm.to_jwk(public_key, as_dict=True), **members}


def test_load_verification_keys_from_pem(tmp_path: Path) -> None:
    public_key = _p256().public_key()
    pem_path = tmp_path / "issuer.pub.pem"
    pem_path.write_bytes(public_key_pem(public_key))

    [loaded] = load_verification_keys(pem_paths=[pem_path])

    assert loaded.kid == key_id(public_key)
    assert loaded.public_key == public_key


def test_load_verification_keys_from_jwks(tmp_path: Path) -> None:
    named, unnamed = _p256().public_key(), _p256().public_key()
    jwks_path = _write_jwks(
        tmp_path / "jwks.json", _jwk(named, kid="2030-01", use="sig", alg="ES256"), _jwk(unnamed)
    )

    loaded = load_verification_keys(jwks_path=jwks_path)

    assert [(key.kid, key.public_key) for key in loaded] == [
        ("2030-01", named),
        (key_id(unnamed), unnamed),
    ]


def test_load_verification_keys_combines_sources_and_drops_repeats(tmp_path: Path) -> None:
    first, second = _p256().public_key(), _p256().public_key()
    pem_path = tmp_path / "first.pem"
    pem_path.write_bytes(public_key_pem(first))
    jwks_path = _write_jwks(tmp_path / "jwks.json", _jwk(first), _jwk(second))

    loaded = load_verification_keys(pem_paths=[pem_path], jwks_path=jwks_path)

    assert {key.kid for key in loaded} == {key_id(first), key_id(second)}
    assert len(loaded) == 2


def test_loaded_keys_verify_issued_tokens(tmp_path: Path, issuer: TokenIssuer) -> None:
    pem_path = tmp_path / "issuer.pem"
    pem_path.write_bytes(public_key_pem(issuer.verification_key.public_key))
    verifier = TokenVerifier(
        load_verification_keys(pem_paths=[pem_path]), issuer=ISSUER, audience=AUDIENCE
    )
    token = issuer.issue(tenant_id="acme", roles=[Role.ADMIN], subject="s", ttl_s=60, now=_now())

    assert verifier.verify(token).has(Role.ADMIN)


def test_load_verification_keys_refuses_rsa_pem_naming_the_file(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem_path = tmp_path / "rsa.pub.pem"
    pem_path.write_bytes(
        rsa_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    with pytest.raises(ValueError, match="P-256") as info:
        load_verification_keys(pem_paths=[pem_path])

    assert str(pem_path) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        b"not a key",
        public_key_pem(ec.generate_private_key(ec.SECP384R1()).public_key()),
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    ],
    ids=["garbage", "p384", "private-key"],
)
def test_load_verification_keys_refuses_other_pem_content(tmp_path: Path, content: bytes) -> None:
    pem_path = tmp_path / "key.pem"
    pem_path.write_bytes(content)

    with pytest.raises(ValueError, match=r"key\.pem"):
        load_verification_keys(pem_paths=[pem_path])


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "rsa"},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
        _jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), alg="ES384"),
        _jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), use="enc"),
        _jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), kid=""),
        {**_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()), "x": "AAAA"},
        ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True),
        "not an object",
    ],
    ids=["rsa", "oct", "p384", "alg", "use", "empty-kid", "bad-point", "private", "string"],
)
def test_load_verification_keys_refuses_unusable_jwk(tmp_path: Path, jwk: Any) -> None:
    jwks_path = tmp_path / "jwks.json"
    jwks_path.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")

    with pytest.raises(ValueError, match=r"jwks\.json"):
        load_verification_keys(jwks_path=jwks_path)


@pytest.mark.parametrize("content", ["[]", '{"keys": {}}', "{", '{"nokeys": []}'])
def test_load_verification_keys_refuses_a_malformed_jwks(tmp_path: Path, content: str) -> None:
    jwks_path = tmp_path / "jwks.json"
    jwks_path.write_text(content, encoding="utf-8")

    with pytest.raises(ValueError, match=r"jwks\.json"):
        load_verification_keys(jwks_path=jwks_path)


def test_load_verification_keys_refuses_a_kid_naming_two_keys(tmp_path: Path) -> None:
    jwks_path = _write_jwks(
        tmp_path / "jwks.json",
        _jwk(_p256().public_key(), kid="same"),
        _jwk(_p256().public_key(), kid="same"),
    )

    with pytest.raises(ValueError, match="same"):
        load_verification_keys(jwks_path=jwks_path)


# --- verifier configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"issuer": "", "audience": AUDIENCE},
        {"issuer": ISSUER, "audience": ""},
        {"issuer": ISSUER, "audience": AUDIENCE, "leeway_s": -1},
        {"issuer": ISSUER, "audience": AUDIENCE, "leeway_s": 3600},
        {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": "http://idp.example/jwks.json"},
        {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": "file:///etc/jwks.json"},
    ],
)
def test_verifier_refuses_unsafe_configuration(issuer: TokenIssuer, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        TokenVerifier([issuer.verification_key], **kwargs)


def test_verifier_needs_some_source_of_keys() -> None:
    with pytest.raises(ValueError, match="no verification keys"):
        TokenVerifier([], issuer=ISSUER, audience=AUDIENCE)


def test_verifier_refuses_one_kid_for_two_keys() -> None:
    keys = [VerificationKey("k", _p256().public_key()), VerificationKey("k", _p256().public_key())]

    with pytest.raises(ValueError, match="more than once"):
        TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)


# --- remote key set (JWKS URL) ---------------------------------------------------------------

JWKS_URL = "https://idp.example/.well-known/jwks.json"


def _serve_jwks(
    monkeypatch: pytest.MonkeyPatch, respond: Callable[[], dict[str, Any]]
) -> list[str]:
    """Replace PyJWKClient's HTTP fetch; returns the list of URLs fetched so far."""
    fetched: list[str] = []

    def fetch_data(client: jwt.PyJWKClient) -> dict[str, Any]:
        fetched.append(client.uri)
        return respond()

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch_data)
    return fetched


def test_unknown_kid_is_resolved_through_the_jwks_url_and_cached(
    monkeypatch: pytest.MonkeyPatch, issuer: TokenIssuer
) -> None:
    remote = TokenIssuer(_p256(), issuer=ISSUER, audience=AUDIENCE)
    remote_key = remote.verification_key
    jwks = {"keys": [_jwk(remote_key.public_key, kid=remote_key.kid)]}
    fetched = _serve_jwks(monkeypatch, lambda: jwks)
    verifier = TokenVerifier(
        [issuer.verification_key], issuer=ISSUER, audience=AUDIENCE, jwks_url=JWKS_URL
    )

    def token() -> str:
        return remote.issue(
            tenant_id="beta", roles=[Role.VIEWER], subject="s", ttl_s=60, now=_now()
        )

    assert verifier.verify(token()).tenant_id == "beta"
    assert verifier.verify(token()).tenant_id == "beta"
    assert fetched == [JWKS_URL]


def test_static_keys_do_not_touch_the_jwks_url(
    monkeypatch: pytest.MonkeyPatch, issuer: TokenIssuer
) -> None:
    fetched = _serve_jwks(monkeypatch, lambda: {"keys": []})
    verifier = TokenVerifier(
        [issuer.verification_key], issuer=ISSUER, audience=AUDIENCE, jwks_url=JWKS_URL
    )
    token = issuer.issue(tenant_id="acme", roles=[Role.VIEWER], subject="s", ttl_s=60, now=_now())

    assert verifier.verify(token).tenant_id == "acme"
    assert fetched == []


def test_kid_absent_from_the_jwks_is_refused(
    monkeypatch: pytest.MonkeyPatch, issuer: TokenIssuer
) -> None:
    listed = _p256().public_key()
    _serve_jwks(monkeypatch, lambda: {"keys": [_jwk(listed, kid="listed")]})
    verifier = TokenVerifier([], issuer=ISSUER, audience=AUDIENCE, jwks_url=JWKS_URL)
    token = _sign(_claims(), _p256(), kid="not-listed")

    assert _refused(verifier, token).code == "token_unknown_key"


def test_non_p256_key_from_the_jwks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)}
    _serve_jwks(monkeypatch, lambda: {"keys": [{**rsa_jwk, "kid": "rsa"}]})
    verifier = TokenVerifier([], issuer=ISSUER, audience=AUDIENCE, jwks_url=JWKS_URL)
    token = _sign(_claims(), _p256(), kid="rsa")

    assert _refused(verifier, token).code == "token_unknown_key"


@pytest.mark.parametrize(
    "failure",
    [jwt.PyJWKClientConnectionError("unreachable"), ValueError("bad json"), OSError("reset")],
)
def test_jwks_fetch_failure_is_a_refusal(
    monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    def respond() -> dict[str, Any]:
        raise failure

    _serve_jwks(monkeypatch, respond)
    verifier = TokenVerifier([], issuer=ISSUER, audience=AUDIENCE, jwks_url=JWKS_URL)

    error = _refused(verifier, _sign(_claims(), _p256(), kid="any"))

    assert error.code == "token_unknown_key"
    assert error.__cause__ is failure


# --- issuing: validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"tenant_id": "Acme"},
        {"tenant_id": ""},
        {"tenant_id": "acme\n"},
        {"tenant_id": "a" * 64},
        {"ttl_s": 0},
        {"ttl_s": -5},
        {"ttl_s": 31_536_001},
        {"ttl_s": True},
        {"ttl_s": 1.5},
        {"roles": []},
        {"roles": ["root"]},
        {"subject": ""},
        {"now": datetime(2030, 1, 1)},
    ],
)
def test_issue_refuses_invalid_arguments(issuer: TokenIssuer, overrides: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {
        "tenant_id": "acme",
        "roles": [Role.VIEWER],
        "subject": "s",
        "ttl_s": 60,
        "now": _now(),
    }
    arguments.update(overrides)

    with pytest.raises(ValueError, match=r"tenant_id|ttl_s|role|subject|timezone"):
        issuer.issue(**arguments)


@pytest.mark.parametrize("ttl_s", [1, 31_536_000])
def test_issue_accepts_the_ttl_bounds(
    issuer: TokenIssuer, verifier: TokenVerifier, ttl_s: int
) -> None:
    token = issuer.issue(
        tenant_id="acme", roles=[Role.VIEWER], subject="s", ttl_s=ttl_s, now=_now()
    )

    assert verifier.verify(token).tenant_id == "acme"


def test_issuer_refuses_a_non_p256_key() -> None:
    with pytest.raises(ValueError, match="P-256"):
        TokenIssuer(ec.generate_private_key(ec.SECP384R1()), issuer=ISSUER, audience=AUDIENCE)


def test_public_key_pem_is_spki(signing_key: ec.EllipticCurvePrivateKey) -> None:
    pem = public_key_pem(signing_key.public_key())

    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert serialization.load_pem_public_key(pem) == signing_key.public_key()


# --- the issuer key on disk ------------------------------------------------------------------


def _same_key(a: ec.EllipticCurvePrivateKey, b: ec.EllipticCurvePrivateKey) -> bool:
    return a.private_numbers().private_value == b.private_numbers().private_value


def test_issuer_key_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "keys" / "issuer.pem"

    key = load_or_create_issuer_key(path)

    assert isinstance(key.curve, ec.SECP256R1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    assert sorted(path.parent.iterdir()) == [path]  # no temp file left behind


def test_issuer_key_creation_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "issuer.pem"
    first = load_or_create_issuer_key(path)
    content = path.read_bytes()

    second = load_or_create_issuer_key(path)

    assert _same_key(first, second)
    assert path.read_bytes() == content


def test_existing_issuer_key_is_used_as_is(tmp_path: Path) -> None:
    existing = _p256()
    path = tmp_path / "issuer.pem"
    path.write_bytes(
        existing.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    assert _same_key(load_or_create_issuer_key(path), existing)


def test_concurrent_creation_yields_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "issuer.pem"
    workers = 8
    barrier = threading.Barrier(workers)

    def create() -> ec.EllipticCurvePrivateKey:
        barrier.wait()
        return load_or_create_issuer_key(path)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        keys = [future.result() for future in [pool.submit(create) for _ in range(workers)]]

    on_disk = load_or_create_issuer_key(path)
    assert all(_same_key(key, on_disk) for key in keys)
    assert sorted(path.parent.iterdir()) == [path]


def test_losing_the_creation_race_adopts_the_winners_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "issuer.pem"
    winner = _p256()
    generate = tokens._new_private_key

    def generate_while_another_process_wins() -> ec.EllipticCurvePrivateKey:
        # Another process links its key into place between our existence check and our link.
        path.write_bytes(
            winner.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return generate()

    monkeypatch.setattr(tokens, "_new_private_key", generate_while_another_process_wins)

    assert _same_key(load_or_create_issuer_key(path), winner)
    assert sorted(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "content",
    [
        b"corrupt",
        b"",
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        ),
    ],
    ids=["corrupt", "empty", "p384", "encrypted"],
)
def test_unusable_issuer_key_file_is_refused_and_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "issuer.pem"
    path.write_bytes(content)

    with pytest.raises(ValueError, match=r"issuer\.pem"):
        load_or_create_issuer_key(path)

    assert path.read_bytes() == content
