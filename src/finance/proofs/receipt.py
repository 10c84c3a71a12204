"""Entry receipts: one entry, proven to be leaf `leaf_index` of a signed checkpoint's tree
(docs/proofs.md section 6). Pure. A receipt verifies on its own, offline, with only the
auditor's pinned keys.

    receipt file = JCS({type, entry, prev_hash, leaf_index, inclusion_path, checkpoint})
    hash         = SHA-256("finance/entry/v1\\n" || prev_hash || JCS(entry))
    leaf         = SHA-256(0x00 || hash), included at leaf_index in the checkpoint's tree

The tree size and root are taken only from the verified checkpoint, never from the receipt:
the RFC 9162 inclusion algorithm does not bind the size, and a proof for index 0 in a tree of 3
also verifies when re-labelled as a tree of 4 against the size-3 root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from finance.limits import RECEIPT_BYTES_MAX
from finance.proofs.chain import chain_hash_of_canonical
from finance.proofs.checkpoint import SignedCheckpoint, verify_checkpoint
from finance.proofs.entry_schema import check_entry_body
from finance.proofs.errors import InvalidProof
from finance.proofs.fields import exact_object, hash32, hash_list, integer
from finance.proofs.merkle import PROOF_HASHES_MAX, leaf_hash, verify_inclusion
from finance.proofs.signatures import TrustStore
from finance.proofs.state import AuditorState
from finance.proofs.strict_json import b64encode, canonical_dumps, loads_strict
from finance.proofs.verification import VerificationFailed, check_freshness, step

RECEIPT_TYPE: Final = "finance/entry-receipt/v1"
_RECEIPT_KEYS: Final = frozenset(
    {"type", "entry", "prev_hash", "leaf_index", "inclusion_path", "checkpoint"}
)


@dataclass(frozen=True)
class ReceiptVerified:
    """A receipt that passed every check; `state` is the auditor state to save, if given."""

    entry: dict[str, Any]
    entry_hash: bytes
    checkpoint: SignedCheckpoint
    state: AuditorState | None

    def summary(self) -> str:
        body = self.checkpoint.body
        return (
            f"valid: ledger {self.entry['ledger_id']} entry {self.entry['entry_id']} "
            f"({self.entry['id']}) is in checkpoint seq {body.seq} tree size {body.tree_size} "
            f"of {body.origin}"
        )


def receipt_json(
    entry_body: dict[str, Any],
    prev_hash: bytes,
    leaf_index: int,
    inclusion_path: Sequence[bytes],
    signed_checkpoint: SignedCheckpoint,
) -> dict[str, Any]:
    """The receipt as a JSON value, for an API that embeds it; its JCS is `build_receipt`."""
    return {
        "type": RECEIPT_TYPE,
        "entry": entry_body,
        "prev_hash": b64encode(prev_hash),
        "leaf_index": leaf_index,
        "inclusion_path": [b64encode(h) for h in inclusion_path],
        "checkpoint": signed_checkpoint.to_json(),
    }


def build_receipt(
    entry_body: dict[str, Any],
    prev_hash: bytes,
    leaf_index: int,
    inclusion_path: Sequence[bytes],
    signed_checkpoint: SignedCheckpoint,
) -> bytes:
    """The receipt file (JCS bytes). Checked as a verifier would, short of signatures, so a
    wrong path or entry is a ValueError here and never reaches a client."""
    try:
        _check_included(
            check_entry_body(entry_body, "entry"),
            canonical_dumps(entry_body),
            prev_hash,
            leaf_index,
            list(inclusion_path),
            signed_checkpoint,
        )
    except InvalidProof as exc:
        raise ValueError(f"cannot build a valid receipt: {exc.reason}") from exc
    return canonical_dumps(
        receipt_json(entry_body, prev_hash, leaf_index, inclusion_path, signed_checkpoint)
    )


def verify_receipt(
    data: bytes,
    trust: TrustStore,
    *,
    state: AuditorState | None = None,
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> ReceiptVerified:
    """Every check of docs/proofs.md section 8 that applies to a receipt: parse, schema,
    checkpoint signature, inclusion, then state and freshness if asked for."""
    if max_age is not None and now is None:
        raise ValueError("max_age needs now")
    if not isinstance(data, bytes):
        raise TypeError("a receipt is bytes")
    if len(data) > RECEIPT_BYTES_MAX:
        raise VerificationFailed("parse", f"receipt is larger than {RECEIPT_BYTES_MAX} bytes")
    with step("parse"):
        parsed = loads_strict(data)
    with step("schema"):
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        if kind != RECEIPT_TYPE:
            shown = repr(kind) if isinstance(kind, str) and len(kind) <= 64 else "missing"
            raise InvalidProof(f"type is {shown}, expected {RECEIPT_TYPE!r}")
        fields = exact_object(parsed, _RECEIPT_KEYS, "receipt")
        entry = check_entry_body(fields["entry"], "entry")
        prev_hash = hash32(fields["prev_hash"], "prev_hash")
        leaf_index = integer(fields["leaf_index"], "leaf_index")
        path = hash_list(fields["inclusion_path"], "inclusion_path", PROOF_HASHES_MAX)
        checkpoint = SignedCheckpoint.from_json(fields["checkpoint"])
    with step("checkpoint"):
        verify_checkpoint(checkpoint, trust)
    entry_hash = _check_included(
        entry, canonical_dumps(entry), prev_hash, leaf_index, path, checkpoint
    )
    new_state = None
    if state is not None:
        with step("state"):
            new_state = state.advance(checkpoint)
    if max_age is not None and now is not None:
        check_freshness(checkpoint.body, now, max_age)
    return ReceiptVerified(entry, entry_hash, checkpoint, new_state)


def _check_included(
    entry: dict[str, Any],
    entry_jcs: bytes,
    prev_hash: bytes,
    leaf_index: int,
    path: list[bytes],
    checkpoint: SignedCheckpoint,
) -> bytes:
    """The entry is leaf `leaf_index` of the checkpoint's tree; returns its chain hash."""
    body = checkpoint.body
    if not body.origin.endswith("/" + entry["ledger_id"]):
        raise VerificationFailed(
            "checkpoint",
            f"checkpoint origin {body.origin!r} is not the log of ledger {entry['ledger_id']!r}",
        )
    if entry["entry_id"] != leaf_index:
        raise VerificationFailed(
            "inclusion", f"entry_id {entry['entry_id']} is not leaf_index {leaf_index}"
        )
    entry_hash = chain_hash_of_canonical(prev_hash, entry_jcs)
    with step("inclusion"):
        # Size and root from the signed checkpoint only (see the module doc).
        verify_inclusion(leaf_index, body.tree_size, leaf_hash(entry_hash), path, body.root_hash)
    if leaf_index == body.tree_size - 1 and entry_hash != body.chain_head:
        raise VerificationFailed(
            "inclusion", "the checkpoint's last entry does not hash to its chain_head"
        )
    return entry_hash
