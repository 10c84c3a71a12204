"""Signatures over the signed objects of the proof formats (checkpoints, range statements, bundle
manifests) and the auditor's trust store (docs/proofs.md 3.2, 3.3 steps 2-3). Pure: no I/O.

Every signed object is signed as `prefix || JCS(object)`, with one domain prefix per object type,
so a signature over one kind of object can never be replayed as another. A verifier takes each
key's algorithm and validity window from its own `TrustStore`, keyed by `key_id`, never from the
signed object: the signature's `alg` field is only checked against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from finance.proofs.chain import rfc3339_utc
from finance.proofs.errors import InvalidProof
from finance.proofs.fields import exact_object, string
from finance.proofs.signing import (
    Algorithm,
    Signer,
    SignerError,
    key_id,
    load_public_key,
    verify_signature,
)
from finance.proofs.strict_json import StrictJsonError, b64decode_strict, b64encode

# C2SP: verifiers SHOULD cap the number of signatures but MUST accept at least 16.
SIGNATURES_MAX: Final = 64
# A signature bigger than this is garbage (ML-DSA-87, the largest we may adopt, is 4627 bytes).
SIGNATURE_BYTES_MAX: Final = 8192

_SIGNATURE_KEYS: Final = frozenset({"signer_id", "key_id", "alg", "sig"})


class SignatureError(InvalidProof):
    """A signature list is malformed, or no trusted signature verifies, or a trusted one fails."""


@dataclass(frozen=True)
class Signature:
    """One signature in the envelope. `alg` is what the package claims: informational only."""

    signer_id: str
    key_id: str
    alg: str
    sig: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "signer_id": self.signer_id,
            "key_id": self.key_id,
            "alg": self.alg,
            "sig": b64encode(self.sig),
        }

    @classmethod
    def from_json(cls, obj: object) -> Signature:
        fields = exact_object(obj, _SIGNATURE_KEYS, "signature")
        try:
            sig = b64decode_strict(fields["sig"])
        except StrictJsonError as exc:
            raise SignatureError(f"signature sig: {exc.reason}") from exc
        if not 0 < len(sig) <= SIGNATURE_BYTES_MAX:
            raise SignatureError("signature sig has an impossible length")
        return cls(
            signer_id=string(fields["signer_id"], "signer_id"),
            key_id=string(fields["key_id"], "key_id"),
            alg=string(fields["alg"], "alg"),
            sig=sig,
        )


def signatures_from_json(obj: object) -> tuple[Signature, ...]:
    if not isinstance(obj, list):
        raise SignatureError("signatures must be a list")
    if len(obj) > SIGNATURES_MAX:
        raise SignatureError(f"more than {SIGNATURES_MAX} signatures")
    return tuple(Signature.from_json(item) for item in obj)


def sign_message(message: bytes, signers: Sequence[tuple[str, Signer]]) -> tuple[Signature, ...]:
    """Sign `message` with each `(signer_id, signer)`; several signers co-sign a key hand-over.

    Each signature is verified before it is returned, so a misconfigured HSM or KMS key (wrong key,
    wrong algorithm, key_id not matching the key) fails here rather than at every auditor."""
    if not signers:
        raise ValueError("signing needs at least one signer")
    signatures = []
    for signer_id, signer in signers:
        spki = signer.public_key_spki()
        if key_id(spki) != signer.key_id:
            raise SignerError(f"signer {signer.key_id} reports a key_id that is not its key's")
        sig = signer.sign(message)
        try:
            valid = verify_signature(signer.alg, spki, message, sig)
        except ValueError as exc:
            raise SignerError(f"signer {signer.key_id}: key does not match {signer.alg}") from exc
        if not valid:
            raise SignerError(f"signer {signer.key_id} produced a signature that does not verify")
        signatures.append(Signature(signer_id, signer.key_id, str(signer.alg), sig))
    return tuple(signatures)


def verify_message(
    message: bytes,
    signatures: Iterable[Signature],
    trust: TrustStore,
    at: datetime,
    what: str,
) -> None:
    """Raise SignatureError unless at least one trusted signature over `message` verifies and
    none fails. `at` is the signed object's own time, checked against each key's window.

    Signatures by keys not in `trust` are ignored (witnesses, other auditors' keys). For a trusted
    key, the algorithm comes from `trust`; a signature whose `alg` field says otherwise, which
    falls outside the key's validity window, or which does not verify rejects the object."""
    verified = 0
    for signature in signatures:
        trusted = trust.get(signature.key_id)
        if trusted is None:
            continue
        if signature.alg != str(trusted.alg):
            raise SignatureError(
                f"key {signature.key_id} is pinned to {trusted.alg}, the {what} signature says "
                f"{signature.alg!r}"
            )
        if not trusted.valid_at(at):
            raise SignatureError(
                f"{what} dated {rfc3339_utc(at)} is outside the validity window of key "
                f"{signature.key_id}"
            )
        if not verify_signature(trusted.alg, trusted.spki, message, signature.sig):
            raise SignatureError(
                f"{what} signature by trusted key {signature.key_id} does not verify"
            )
        verified += 1
    if verified == 0:
        raise SignatureError(f"no {what} signature by a trusted key")


@dataclass(frozen=True)
class TrustedKey:
    """A pinned public key. The validity window is inclusive at both ends; None means open."""

    key_id: str
    alg: Algorithm
    spki: bytes
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def __post_init__(self) -> None:
        if key_id(self.spki) != self.key_id:
            raise ValueError("key_id is not the SHA-256 of the public key's SPKI")
        load_public_key(Algorithm(self.alg), self.spki)  # ValueError if the key is not an `alg` key
        for moment in (self.valid_from, self.valid_to):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("validity window bounds must be timezone-aware")
        if (
            self.valid_from is not None
            and self.valid_to is not None
            and self.valid_from > self.valid_to
        ):
            raise ValueError("valid_from is after valid_to")

    def valid_at(self, moment: datetime) -> bool:
        if self.valid_from is not None and moment < self.valid_from:
            return False
        return self.valid_to is None or moment <= self.valid_to


class TrustStore:
    """The auditor's pinned keys, by key_id. Construction errors are ValueError (a usage problem,
    not an invalid checkpoint)."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self._keys: dict[str, TrustedKey] = {}
        for key in keys:
            if key.key_id in self._keys:
                raise ValueError(f"key {key.key_id} is in the trust store twice")
            self._keys[key.key_id] = key
        if not self._keys:
            raise ValueError("a trust store needs at least one key")

    def get(self, key_id_hex: str) -> TrustedKey | None:
        return self._keys.get(key_id_hex)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[TrustedKey]:
        return iter(self._keys.values())

    @classmethod
    def from_pems(cls, pems: Iterable[tuple[bytes, Algorithm]]) -> TrustStore:
        """`--pubkey key.pem`: PEM "PUBLIC KEY" blocks with the algorithm each is pinned to."""
        return cls(
            TrustedKey(key_id(spki), Algorithm(alg), spki)
            for spki, alg in ((_pem_to_spki(pem), alg) for pem, alg in pems)
        )

    @classmethod
    def from_json(cls, obj: object) -> TrustStore:
        """`--trust trust.json`, already parsed (it is hand-written, so not held to JCS):

        {"keys": [{"key_id": "<hex sha256 SPKI>", "alg": "ed25519",
                   "public_key": "-----BEGIN PUBLIC KEY-----...",
                   "valid_from": "2025-01-01T00:00:00Z" | null, "valid_to": ... | null}]}

        `valid_from` and `valid_to` may be left out; `key_id` must match the key."""
        if not isinstance(obj, dict) or set(obj) != {"keys"} or not isinstance(obj["keys"], list):
            raise ValueError('a trust file is an object {"keys": [...]}')
        keys = []
        for entry in obj["keys"]:
            if not isinstance(entry, dict):
                raise ValueError("each trusted key must be an object")
            required = {"key_id", "alg", "public_key"}
            unknown = set(entry) - required - {"valid_from", "valid_to"}
            if not required <= set(entry) or unknown:
                raise ValueError(f"trusted key needs {sorted(required)}, unknown {sorted(unknown)}")
            pem = entry["public_key"]
            if not isinstance(pem, str) or not isinstance(entry["key_id"], str):
                raise ValueError("public_key and key_id must be strings")
            keys.append(
                TrustedKey(
                    key_id=entry["key_id"],
                    alg=Algorithm(entry["alg"]),
                    spki=_pem_to_spki(pem.encode("ascii")),
                    valid_from=_trust_time(entry.get("valid_from")),
                    valid_to=_trust_time(entry.get("valid_to")),
                )
            )
        return cls(keys)


def _trust_time(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("validity bounds must be RFC 3339 strings or null")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("validity bounds must carry a timezone")
    return moment


def _pem_to_spki(pem: bytes) -> bytes:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError("not a PEM public key") from exc
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
