"""Bearer tokens: ES256 JWTs that carry a tenant and a set of roles.

Only one algorithm (ES256 on P-256) is accepted, and it is pinned before PyJWT sees the token, so
algorithm confusion ("none", HS256 keyed with the public key, ...) cannot reach a key. Every
refusal is a `TokenError` with a stable code; PyJWT's exceptions never escape, and the detail
never echoes attacker-controlled text, so it is safe to return to the client and to log.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeGuard
from urllib.parse import urlparse

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from jwt.types import Options

from finance import limits
from finance.files import publish_new_file

__all__ = [
    "TENANT_ID_PATTERN",
    "Principal",
    "Role",
    "TokenError",
    "TokenIssuer",
    "TokenVerifier",
    "VerificationKey",
    "key_id",
    "load_or_create_issuer_key",
    "load_verification_keys",
    "public_key_pem",
    "role_satisfies",
]

TENANT_ID_PATTERN: Final[str] = r"^[a-z0-9][a-z0-9_-]{0,62}$"
# fullmatch, not match: with match, "$" also matches before a trailing newline ("acme\n").
_TENANT_ID_RE: Final = re.compile(TENANT_ID_PATTERN)

_ALGORITHM: Final = "ES256"
_TTL_MAX_S: Final = limits.TOKEN_TTL_MAX_S
_LEEWAY_MAX_S: Final = limits.TOKEN_LEEWAY_MAX_S
_TOKEN_CHARS_MAX: Final = limits.TOKEN_CHARS_MAX
_SUBJECT_CHARS_MAX: Final = limits.TOKEN_SUBJECT_CHARS_MAX
_JWKS_TIMEOUT_S: Final = limits.JWKS_TIMEOUT_S
_JWKS_LIFESPAN_S: Final = limits.JWKS_LIFESPAN_S
# Compact JWS: three base64url segments; the signature may be empty so that an unsigned
# ("alg": "none") token is reported as a bad algorithm rather than as garbage.
_COMPACT_JWS_RE: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "sub", "tenant", "roles")
_NUMERIC_DATE_CLAIMS: Final = ("exp", "iat", "nbf")


class Role(enum.StrEnum):
    """What a principal may do inside its tenant."""

    VIEWER = "viewer"
    ACCOUNTANT = "accountant"
    ADMIN = "admin"


# Roles are hierarchical: admin implies accountant implies viewer.
_ROLE_RANK: Final[Mapping[Role, int]] = {Role.VIEWER: 0, Role.ACCOUNTANT: 1, Role.ADMIN: 2}
_ROLE_VALUES: Final = frozenset(role.value for role in Role)


def role_satisfies(granted: frozenset[Role], required: Role) -> bool:
    """True if any granted role is `required` or a role above it."""
    return any(_ROLE_RANK[role] >= _ROLE_RANK[required] for role in granted)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as established by a verified token."""

    tenant_id: str
    roles: frozenset[Role]
    subject: str
    token_id: str | None

    def has(self, required: Role) -> bool:
        """True if the principal holds `required` directly or through a higher role."""
        return role_satisfies(self.roles, required)


class TokenError(Exception):
    """A token was refused.

    `code` is stable (clients and metrics key on it); `detail` is safe to show: it never contains
    the token or any other text taken from it.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def _is_p256_public_key(key: object) -> TypeGuard[ec.EllipticCurvePublicKey]:
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key trusted to sign tokens, and the key id that tokens use to name it."""

    kid: str
    public_key: ec.EllipticCurvePublicKey

    def __post_init__(self) -> None:
        # Checked here so that no code path can hand the verifier a key of another curve.
        if not self.kid:
            raise ValueError("a verification key needs a non-empty kid")
        if not _is_p256_public_key(self.public_key):
            raise ValueError(f"verification key {self.kid!r} is not an EC P-256 public key")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint of a P-256 public key (base64url of SHA-256, no padding).

    A thumbprint is derived from the key itself, so issuer and verifier agree on the kid without
    any shared configuration, and a rotated key gets a new kid automatically.
    """
    if not _is_p256_public_key(public_key):
        raise ValueError("key_id only supports EC P-256 public keys")
    numbers = public_key.public_numbers()
    # Required members only, in lexicographic order, no whitespace (RFC 7638 section 3.2).
    canonical = json.dumps(
        {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_key_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM, the format `load_verification_keys` reads."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- loading verification keys ---------------------------------------------------------------


def load_verification_keys(
    *, pem_paths: Sequence[Path] = (), jwks_path: Path | None = None
) -> list[VerificationKey]:
    """Load trusted public keys from SPKI PEM files and/or a JWKS file.

    PEM keys are named by their thumbprint; JWKS keys by their "kid" member (thumbprint if
    absent). Only EC P-256 public keys are accepted; anything else raises ValueError naming the
    file, because a silently skipped key would surface later as unexplained token refusals.
    """
    keys = [_load_pem_key(path) for path in pem_paths]
    if jwks_path is not None:
        keys.extend(_load_jwks_file(jwks_path))
    return _deduplicated(keys)


def _load_pem_key(path: Path) -> VerificationKey:
    try:
        public_key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"{path}: not a PEM SubjectPublicKeyInfo public key") from exc
    if not _is_p256_public_key(public_key):
        kind = type(public_key).__name__
        raise ValueError(f"{path}: only EC P-256 public keys are accepted, found {kind}")
    return VerificationKey(kid=key_id(public_key), public_key=public_key)


def _load_jwks_file(path: Path) -> list[VerificationKey]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON document") from exc
    members = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(members, list):
        raise ValueError(f"{path}: a JWKS must be a JSON object with a 'keys' list")
    return [_jwk_to_key(path, index, member) for index, member in enumerate(members)]


def _jwk_to_key(path: Path, index: int, jwk: object) -> VerificationKey:
    where = f"{path}: key #{index}"
    if not isinstance(jwk, dict):
        raise ValueError(f"{where} is not a JSON object")
    _check_jwk_members(where, jwk)
    try:
        public_key = jwt.PyJWK(jwk, algorithm=_ALGORITHM).key
    except jwt.PyJWTError as exc:
        raise ValueError(f"{where} is not a valid EC P-256 public key") from exc
    if not _is_p256_public_key(public_key):
        raise ValueError(f"{where} is not an EC P-256 public key")
    kid = jwk.get("kid")
    return VerificationKey(kid if isinstance(kid, str) else key_id(public_key), public_key)


def _check_jwk_members(where: str, jwk: dict[str, Any]) -> None:
    """Refuse JWKs we could misuse; error messages never echo member values (may be secret)."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError(f"{where}: only EC P-256 keys are accepted (kty 'EC', crv 'P-256')")
    if "d" in jwk:
        raise ValueError(f"{where}: contains private key material; publish public keys only")
    if jwk.get("alg", _ALGORITHM) != _ALGORITHM:
        raise ValueError(f"{where}: 'alg' must be {_ALGORITHM} when present")
    if jwk.get("use", "sig") != "sig":
        raise ValueError(f"{where}: 'use' must be 'sig' when present")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise ValueError(f"{where}: 'kid' must be a non-empty string when present")


def _deduplicated(keys: list[VerificationKey]) -> list[VerificationKey]:
    """Drop exact repeats; a kid naming two different keys is a configuration error."""
    by_kid: dict[str, VerificationKey] = {}
    for key in keys:
        known = by_kid.setdefault(key.kid, key)
        if known.public_key != key.public_key:
            raise ValueError(f"kid {key.kid!r} is used by two different keys")
    return list(by_kid.values())


# --- verification ----------------------------------------------------------------------------

# Most specific first: several PyJWT exceptions subclass DecodeError.
_PYJWT_ERRORS: Final[tuple[tuple[type[jwt.PyJWTError], str, str], ...]] = (
    (jwt.ExpiredSignatureError, "token_expired", "the token has expired"),
    (jwt.ImmatureSignatureError, "token_not_yet_valid", "the token is not valid yet"),
    (jwt.InvalidIssuerError, "token_bad_issuer", "the token issuer is not accepted"),
    (jwt.InvalidAudienceError, "token_bad_audience", "the token audience is not accepted"),
    (jwt.InvalidSignatureError, "token_bad_signature", "the token signature is invalid"),
    (jwt.InvalidAlgorithmError, "token_bad_algorithm", f"only {_ALGORITHM} tokens are accepted"),
    (jwt.InvalidIssuedAtError, "token_bad_claim", "the 'iat' claim is invalid"),
    (InvalidSubjectError, "token_bad_claim", "the 'sub' claim is invalid"),
    (InvalidJTIError, "token_bad_claim", "the 'jti' claim is invalid"),
    (jwt.InvalidKeyError, "token_unknown_key", "the token key cannot verify ES256 signatures"),
)


def _translate(exc: jwt.PyJWTError) -> TokenError:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        # Only names we asked PyJWT to require are echoed, never text taken from the token.
        claim = exc.claim if exc.claim in _REQUIRED_CLAIMS else "a required"
        return TokenError("token_missing_claim", f"the token is missing the {claim!r} claim")
    for exc_type, code, detail in _PYJWT_ERRORS:
        if isinstance(exc, exc_type):
            return TokenError(code, detail)
    return TokenError("token_malformed", "the token could not be decoded")


def _decode_options() -> Options:
    # A fresh dict per call: PyJWT keeps a reference to the "require" list.
    return {
        "verify_signature": True,
        "verify_exp": True,
        "verify_nbf": True,
        "verify_iat": True,
        "verify_iss": True,
        "verify_aud": True,
        "verify_sub": True,
        "verify_jti": True,
        "require": list(_REQUIRED_CLAIMS),
    }


class TokenVerifier:
    """Turns a bearer token into a `Principal`, or refuses it with a `TokenError`."""

    def __init__(
        self,
        keys: Sequence[VerificationKey],
        *,
        issuer: str,
        audience: str,
        leeway_s: int = 30,
        jwks_url: str | None = None,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("issuer and audience must be non-empty")
        if not 0 <= leeway_s <= _LEEWAY_MAX_S:
            raise ValueError(f"leeway_s must be within 0..{_LEEWAY_MAX_S}, got {leeway_s}")
        if not keys and jwks_url is None:
            raise ValueError("no verification keys configured and no jwks_url to fetch them")
        self._keys = _index_by_kid(keys)
        self._issuer = issuer
        self._audience = audience
        self._leeway = timedelta(seconds=leeway_s)
        self._jwks_client = None if jwks_url is None else _jwks_client(jwks_url)

    def verify(self, token: str) -> Principal:
        """Verify signature and claims; return who the caller is. Raises TokenError only."""
        header = _unverified_header(token)
        if header.get("alg") != _ALGORITHM:
            raise TokenError("token_bad_algorithm", f"only {_ALGORITHM} tokens are accepted")
        public_key = self._select_key(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key=public_key,
                algorithms=[_ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options=_decode_options(),
            )
        except jwt.PyJWTError as exc:
            raise _translate(exc) from exc
        return _principal(claims)

    def _select_key(self, kid: object) -> ec.EllipticCurvePublicKey:
        if kid is None:
            # Without a kid the choice is only unambiguous when a single key is trusted.
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise TokenError("token_unknown_key", "the token names no key id")
        if not isinstance(kid, str):
            raise TokenError("token_malformed", "the token key id is not a string")
        known = self._keys.get(kid)
        return known if known is not None else self._remote_key(kid)

    def _remote_key(self, kid: str) -> ec.EllipticCurvePublicKey:
        if self._jwks_client is None:
            raise TokenError("token_unknown_key", "the token key id is not recognised")
        try:
            # PyJWKClient caches the key set and rate-limits refreshes for unknown kids.
            public_key = self._jwks_client.get_signing_key(kid).key
        except (jwt.PyJWTError, ValueError, OSError) as exc:
            # ValueError/OSError: PyJWKClient lets bad JSON and some socket errors through.
            raise TokenError("token_unknown_key", "the token key id is not in the key set") from exc
        if not _is_p256_public_key(public_key):
            raise TokenError("token_unknown_key", "the token key is not an EC P-256 public key")
        return public_key


def _index_by_kid(keys: Sequence[VerificationKey]) -> dict[str, ec.EllipticCurvePublicKey]:
    index: dict[str, ec.EllipticCurvePublicKey] = {}
    for key in keys:
        if index.setdefault(key.kid, key.public_key) != key.public_key:
            raise ValueError(f"kid {key.kid!r} is configured more than once")
    return index


def _jwks_client(url: str) -> jwt.PyJWKClient:
    # Keys fetched over plain HTTP could be swapped in transit, which would defeat signing.
    if urlparse(url).scheme != "https":
        raise ValueError("jwks_url must be an https:// URL")
    return jwt.PyJWKClient(
        url,
        cache_keys=True,
        cache_jwk_set=True,
        lifespan=_JWKS_LIFESPAN_S,
        timeout=_JWKS_TIMEOUT_S,
    )


def _unverified_header(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or not token.strip():
        raise TokenError("token_missing", "no bearer token was supplied")
    # Checked up front so that oversized or non-ASCII input never reaches the decoder.
    if len(token) > _TOKEN_CHARS_MAX or not _COMPACT_JWS_RE.fullmatch(token):
        raise TokenError("token_malformed", "the token is not a compact JWS")
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _translate(exc) from exc


# --- claims ----------------------------------------------------------------------------------


def _principal(claims: dict[str, Any]) -> Principal:
    """Type-check the claims PyJWT does not know about (or only checks loosely)."""
    for name in _NUMERIC_DATE_CLAIMS:
        _check_numeric_date(claims, name)
    return Principal(
        tenant_id=_tenant(claims.get("tenant")),
        roles=_roles(claims.get("roles")),
        subject=_subject(claims.get("sub")),
        token_id=_token_id(claims.get("jti")),
    )


def _bad_claim(name: str) -> TokenError:
    return TokenError("token_bad_claim", f"the {name!r} claim is invalid")


def _check_numeric_date(claims: dict[str, Any], name: str) -> None:
    # PyJWT accepts anything int() accepts, e.g. the string "9999999999" or True.
    if name not in claims:
        return
    value = claims[name]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value):
        raise _bad_claim(name)


def _tenant(value: object) -> str:
    if not isinstance(value, str) or not _TENANT_ID_RE.fullmatch(value):
        raise _bad_claim("tenant")
    return value


def _roles(value: object) -> frozenset[Role]:
    # An unknown role is refused, not ignored: it means issuer and verifier disagree.
    if not isinstance(value, list) or not value:
        raise _bad_claim("roles")
    if not all(isinstance(role, str) and role in _ROLE_VALUES for role in value):
        raise _bad_claim("roles")
    return frozenset(Role(role) for role in value)


def _subject(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _SUBJECT_CHARS_MAX:
        raise _bad_claim("sub")
    return value


def _token_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _bad_claim("jti")
    return value


# --- issuing ---------------------------------------------------------------------------------


class TokenIssuer:
    """Signs ES256 tokens for the service's own users (tests, CLI, first-party login)."""

    def __init__(
        self, private_key: ec.EllipticCurvePrivateKey, *, issuer: str, audience: str
    ) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ValueError("the issuer key must be an EC P-256 private key")
        if not issuer or not audience:
            raise ValueError("issuer and audience must be non-empty")
        public_key = private_key.public_key()
        self._private_key = private_key
        self._issuer = issuer
        self._audience = audience
        self._verification_key = VerificationKey(kid=key_id(public_key), public_key=public_key)

    @property
    def verification_key(self) -> VerificationKey:
        """The public half, to configure a `TokenVerifier` or publish in a JWKS."""
        return self._verification_key

    def issue(
        self, *, tenant_id: str, roles: Iterable[Role], subject: str, ttl_s: int, now: datetime
    ) -> str:
        """Sign a token valid from `now` for `ttl_s` seconds."""
        issued_at = _issued_at(now)
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": _checked_subject(subject),
            "tenant": _checked_tenant(tenant_id),
            "roles": _checked_roles(roles),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + _checked_ttl(ttl_s),
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self._verification_key.kid, "typ": "JWT"}
        return jwt.encode(claims, self._private_key, algorithm=_ALGORITHM, headers=headers)


def _issued_at(now: datetime) -> int:
    # A naive datetime would be read as local time by .timestamp(), silently shifting validity.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return int(now.timestamp())


def _checked_tenant(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not _TENANT_ID_RE.fullmatch(tenant_id):
        raise ValueError(
            f"tenant_id must be a lowercase slug matching {TENANT_ID_PATTERN}, got {tenant_id!r}"
        )
    return tenant_id


def _checked_roles(roles: Iterable[Role]) -> list[str]:
    try:
        unique = {Role(role) for role in roles}
    except ValueError as exc:
        raise ValueError(f"roles must be among {sorted(_ROLE_VALUES)}") from exc
    if not unique:
        raise ValueError("a token needs at least one role")
    # Sorted by rank so that equal role sets always produce identical claims.
    return [role.value for role in sorted(unique, key=_ROLE_RANK.__getitem__)]


def _checked_subject(subject: str) -> str:
    if not isinstance(subject, str) or not 0 < len(subject) <= _SUBJECT_CHARS_MAX:
        raise ValueError(f"subject must be a string of 1..{_SUBJECT_CHARS_MAX} characters")
    return subject


def _checked_ttl(ttl_s: int) -> int:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= _TTL_MAX_S:
        raise ValueError(f"ttl_s must be an integer within 1..{_TTL_MAX_S}, got {ttl_s!r}")
    return ttl_s


# --- the issuer's private key on disk ------------------------------------------------------


def load_or_create_issuer_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load the issuer's P-256 key (unencrypted PKCS8 PEM), creating it on first start.

    Creation is race-safe across processes: the key is written to a private temp file in the
    same directory and hard-linked into place, which fails rather than overwrites if another
    process got there first. Whoever wins, every caller returns the key that is on disk.
    An existing file is never modified, even if it is unreadable.
    """
    if not path.exists():
        _make_private_dirs(path.parent)
        _publish_new_key(path)
    return _read_private_key(path)


def _new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _make_private_dirs(directory: Path) -> None:
    """Create missing directories with mode 0o700 (os.makedirs applies mode to the leaf only)."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another process created it concurrently
        os.chmod(created, 0o700)  # mkdir's mode is filtered by the umask


def _publish_new_key(path: Path) -> None:
    pem = _new_private_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # False when another process won the race: its key is the one to use.
    publish_new_file(path, pem, mode=0o600)


def _read_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # TypeError: the key is encrypted; only unencrypted PKCS8 is supported.
        raise ValueError(f"{path}: not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path}: the issuer key must be an EC P-256 private key")
    return key
