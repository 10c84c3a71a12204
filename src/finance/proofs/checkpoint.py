"""Signed checkpoints, their trust store and the rules that chain them (docs/proofs.md 3.2, 3.3
step 2, 3.5 and 5). Pure: no I/O; callers read files and hand over bytes or parsed objects.

    signing_bytes(body) = "finance/checkpoint/v1\\n" || JCS(body)
    body_hash(body)     = SHA-256(signing_bytes(body))      the next checkpoint's prev_checkpoint

Signatures are never chained (ECDSA signatures are malleable); bodies are. A verifier takes each
key's algorithm and validity window from its own `TrustStore`, keyed by `key_id`, never from the
package: the signature's `alg` field is only checked against it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import rfc8785
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from finance.proofs.chain import rfc3339_utc
from finance.proofs.signing import (
    Algorithm,
    Signer,
    SignerError,
    key_id,
    load_public_key,
    verify_signature,
)
from finance.proofs.strict_json import (
    HASH_BYTES,
    JSON_INT_MAX,
    StrictJsonError,
    b64decode_hash,
    b64decode_strict,
    b64encode,
    loads_strict,
)

CHECKPOINT_TYPE: Final = "finance/checkpoint/v1"
CHECKPOINT_PREFIX: Final = b"finance/checkpoint/v1\n"
# C2SP: verifiers SHOULD cap the number of signatures but MUST accept at least 16.
SIGNATURES_MAX: Final = 64
# A signature bigger than this is garbage (ML-DSA-87, the largest we may adopt, is 4627 bytes).
SIGNATURE_BYTES_MAX: Final = 8192

_BODY_KEYS: Final = frozenset(
    {
        "type",
        "origin",
        "tree_size",
        "root_hash",
        "chain_head",
        "seq",
        "prev_checkpoint",
        "issued_at",
    }
)
_SIGNATURE_KEYS: Final = frozenset({"signer_id", "key_id", "alg", "sig"})
_RFC3339_MICROS: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


class CheckpointError(Exception):
    """A checkpoint, its signatures or its link to the previous one did not verify."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckpointBody:
    """What is signed. `prev_checkpoint` is None exactly for seq 0; `issued_at` is tz-aware."""

    origin: str
    tree_size: int
    root_hash: bytes
    chain_head: bytes
    seq: int
    prev_checkpoint: bytes | None
    issued_at: datetime

    def __post_init__(self) -> None:
        if not self.origin:
            raise ValueError("origin must be a non-empty string")
        for name, number in (("tree_size", self.tree_size), ("seq", self.seq)):
            if not 0 <= number <= JSON_INT_MAX:
                raise ValueError(f"{name} must be in [0, 2^53 - 1], got {number}")
        for name, value in (("root_hash", self.root_hash), ("chain_head", self.chain_head)):
            if len(value) != HASH_BYTES:
                raise ValueError(f"{name} must be {HASH_BYTES} bytes")
        if (self.seq == 0) != (self.prev_checkpoint is None):
            raise ValueError("prev_checkpoint must be null for seq 0 and a hash otherwise")
        if self.prev_checkpoint is not None and len(self.prev_checkpoint) != HASH_BYTES:
            raise ValueError(f"prev_checkpoint must be {HASH_BYTES} bytes")
        if self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": CHECKPOINT_TYPE,
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": b64encode(self.root_hash),
            "chain_head": b64encode(self.chain_head),
            "seq": self.seq,
            "prev_checkpoint": (
                None if self.prev_checkpoint is None else b64encode(self.prev_checkpoint)
            ),
            "issued_at": rfc3339_utc(self.issued_at),
        }

    @classmethod
    def from_json(cls, obj: object) -> CheckpointBody:
        """Schema-check a parsed body; CheckpointError on any deviation."""
        fields = _exact_object(obj, _BODY_KEYS, "checkpoint body")
        if fields["type"] != CHECKPOINT_TYPE:
            raise CheckpointError(f"checkpoint type must be {CHECKPOINT_TYPE!r}")
        prev = fields["prev_checkpoint"]
        try:
            return cls(
                origin=_string(fields["origin"], "origin"),
                tree_size=_integer(fields["tree_size"], "tree_size"),
                root_hash=_hash(fields["root_hash"], "root_hash"),
                chain_head=_hash(fields["chain_head"], "chain_head"),
                seq=_integer(fields["seq"], "seq"),
                prev_checkpoint=None if prev is None else _hash(prev, "prev_checkpoint"),
                issued_at=_timestamp(fields["issued_at"], "issued_at"),
            )
        except ValueError as exc:
            raise CheckpointError(f"invalid checkpoint body: {exc}") from exc


def signing_bytes(body: CheckpointBody) -> bytes:
    return CHECKPOINT_PREFIX + rfc8785.dumps(body.to_json())


def body_hash(body: CheckpointBody) -> bytes:
    """What the next checkpoint's `prev_checkpoint` holds."""
    return hashlib.sha256(signing_bytes(body)).digest()


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
        fields = _exact_object(obj, _SIGNATURE_KEYS, "signature")
        try:
            sig = b64decode_strict(fields["sig"])
        except StrictJsonError as exc:
            raise CheckpointError(f"signature sig: {exc.reason}") from exc
        if not 0 < len(sig) <= SIGNATURE_BYTES_MAX:
            raise CheckpointError("signature sig has an impossible length")
        return cls(
            signer_id=_string(fields["signer_id"], "signer_id"),
            key_id=_string(fields["key_id"], "key_id"),
            alg=_string(fields["alg"], "alg"),
            sig=sig,
        )


@dataclass(frozen=True)
class SignedCheckpoint:
    body: CheckpointBody
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "body": self.body.to_json(),
            "signatures": [signature.to_json() for signature in self.signatures],
        }

    def to_bytes(self) -> bytes:
        """The envelope as RFC 8785 bytes, the form it is stored and shipped in."""
        return rfc8785.dumps(self.to_json())

    @classmethod
    def from_json(cls, obj: object) -> SignedCheckpoint:
        fields = _exact_object(obj, frozenset({"body", "signatures"}), "signed checkpoint")
        signatures = fields["signatures"]
        if not isinstance(signatures, list):
            raise CheckpointError("signatures must be a list")
        if len(signatures) > SIGNATURES_MAX:
            raise CheckpointError(f"more than {SIGNATURES_MAX} signatures")
        return cls(
            body=CheckpointBody.from_json(fields["body"]),
            signatures=tuple(Signature.from_json(item) for item in signatures),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedCheckpoint:
        """Strict parse (canonical JSON, no floats, no duplicate keys) then schema check."""
        try:
            parsed = loads_strict(data)
        except StrictJsonError as exc:
            raise CheckpointError(f"signed checkpoint: {exc.reason}") from exc
        return cls.from_json(parsed)


def sign_checkpoint(
    body: CheckpointBody, signers: Sequence[tuple[str, Signer]]
) -> SignedCheckpoint:
    """Sign `body` with each `(signer_id, signer)`; several signers co-sign a key hand-over.

    Each signature is verified before it is returned, so a misconfigured HSM or KMS key (wrong key,
    wrong algorithm, key_id not matching the key) fails here rather than at every auditor."""
    if not signers:
        raise ValueError("sign_checkpoint needs at least one signer")
    message = signing_bytes(body)
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
    return SignedCheckpoint(body, tuple(signatures))


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


def verify_checkpoint(signed: SignedCheckpoint, trust: TrustStore) -> None:
    """Raise CheckpointError unless at least one trusted signature verifies and none fails.

    Signatures by keys not in `trust` are ignored (witnesses, other auditors' keys). For a trusted
    key, the algorithm comes from `trust`; a signature whose `alg` field says otherwise, which
    falls outside the key's validity window, or which does not verify rejects the checkpoint."""
    message = signing_bytes(signed.body)
    verified = 0
    for signature in signed.signatures:
        trusted = trust.get(signature.key_id)
        if trusted is None:
            continue
        if signature.alg != str(trusted.alg):
            raise CheckpointError(
                f"key {signature.key_id} is pinned to {trusted.alg}, the signature says "
                f"{signature.alg!r}"
            )
        if not trusted.valid_at(signed.body.issued_at):
            raise CheckpointError(
                f"checkpoint issued at {rfc3339_utc(signed.body.issued_at)} is outside the "
                f"validity window of key {signature.key_id}"
            )
        if not verify_signature(trusted.alg, trusted.spki, message, signature.sig):
            raise CheckpointError(f"signature by trusted key {signature.key_id} does not verify")
        verified += 1
    if verified == 0:
        raise CheckpointError("no signature by a trusted key")


def verify_checkpoint_chain(previous: CheckpointBody, current: CheckpointBody) -> None:
    """Raise CheckpointError unless `current` directly follows `previous` (proofs.md 3.5).

    This checks the bodies only; the RFC 9162 consistency proof between the two roots is checked
    separately (merkle.verify_consistency) whenever the tree grew."""
    if current.origin != previous.origin:
        raise CheckpointError("checkpoints are for different origins")
    if current.seq != previous.seq + 1:
        raise CheckpointError(f"seq {current.seq} does not follow {previous.seq}")
    if current.prev_checkpoint != body_hash(previous):
        raise CheckpointError("prev_checkpoint is not the hash of the previous checkpoint body")
    if current.tree_size < previous.tree_size:
        raise CheckpointError(f"tree_size shrank from {previous.tree_size} to {current.tree_size}")
    if current.tree_size == previous.tree_size and (
        current.root_hash != previous.root_hash or current.chain_head != previous.chain_head
    ):
        raise CheckpointError("same tree_size with a different root_hash or chain_head")
    if current.issued_at < previous.issued_at:
        raise CheckpointError("issued_at went backwards")


def equivocation(a: CheckpointBody, b: CheckpointBody) -> bool:
    """True if two checkpoints of one origin cannot both be honest: the same tree_size with a
    different root or chain head, or two different bodies for the same seq (a forked checkpoint
    chain). With both validly signed, the pair is evidence of misbehaviour."""
    if a.origin != b.origin:
        return False
    if a.tree_size == b.tree_size and (a.root_hash != b.root_hash or a.chain_head != b.chain_head):
        return True
    return a.seq == b.seq and a != b


def _exact_object(obj: object, keys: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what} must be a JSON object")
    if set(obj) != keys:
        missing = sorted(keys - set(obj))
        unknown = sorted(set(obj) - keys)
        raise CheckpointError(f"{what}: missing fields {missing}, unknown fields {unknown}")
    return obj


def _string(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise CheckpointError(f"{name} must be a non-empty string")
    return value


def _integer(value: object, name: str) -> int:
    # bool is a subclass of int, and `true` must not pass for 1.
    if type(value) is not int:
        raise CheckpointError(f"{name} must be a JSON integer")
    return value


def _hash(value: object, name: str) -> bytes:
    try:
        return b64decode_hash(value)
    except StrictJsonError as exc:
        raise CheckpointError(f"{name}: {exc.reason}") from exc


def _timestamp(value: object, name: str) -> datetime:
    """Only the exact form `rfc3339_utc` writes: microseconds and Z."""
    if not isinstance(value, str):
        raise CheckpointError(f"{name} must be a string")
    try:
        moment = datetime.strptime(value, _RFC3339_MICROS).replace(tzinfo=UTC)
    except ValueError as exc:
        raise CheckpointError(f"{name} is not YYYY-MM-DDTHH:MM:SS.ffffffZ") from exc
    if rfc3339_utc(moment) != value:
        raise CheckpointError(f"{name} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    return moment


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
