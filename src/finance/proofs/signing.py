"""Signatures over checkpoints: the signer port, key identifiers and verification
(docs/proofs.md, sections 2.H, 3.2 and 3.7). Pure: no I/O; the signers live in adapters.

Two algorithms, both with one fixed meaning so they cannot be confused with a neighbour:
* `ed25519`: pure RFC 8032 Ed25519 over the message (never Ed25519ph), a 64-byte signature.
* `ecdsa-p256-sha256`: ECDSA on P-256 over SHA-256 of the message, DER-encoded. ECDSA signatures
  are malleable, so they are never used as identifiers; checkpoints chain body hashes instead.

A verifier takes the algorithm and the public key from its own trust file, keyed by `key_id`, never
from the signed package: `verify_signature` therefore wants `alg` from the caller and refuses a key
whose type does not match it, which closes the JWT-style algorithm-confusion hole.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

ED25519_SIGNATURE_BYTES = 64


class Algorithm(StrEnum):
    ED25519 = "ed25519"
    ECDSA_P256_SHA256 = "ecdsa-p256-sha256"


class SignerError(Exception):
    """A signer could not sign or describe its key: HSM or KMS unreachable, wrong PIN, missing or
    wrong key, refused input. The underlying cause is chained (`raise ... from exc`)."""


class Signer(Protocol):
    """The signing port. Implementations keep the private key where it lives (HSM, KMS, a key
    file for development): only signatures and the public key come out."""

    @property
    def alg(self) -> Algorithm: ...

    @property
    def key_id(self) -> str:
        """hex SHA-256 of the public key's DER SubjectPublicKeyInfo (see `key_id`)."""
        ...

    def public_key_spki(self) -> bytes:
        """The public key as DER SubjectPublicKeyInfo."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Sign `message` (not a digest of it); raises SignerError on any failure."""
        ...


def key_id(spki_der: bytes) -> str:
    """RFC 6962's LogID construction, in hex: stable across AWS KMS, Cloud KMS and PKCS#11, which
    all export SPKI."""
    return hashlib.sha256(spki_der).hexdigest()


def load_public_key(
    alg: Algorithm, spki_der: bytes
) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
    """Parse `spki_der` and check it is a key for `alg`; ValueError otherwise."""
    key = _load_spki(spki_der)
    if alg is Algorithm.ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if (
        alg is Algorithm.ECDSA_P256_SHA256
        and isinstance(key, ec.EllipticCurvePublicKey)
        and isinstance(key.curve, ec.SECP256R1)
    ):
        return key
    raise ValueError(f"public key type {type(key).__name__} does not match algorithm {alg}")


def verify_signature(alg: Algorithm, spki_der: bytes, message: bytes, signature: bytes) -> bool:
    """True if `signature` is a valid `alg` signature of `message` by the key `spki_der`.

    A bad signature (wrong key, altered message, garbage bytes) is False, never an exception; a key
    that is not a key for `alg` is a caller error and raises ValueError."""
    key = load_public_key(Algorithm(alg), spki_der)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            if len(signature) != ED25519_SIGNATURE_BYTES:
                return False
            key.verify(signature, message)
        else:
            # OpenSSL accepts only strict DER here, so a re-encoded variant does not verify.
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def public_key_pem(spki_der: bytes) -> str:
    """The SPKI as a PEM "PUBLIC KEY" block, for trust files and operators."""
    pem: bytes = _load_spki(spki_der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def _load_spki(spki_der: bytes) -> PublicKeyTypes:
    try:
        return serialization.load_der_public_key(spki_der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("not a supported DER SubjectPublicKeyInfo public key") from exc
