"""docs/proofs.md sections 4 to 8 specify the proof files byte for byte: building them from the
document's formulas, with hashlib, base64, an RFC 8785 encoder and an Ed25519 key, gives the
bytes finance.proofs writes."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ed25519

from finance.proofs import range as range_proof
from finance.proofs import receipt, state, verification
from finance.proofs.state import AuditorState
from tests.proofs_support import NAMESPACE, SIGNER_ID, SyntheticLedger

DOC = Path(__file__).resolve().parents[2] / "docs" / "proofs.md"
LEDGER = SyntheticLedger(37)  # signed by MemorySigner(seed=0), the key below
SIGNING_KEY = ed25519.Ed25519PrivateKey.from_private_bytes((0).to_bytes(32, "big"))
CHECKPOINT = LEDGER.issue(37)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """Section 4, as written: RFC 9162 MTH by recursion."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1 SUBPROOF, as the design note writes it."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def frontier(start: int, leaves: list[bytes]) -> list[bytes]:
    """The perfect subtrees for the set bits of start, largest first."""
    roots, position = [], 0
    for level in reversed(range(start.bit_length())):
        if start >> level & 1:
            roots.append(mth(leaves[position : position + (1 << level)]))
            position += 1 << level
    return roots


def signature(message: bytes) -> dict[str, Any]:
    key_id = hashlib.sha256(LEDGER.signer.public_key_spki()).hexdigest()
    return {
        "signer_id": SIGNER_ID,
        "key_id": key_id,
        "alg": "ed25519",
        "sig": b64(SIGNING_KEY.sign(message)),
    }


def documented_package(start: int, end: int) -> bytes:
    bodies = LEDGER.bodies
    created_at = "2026-01-01T08:00:00.000000Z"
    genesis = {"ledger_id": "acme", "created_at": created_at}
    hashes, prev = [], sha256(b"finance/genesis/v1\n" + rfc8785.dumps(genesis))
    for body in bodies:
        prev = sha256(b"finance/entry/v1\n" + prev + rfc8785.dumps(body))
        hashes.append(prev)
    leaves = [sha256(b"\x00" + h) for h in hashes]
    size = len(leaves)
    checkpoint = CHECKPOINT.to_json()
    statement = {
        "type": "finance/range/v1",
        "ledger_id": "acme",
        "start_id": start,
        "end_id": end,
        "count": end - start + 1,
        "start_prev_hash": b64(
            sha256(b"finance/genesis/v1\n" + rfc8785.dumps(genesis))
            if start == 0
            else hashes[start - 1]
        ),
        "end_hash": b64(hashes[end]),
        "checkpoint": {"seq": 0, "tree_size": size, "root_hash": b64(mth(leaves))},
        "generated_at": checkpoint["body"]["issued_at"],
        "package_id": str(uuid.uuid5(NAMESPACE, f"acme/{start}/{end}/0")),
        "genesis": genesis if start == 0 else None,
    }
    return rfc8785.dumps(
        {
            "type": "finance/range-proof/v1",
            "statement": statement,
            "statement_signatures": [signature(b"finance/range/v1\n" + rfc8785.dumps(statement))],
            "entries": bodies[start : end + 1],
            "left_frontier": [b64(h) for h in frontier(start, leaves)],
            "consistency": [b64(h) for h in subproof(end + 1, leaves, True)],
            "checkpoint": checkpoint,
        }
    )


@pytest.mark.parametrize(("start", "end"), [(0, 36), (0, 4), (5, 20), (12, 36), (36, 36)])
def test_a_range_package_is_as_documented(start: int, end: int) -> None:
    assert LEDGER.package(start, end, CHECKPOINT) == documented_package(start, end)


def test_a_receipt_is_as_documented() -> None:
    leaves = [sha256(b"\x00" + h) for h in LEDGER.hashes]
    documented = rfc8785.dumps(
        {
            "type": "finance/entry-receipt/v1",
            "entry": LEDGER.bodies[21],
            "prev_hash": b64(LEDGER.hashes[20]),
            "leaf_index": 21,
            "inclusion_path": [b64(h) for h in path(21, leaves)],
            "checkpoint": CHECKPOINT.to_json(),
        }
    )
    assert LEDGER.receipt(21, CHECKPOINT) == documented


def test_a_state_file_is_as_documented() -> None:
    documented = rfc8785.dumps(
        {
            "type": "finance/auditor-state/v1",
            "checkpoints": {"finance.test/acme": CHECKPOINT.to_json()},
        }
    )
    assert AuditorState().advance(CHECKPOINT).to_bytes() == documented


def test_the_checkpoint_signature_is_as_documented() -> None:
    body = CHECKPOINT.to_json()["body"]
    message = b"finance/checkpoint/v1\n" + rfc8785.dumps(body)
    assert CHECKPOINT.to_json()["signatures"] == [signature(message)]


@pytest.mark.parametrize(
    ("module", "section"),
    [(range_proof, "5"), (receipt, "6"), (state, "7"), (verification, "8")],
)
def test_the_modules_cite_sections_that_exist(module: Any, section: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    cited = re.search(r"docs/proofs\.md\s+section (\d+)", module.__doc__ or "")
    assert cited is not None
    assert cited.group(1) == section
    assert re.search(rf"^## {section}\. ", text, re.MULTILINE)


def test_the_document_names_every_type_and_prefix() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in (
        '"finance/range/v1\\n"',
        "finance/range-proof/v1",
        "finance/entry-receipt/v1",
        "finance/auditor-state/v1",
        '"finance/checkpoint/v1\\n"',
    ):
        assert name in text, name
    assert range_proof.RANGE_PREFIX == b"finance/range/v1\n"
    assert range_proof.PACKAGE_TYPE == "finance/range-proof/v1"
    assert receipt.RECEIPT_TYPE == "finance/entry-receipt/v1"
    assert state.STATE_TYPE == "finance/auditor-state/v1"
    for check in ("parse", "schema", "checkpoint", "statement", "expect", "range", "chain",
                  "merkle", "inclusion", "state", "freshness"):  # fmt: skip
        assert f"| `{check}` |" in text, check
