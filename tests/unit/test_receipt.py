"""Entry receipts (docs/proofs.md sections 5 and 7; design proofs.md 3.4 and 2.G)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import rfc8785

from finance.proofs.checkpoint import CheckpointBody, SignedCheckpoint, body_hash, sign_checkpoint
from finance.proofs.merkle import leaf_hash, verify_inclusion
from finance.proofs.receipt import RECEIPT_TYPE, build_receipt, receipt_json, verify_receipt
from finance.proofs.signatures import TrustedKey, TrustStore
from finance.proofs.signing import Signer
from finance.proofs.state import AuditorState
from finance.proofs.verification import VerificationFailed
from tests.proofs_support import SIGNER_ID, SyntheticLedger
from tests.signers import MemorySigner

Receipt = dict[str, Any]

LEDGER = SyntheticLedger(16)
CP_3 = LEDGER.issue(3)
CP_4 = LEDGER.issue(4)
CP_16 = LEDGER.issue(16)


def trust_of(*signers: Signer) -> TrustStore:
    return TrustStore(TrustedKey(s.key_id, s.alg, s.public_key_spki()) for s in signers)


TRUST = trust_of(LEDGER.signer)
GOOD = LEDGER.receipt(7, CP_16)


def edit(data: bytes, change: Callable[[Receipt], None]) -> bytes:
    receipt: Receipt = json.loads(data)
    change(receipt)
    return rfc8785.dumps(receipt)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def failure(data: bytes, trust: TrustStore = TRUST, **options: Any) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as info:
        verify_receipt(data, trust, **options)
    return info.value


def test_every_entry_has_a_receipt_in_every_checkpoint_that_holds_it() -> None:
    ledger = SyntheticLedger(9)
    trust = trust_of(ledger.signer)
    for size in range(1, 10):
        checkpoint = ledger.issue(size)
        for index in range(size):
            result = verify_receipt(ledger.receipt(index, checkpoint), trust)
            assert result.entry == ledger.bodies[index]
            assert result.entry_hash == ledger.hashes[index]
            assert result.checkpoint == checkpoint


def test_the_receipt_file() -> None:
    receipt = json.loads(GOOD)
    assert rfc8785.dumps(receipt) == GOOD
    assert receipt == receipt_json(
        LEDGER.bodies[7],
        LEDGER.hashes[6],
        7,
        LEDGER.log.inclusion_path(7, 16),
        CP_16,
    )
    assert receipt["type"] == RECEIPT_TYPE == "finance/entry-receipt/v1"
    assert sorted(receipt) == [
        "checkpoint",
        "entry",
        "inclusion_path",
        "leaf_index",
        "prev_hash",
        "type",
    ]
    assert verify_receipt(GOOD, TRUST).summary() == (
        "valid: ledger acme entry 7 (" + LEDGER.bodies[7]["id"] + ") is in checkpoint seq 2 "
        "tree size 16 of finance.test/acme"
    )


def test_build_refuses_a_receipt_that_would_not_verify() -> None:
    path = LEDGER.log.inclusion_path(7, 16)
    body = LEDGER.bodies[7]
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((body, LEDGER.hashes[6], 8, path, CP_16), "entry_id 7 is not leaf_index 8"),
        ((body, LEDGER.hashes[5], 7, path, CP_16), "inclusion proof"),
        ((body, LEDGER.hashes[6], 7, path[:-1], CP_16), "inclusion proof"),
        ((body, LEDGER.hashes[6], 7, path, CP_4), "outside a tree of size 4"),
        (({**body, "memo": 5}, LEDGER.hashes[6], 7, path, CP_16), "entry.memo"),
    ]
    for arguments, reason in cases:
        with pytest.raises(ValueError, match=reason):
            build_receipt(*arguments)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (GOOD.replace(b'"leaf_index":7', b'"leaf_index":7.0'), "parse: non-integer number"),
        (GOOD.replace(b'"leaf_index":7', b'"leaf_index":7,"leaf_index":7'), "parse: duplicate"),
        (GOOD.replace(b'{"checkpoint"', b'{ "checkpoint"'), "parse: input is not RFC 8785"),
        (LEDGER.package(2, 5), "schema: type is 'finance/range-proof/v1'"),
        (b"[]", "schema: type is missing"),
        (
            edit(GOOD, lambda r: r.__setitem__("tree_size", 16)),
            "schema: receipt: missing fields [], unknown fields ['tree_size']",
        ),
        (
            edit(GOOD, lambda r: r["entry"]["postings"][0].__setitem__("amount", 107)),
            "schema: entry.postings[0].amount",
        ),
        (edit(GOOD, lambda r: r.__setitem__("prev_hash", b64(bytes(33)))), "schema: prev_hash"),
        (edit(GOOD, lambda r: r.__setitem__("leaf_index", -1)), "schema: leaf_index"),
        (
            edit(GOOD, lambda r: r.__setitem__("inclusion_path", [b64(bytes(32))] * 65)),
            "schema: inclusion_path has 65 hashes",
        ),
    ],
)
def test_parse_and_schema(data: bytes, reason: str) -> None:
    assert failure(data).reason.startswith(reason)


def test_checkpoint_signature_and_log() -> None:
    assert failure(GOOD, trust_of(MemorySigner(seed=9))).reason == (
        "checkpoint: no checkpoint signature by a trusted key"
    )
    tampered = edit(GOOD, lambda r: r["checkpoint"]["body"].__setitem__("tree_size", 17))
    assert "does not verify" in failure(tampered).reason
    other = edit(GOOD, lambda r: r["entry"].__setitem__("ledger_id", "globex"))
    assert failure(other).reason == (
        "checkpoint: checkpoint origin 'finance.test/acme' is not the log of ledger 'globex'"
    )


def test_tree_size_and_root_come_only_from_the_signed_checkpoint() -> None:
    """The re-labelling attack of design 2.G: RFC 9162 inclusion does not bind the tree size."""
    path = LEDGER.log.inclusion_path(0, 3)
    leaf = leaf_hash(LEDGER.hashes[0])
    verify_inclusion(0, 4, leaf, path, LEDGER.log.root(3))  # the raw algorithm is fooled
    relabelled = receipt_json(LEDGER.bodies[0], LEDGER.genesis, 0, path, CP_4)
    failed = failure(rfc8785.dumps(relabelled))
    assert failed.reason == "inclusion: inclusion proof does not lead to the root"
    honest = receipt_json(LEDGER.bodies[0], LEDGER.genesis, 0, path, CP_3)
    verify_receipt(rfc8785.dumps(honest), TRUST)


def test_wrong_leaf_index() -> None:
    assert failure(edit(GOOD, lambda r: r.__setitem__("leaf_index", 8))).reason == (
        "inclusion: entry_id 7 is not leaf_index 8"
    )

    def renumber(receipt: Receipt) -> None:
        receipt["leaf_index"] = 8
        receipt["entry"]["entry_id"] = 8

    assert failure(edit(GOOD, renumber)).reason == (
        "inclusion: inclusion proof does not lead to the root"
    )
    assert failure(edit(GOOD, lambda r: r.__setitem__("leaf_index", 16))).reason.startswith(
        "inclusion: entry_id 7"
    )


def test_altered_entry_or_prev_hash() -> None:
    changed = edit(GOOD, lambda r: r["entry"].__setitem__("memo", "edited"))
    assert failure(changed).reason == "inclusion: inclusion proof does not lead to the root"
    relinked = edit(GOOD, lambda r: r.__setitem__("prev_hash", b64(LEDGER.hashes[5])))
    assert failure(relinked).reason == "inclusion: inclusion proof does not lead to the root"


def test_the_last_entry_must_be_the_checkpoints_chain_head() -> None:
    previous = CP_16.body
    body = CheckpointBody(
        origin=previous.origin,
        tree_size=16,
        root_hash=previous.root_hash,
        chain_head=hashlib.sha256(b"other head").digest(),
        seq=previous.seq + 1,
        prev_checkpoint=body_hash(previous),
        issued_at=previous.issued_at + timedelta(hours=1),
    )
    dishonest = sign_checkpoint(body, [(SIGNER_ID, LEDGER.signer)])
    receipt = receipt_json(
        LEDGER.bodies[15], LEDGER.hashes[14], 15, LEDGER.log.inclusion_path(15, 16), dishonest
    )
    assert failure(rfc8785.dumps(receipt)).reason == (
        "inclusion: the checkpoint's last entry does not hash to its chain_head"
    )


def test_state_and_freshness() -> None:
    result = verify_receipt(GOOD, TRUST, state=AuditorState())
    assert result.state is not None
    assert result.state.latest(LEDGER.origin) == CP_16
    rollback = failure(LEDGER.receipt(1, CP_4), state=result.state)
    assert rollback.reason.startswith("state: rollback: checkpoint seq 1")

    forged_ledger = SyntheticLedger(16, signer=LEDGER.signer, edit=_memo, edit_at=2)
    for size in (3, 4, 16):
        forged_ledger.issue(size)
    forged = failure(forged_ledger.receipt(7), state=result.state)
    assert forged.reason.startswith("state: equivocation: two different signed checkpoints")
    assert [SignedCheckpoint.from_bytes(doc) for doc in forged.evidence] == [
        CP_16,
        forged_ledger.checkpoints[2],
    ]

    hour = timedelta(hours=1)
    issued = CP_16.body.issued_at
    verify_receipt(GOOD, TRUST, max_age=hour, now=issued)
    assert failure(GOOD, max_age=hour, now=issued + 2 * hour).check == "freshness"


def _memo(body: dict[str, Any]) -> None:
    body["memo"] = "rewritten"
