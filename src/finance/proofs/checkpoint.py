"""Signed checkpoints and the rules that chain them (docs/proofs.md 3.2, 3.3 step 2, 3.5 and 5).
Pure: no I/O; callers read files and hand over bytes or parsed objects.

    signing_bytes(body) = "finance/checkpoint/v1\\n" || JCS(body)
    body_hash(body)     = SHA-256(signing_bytes(body))      the next checkpoint's prev_checkpoint

Signatures are never chained (ECDSA signatures are malleable); bodies are. Signing and the
trust store are in `signatures.py`, shared with the other signed objects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from finance.proofs.chain import rfc3339_utc
from finance.proofs.errors import InvalidProof
from finance.proofs.fields import exact_object, hash32, integer, reraise_as, string, timestamp
from finance.proofs.signatures import (
    Signature,
    TrustStore,
    sign_message,
    signatures_from_json,
    verify_message,
)
from finance.proofs.signing import Signer
from finance.proofs.strict_json import (
    HASH_BYTES,
    JSON_INT_MAX,
    b64encode,
    canonical_dumps,
    loads_strict,
)

CHECKPOINT_TYPE: Final = "finance/checkpoint/v1"
CHECKPOINT_PREFIX: Final = b"finance/checkpoint/v1\n"

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


class CheckpointError(InvalidProof):
    """A checkpoint, its signatures or its link to the previous one did not verify."""


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
        with reraise_as(CheckpointError):
            fields = exact_object(obj, _BODY_KEYS, "checkpoint body")
            if fields["type"] != CHECKPOINT_TYPE:
                raise CheckpointError(f"checkpoint type must be {CHECKPOINT_TYPE!r}")
            prev = fields["prev_checkpoint"]
            try:
                return cls(
                    origin=string(fields["origin"], "origin"),
                    tree_size=integer(fields["tree_size"], "tree_size"),
                    root_hash=hash32(fields["root_hash"], "root_hash"),
                    chain_head=hash32(fields["chain_head"], "chain_head"),
                    seq=integer(fields["seq"], "seq"),
                    prev_checkpoint=None if prev is None else hash32(prev, "prev_checkpoint"),
                    issued_at=timestamp(fields["issued_at"], "issued_at"),
                )
            except ValueError as exc:
                raise CheckpointError(f"invalid checkpoint body: {exc}") from exc


def signing_bytes(body: CheckpointBody) -> bytes:
    return CHECKPOINT_PREFIX + canonical_dumps(body.to_json())


def body_hash(body: CheckpointBody) -> bytes:
    """What the next checkpoint's `prev_checkpoint` holds."""
    return hashlib.sha256(signing_bytes(body)).digest()


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
        return canonical_dumps(self.to_json())

    @classmethod
    def from_json(cls, obj: object) -> SignedCheckpoint:
        with reraise_as(CheckpointError):
            fields = exact_object(obj, frozenset({"body", "signatures"}), "signed checkpoint")
            return cls(
                body=CheckpointBody.from_json(fields["body"]),
                signatures=signatures_from_json(fields["signatures"]),
            )

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedCheckpoint:
        """Strict parse (canonical JSON, no floats, no duplicate keys) then schema check."""
        with reraise_as(CheckpointError):
            return cls.from_json(loads_strict(data))


def sign_checkpoint(
    body: CheckpointBody, signers: Sequence[tuple[str, Signer]]
) -> SignedCheckpoint:
    """Sign `body` with each `(signer_id, signer)` (see signatures.sign_message)."""
    return SignedCheckpoint(body, sign_message(signing_bytes(body), signers))


def verify_checkpoint(signed: SignedCheckpoint, trust: TrustStore) -> None:
    """Raise CheckpointError unless at least one trusted signature verifies and none fails
    (signatures.verify_message), each key's window checked against `issued_at`."""
    with reraise_as(CheckpointError):
        verify_message(
            signing_bytes(signed.body),
            signed.signatures,
            trust,
            signed.body.issued_at,
            "checkpoint",
        )


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
    if current.issued_at <= previous.issued_at:
        # proofs.md 3.3 step 8: strictly increasing, so a replayed or re-dated checkpoint shows.
        raise CheckpointError("issued_at did not increase")


def equivocation(a: CheckpointBody, b: CheckpointBody) -> bool:
    """True if two checkpoints of one origin cannot both be honest: the same tree_size with a
    different root or chain head, or two different bodies for the same seq (a forked checkpoint
    chain). With both validly signed, the pair is evidence of misbehaviour."""
    if a.origin != b.origin:
        return False
    if a.tree_size == b.tree_size and (a.root_hash != b.root_hash or a.chain_head != b.chain_head):
        return True
    return a.seq == b.seq and a != b
