"""Authentication: ES256 bearer tokens that name a tenant and the caller's roles."""

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
