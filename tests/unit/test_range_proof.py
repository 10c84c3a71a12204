"""Range proof packages: building, every verifier step, and the tamper corpus of the issue
(docs/proofs.md sections 4 and 7; design proofs.md 3.3 and 5)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import rfc8785

from finance.proofs import range as range_proof
from finance.proofs.checkpoint import CheckpointBody, SignedCheckpoint, body_hash, sign_checkpoint
from finance.proofs.range import (
    PACKAGE_TYPE,
    RANGE_PREFIX,
    build_range_package,
    statement_signing_bytes,
    verify_range_package,
)
from finance.proofs.signatures import TrustedKey, TrustStore, sign_message
from finance.proofs.signing import Signer
from finance.proofs.state import AuditorState
from finance.proofs.strict_json import loads_strict
from finance.proofs.verification import VerificationFailed
from tests.proofs_support import (
    CREATED_AT,
    NAMESPACE,
    SIGNER_ID,
    SyntheticLedger,
)
from tests.signers import MemorySigner

Package = dict[str, Any]

LEDGER = SyntheticLedger(64)
CP_SMALL = LEDGER.issue(24)  # seq 0
CP_FULL = LEDGER.issue(64)  # seq 1
ATTACKER = MemorySigner(seed=666)


def rewrite(body: dict[str, Any]) -> None:
    for posting in body["postings"]:
        posting["amount"] = "999999"


# The same ledger with entry 10 rewritten and every later hash recomputed, re-signed with the
# real key under the same seq numbers: what an operator holding the key could produce.
REWRITTEN = SyntheticLedger(64, signer=LEDGER.signer, edit=rewrite, edit_at=10)
REWRITTEN.issue(24)
REWRITTEN.issue(64)


def trust_of(*signers: Signer) -> TrustStore:
    return TrustStore(TrustedKey(s.key_id, s.alg, s.public_key_spki()) for s in signers)


TRUST = trust_of(LEDGER.signer)


def edit(data: bytes, change: Callable[[Package], None]) -> bytes:
    """Change the parsed package and write it back as canonical JSON, so that only the
    change itself can be caught, not the re-encoding."""
    package: Package = json.loads(data)
    change(package)
    return rfc8785.dumps(package)


def resign(package: Package, signer: Signer = LEDGER.signer) -> None:
    """Sign the (edited) statement again: an insider with the key, or a buggy exporter."""
    message = RANGE_PREFIX + rfc8785.dumps(package["statement"])
    signatures = sign_message(message, [(SIGNER_ID, signer)])
    package["statement_signatures"] = [s.to_json() for s in signatures]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def failure(data: bytes, trust: TrustStore = TRUST, **options: Any) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as info:
        verify_range_package(data, trust, **options)
    return info.value


# --- Valid packages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "checkpoint"),
    [
        (0, 0, CP_SMALL),
        (0, 23, CP_SMALL),
        (5, 23, CP_SMALL),
        (5, 10, CP_SMALL),
        (16, 16, CP_FULL),
        (17, 63, CP_FULL),
        (0, 63, CP_FULL),
        (31, 32, CP_FULL),
        (63, 63, CP_FULL),
    ],
)
def test_a_built_package_verifies(start: int, end: int, checkpoint: SignedCheckpoint) -> None:
    data = LEDGER.package(start, end, checkpoint)
    result = verify_range_package(data, TRUST, expect_start=start, expect_end=end)
    statement = result.statement
    assert (statement.start_id, statement.end_id, statement.count) == (start, end, end - start + 1)
    assert statement.start_prev_hash == LEDGER.prev_hash(start)
    assert statement.end_hash == LEDGER.hashes[end]
    assert result.checkpoint == checkpoint
    assert list(result.entries) == [rfc8785.dumps(b) for b in LEDGER.bodies[start : end + 1]]
    assert result.summary() == (
        f"valid: ledger acme entries {start}..{end} ({end - start + 1}) against checkpoint "
        f"seq {checkpoint.body.seq} tree size {checkpoint.body.tree_size} of finance.test/acme"
    )
    assert result.state is None


def test_every_range_of_a_small_ledger_verifies_against_every_later_checkpoint() -> None:
    ledger = SyntheticLedger(9)
    checkpoints = [ledger.issue(size) for size in range(1, 10)]
    trust = trust_of(ledger.signer)
    for checkpoint in checkpoints:
        size = checkpoint.body.tree_size
        for start in range(size):
            for end in range(start, size):
                verify_range_package(ledger.package(start, end, checkpoint), trust)


def test_the_file_is_canonical_and_the_export_deterministic() -> None:
    data = LEDGER.package(3, 20, CP_SMALL)
    assert LEDGER.package(3, 20, CP_SMALL) == data
    assert rfc8785.dumps(json.loads(data)) == data
    package = loads_strict(data)
    assert list(package) == [
        "checkpoint",
        "consistency",
        "entries",
        "left_frontier",
        "statement",
        "statement_signatures",
        "type",
    ]
    assert package["type"] == PACKAGE_TYPE
    assert package["statement"]["package_id"] == str(uuid.uuid5(NAMESPACE, "acme/3/20/0"))
    assert package["statement"]["generated_at"] == "2026-01-01T09:00:00.000000Z"
    assert package["statement"]["genesis"] is None
    assert len(package["left_frontier"]) == (3).bit_count()
    assert package["checkpoint"] == CP_SMALL.to_json()


def test_a_range_from_entry_0_carries_the_genesis() -> None:
    package = loads_strict(LEDGER.package(0, 4, CP_SMALL))
    assert package["statement"]["genesis"] == {
        "ledger_id": "acme",
        "created_at": "2026-01-01T08:00:00.000000Z",
    }
    assert package["statement"]["start_prev_hash"] == b64(LEDGER.genesis)
    assert package["left_frontier"] == []


def test_a_statement_is_signed_over_its_prefix_and_jcs() -> None:
    result = verify_range_package(LEDGER.package(2, 9, CP_SMALL), TRUST)
    message = statement_signing_bytes(result.statement)
    assert message == b"finance/range/v1\n" + rfc8785.dumps(result.statement.to_json())


def test_several_statement_and_checkpoint_signers_any_trusted_one_suffices() -> None:
    second = MemorySigner(seed=7)
    ledger = SyntheticLedger(10)
    checkpoint = ledger.issue(signers=[ledger.signer, second])
    data = ledger.package(2, 9, checkpoint, signers=[ledger.signer, second])
    verify_range_package(data, trust_of(second))
    verify_range_package(data, trust_of(ledger.signer, second))


# --- Building refuses what would not verify ----------------------------------------------------


def build(**changes: Any) -> bytes:
    arguments: dict[str, Any] = {
        "ledger_id": "acme",
        "entries": LEDGER.bodies[5:11],
        "start_prev_hash": LEDGER.hashes[4],
        "left_frontier": LEDGER.log.frontier(5).hashes,
        "consistency": LEDGER.log.consistency_proof(11, 24),
        "checkpoint": CP_SMALL,
        "generated_at": CP_SMALL.body.issued_at,
        "package_id": uuid.uuid4(),
        "signers": [(SIGNER_ID, LEDGER.signer)],
    }
    arguments.update(changes)
    return build_range_package(**arguments)


def test_build_checks_its_arguments_like_the_verifier() -> None:
    verify_range_package(build(), TRUST)
    float_entry = {**LEDGER.bodies[5], "entry_id": 5.0}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"entries": []}, "1.."),
        ({"entries": [float_entry, *LEDGER.bodies[6:11]]}, "entry_id must be a JSON integer"),
        ({"entries": [*LEDGER.bodies[5:8], *LEDGER.bodies[9:12]]}, "expected 8"),
        ({"start_prev_hash": LEDGER.hashes[3]}, "root"),
        ({"left_frontier": LEDGER.log.frontier(4).hashes}, "left_frontier"),
        ({"consistency": LEDGER.log.consistency_proof(11, 23)}, "consistency proof"),
        ({"ledger_id": "other"}, "ledger"),
        ({"generated_at": CP_SMALL.body.issued_at - timedelta(seconds=1)}, "generated_at"),
        (
            {"entries": LEDGER.bodies[0:3], "start_prev_hash": LEDGER.genesis},
            "ledger_created_at",
        ),
        (
            {
                "entries": LEDGER.bodies[0:3],
                "start_prev_hash": LEDGER.genesis,
                "ledger_created_at": CREATED_AT + timedelta(seconds=1),
                "left_frontier": (),
            },
            "genesis",
        ),
    ]
    for changes, reason in cases:
        with pytest.raises(ValueError, match=reason):
            build(**changes)


# --- Step 1: strict parse and schema -----------------------------------------------------------

GOOD = LEDGER.package(5, 30, CP_FULL)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff" + GOOD[1:], "parse: input is not valid UTF-8"),
        (GOOD[:-1], "parse: not JSON"),
        (GOOD + b"\n", "parse: input is not RFC 8785 canonical JSON"),
        (GOOD.replace(b'","', b'", "', 1), "parse: input is not RFC 8785 canonical JSON"),
        (GOOD.replace(b'"count":26', b'"count":26.0'), "parse: non-integer number '26.0'"),
        (GOOD.replace(b'"count":26', b'"count":26,"count":26'), "parse: duplicate object key"),
        (GOOD.replace(b'"amount":"105"', b'"amount":105', 1), "schema: entries[0].postings[0]"),
    ],
)
def test_step_1_strict_parse(data: bytes, reason: str) -> None:
    assert data != GOOD
    assert failure(data).reason.startswith(reason)


def test_step_1_refuses_an_oversized_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(range_proof, "PROOF_PACKAGE_BYTES_MAX", len(GOOD) - 1)
    assert failure(GOOD).reason == f"parse: package is larger than {len(GOOD) - 1} bytes"


def drop(name: str) -> Callable[[Package], None]:
    return lambda package: package.pop(name)


def set_entry(index: int, name: str, value: Any) -> Callable[[Package], None]:
    return lambda package: package["entries"][index].__setitem__(name, value)


def set_posting(name: str, value: Any) -> Callable[[Package], None]:
    return lambda package: package["entries"][3]["postings"][1].__setitem__(name, value)


def set_both_amounts(value: str) -> Callable[[Package], None]:
    """A changed amount that still balances: only the chain can tell."""

    def change(package: Package) -> None:
        for posting in package["entries"][3]["postings"]:
            posting["amount"] = value

    return change


SCHEMA_CASES: list[tuple[Callable[[Package], None], str]] = [
    (lambda p: p.__setitem__("type", "finance/entry-receipt/v1"), "type is 'finance/entry-rec"),
    (drop("consistency"), "package: missing fields ['consistency']"),
    (lambda p: p.__setitem__("note", "x"), "unknown fields ['note']"),
    (lambda p: p.__setitem__("entries", []), "entries must be a list of 1.."),
    (set_entry(2, "extra", "x"), "entries[2]: missing fields [], unknown fields ['extra']"),
    (set_entry(2, "schema", "finance/entry/v2"), "entries[2].schema"),
    (set_entry(2, "entry_id", -7), "entries[2].entry_id"),
    (set_entry(2, "entry_id", True), "entries[2].entry_id"),
    (set_entry(2, "id", "0B9E5F0C-6A1E-4B8E-9A55-0F6F3D1C2A77"), "entries[2].id"),
    (set_entry(2, "posted_at", "2026-01-01T08:00:07Z"), "entries[2].posted_at"),
    (set_entry(2, "posted_at", "2026-02-30T08:00:07.000000Z"), "entries[2].posted_at"),
    (set_entry(2, "effective_date", "20260101"), "entries[2].effective_date"),
    (set_entry(2, "memo", 7), "entries[2].memo"),
    (set_entry(2, "type", ""), "entries[2].type"),
    (set_entry(2, "reversal_of", "nope"), "entries[2].reversal_of"),
    (set_entry(2, "metadata", {"n": 1}), "entries[2].metadata"),
    (set_entry(2, "postings", []), "entries[2].postings"),
    (lambda p: p["entries"][2]["postings"].pop(), "entries[2].postings must be a list of at least"),
    (set_posting("currency", "EUR"), "entries[3]: debits and credits differ in EUR, USD"),
    (set_posting("amount", "-105"), "entries[3].postings[1].amount"),
    (set_posting("amount", "0105"), "entries[3].postings[1].amount"),
    (set_posting("amount", "9223372036854775808"), "entries[3].postings[1].amount"),
    (set_posting("side", "left"), "entries[3].postings[1].side"),
    (set_posting("side", ["debit"]), "entries[3].postings[1].side"),
    (set_posting("currency", "usd"), "entries[3].postings[1].currency"),
    (set_posting("account", 5), "entries[3].postings[1].account"),
    (lambda p: p["left_frontier"].__setitem__(0, b64(bytes(31))), "left_frontier[0]"),
    (lambda p: p.__setitem__("consistency", [b64(bytes(32))] * 65), "more than 64"),
    (lambda p: p["statement"].__setitem__("start_id", "5"), "statement.start_id"),
    (lambda p: p["statement"].__setitem__("package_id", "x"), "statement.package_id"),
    (lambda p: p["statement"].__setitem__("generated_at", "2026"), "statement.generated_at"),
    (lambda p: p["statement"].__setitem__("genesis", {}), "statement.genesis must be"),
    (lambda p: p["statement"]["checkpoint"].pop("seq"), "statement.checkpoint: missing"),
    (lambda p: p["checkpoint"]["body"].__setitem__("seq", -1), "seq must be a JSON integer"),
    (lambda p: p.__setitem__("statement_signatures", {}), "signatures must be a list"),
]


@pytest.mark.parametrize(("change", "reason"), SCHEMA_CASES)
def test_step_1_schema(change: Callable[[Package], None], reason: str) -> None:
    failed = failure(edit(GOOD, change))
    assert failed.check == "schema"
    assert reason in failed.detail


def test_step_1_schema_genesis_is_required_from_entry_0() -> None:
    data = edit(
        LEDGER.package(0, 3, CP_SMALL), lambda p: p["statement"].__setitem__("genesis", None)
    )
    assert failure(data).reason.startswith("schema: statement.genesis must be an object")


# --- Step 2: checkpoint signature --------------------------------------------------------------


def test_step_2_only_trusted_keys_count() -> None:
    failed = failure(GOOD, trust_of(ATTACKER))
    assert failed.reason == "checkpoint: no checkpoint signature by a trusted key"


def test_step_2_a_failing_trusted_signature_rejects() -> None:
    def break_signature(package: Package) -> None:
        signature = package["checkpoint"]["signatures"][0]
        raw = bytearray(base64.b64decode(signature["sig"]))
        raw[0] ^= 1
        signature["sig"] = b64(bytes(raw))

    failed = failure(edit(GOOD, break_signature))
    assert failed.check == "checkpoint"
    assert "does not verify" in failed.detail


def test_step_2_key_validity_window_is_checked_at_issued_at() -> None:
    signer = LEDGER.signer
    expired = TrustStore(
        [
            TrustedKey(
                signer.key_id,
                signer.alg,
                signer.public_key_spki(),
                valid_to=CP_FULL.body.issued_at - timedelta(seconds=1),
            )
        ]
    )
    assert "outside the validity window" in failure(GOOD, expired).reason


# --- Step 3: statement -------------------------------------------------------------------------


def test_step_3_an_edited_statement_fails_its_signature() -> None:
    data = edit(GOOD, lambda p: p["statement"].__setitem__("count", 25))
    failed = failure(data)
    assert failed.check == "statement"
    assert "does not verify" in failed.detail


def test_step_3_statement_signed_by_an_untrusted_key() -> None:
    data = edit(GOOD, lambda p: resign(p, ATTACKER))
    assert failure(data).reason == "statement: no statement signature by a trusted key"


def test_step_3_statement_must_name_the_embedded_checkpoint() -> None:
    def point_elsewhere(package: Package) -> None:
        package["statement"]["checkpoint"]["seq"] = 0
        resign(package)

    failure_ = failure(edit(GOOD, point_elsewhere))
    assert (
        failure_.reason == "statement: statement.checkpoint does not match the embedded checkpoint"
    )


def test_step_3_checkpoint_must_be_the_ledgers_log() -> None:
    def other_ledger(package: Package) -> None:
        package["statement"]["ledger_id"] = "globex"
        resign(package)

    assert failure(edit(GOOD, other_ledger)).reason == (
        "statement: checkpoint origin 'finance.test/acme' is not the log of ledger 'globex'"
    )


def test_step_3_statement_is_not_older_than_its_checkpoint() -> None:
    def backdate(package: Package) -> None:
        package["statement"]["generated_at"] = "2026-01-01T00:00:00.000000Z"
        resign(package)

    assert "generated_at is earlier" in failure(edit(GOOD, backdate)).reason


# --- Step 4: expectations and bounds -----------------------------------------------------------


def test_step_4_expectations() -> None:
    assert failure(GOOD, expect_start=4).reason == (
        "expect: the package covers entries 5..30, expected start 4"
    )
    assert failure(GOOD, expect_end=31).reason == (
        "expect: the package covers entries 5..30, expected end 31"
    )
    verify_range_package(GOOD, TRUST, expect_start=5, expect_end=30)


def resigned(**statement: Any) -> bytes:
    def change(package: Package) -> None:
        package["statement"].update(statement)
        resign(package)

    return edit(GOOD, change)


def test_step_4_bounds_and_count() -> None:
    assert failure(resigned(end_id=64)).reason == (
        "range: entries 5..64 are not inside a tree of size 64"
    )
    assert failure(resigned(start_id=31)).reason == (
        "range: entries 31..30 are not inside a tree of size 64"
    )
    assert failure(resigned(count=27)).reason == (
        "range: 26 entries for 5..30 (26); the statement says 27"
    )
    assert failure(resigned(end_id=31)).check == "range"


# --- Step 5: chain -----------------------------------------------------------------------------


def test_step_5_entry_ids_must_follow_start() -> None:
    data = edit(GOOD, lambda p: p["entries"].insert(3, p["entries"].pop(4)))
    assert failure(data).reason == "chain: entries[3] has entry_id 9, expected 8"


def test_step_5_entries_belong_to_the_ledger() -> None:
    assert failure(edit(GOOD, set_entry(4, "ledger_id", "globex"))).reason == (
        "chain: entry 9 belongs to ledger 'globex'"
    )


def test_step_5_posting_times_never_go_backwards() -> None:
    data = edit(GOOD, set_entry(4, "posted_at", "2025-12-31T00:00:00.000000Z"))
    assert failure(data).reason == "chain: entry 9 is posted before the entry preceding it"


def test_step_5_end_hash() -> None:
    assert failure(resigned(end_hash=b64(LEDGER.hashes[29]))).reason == (
        "chain: entries 5..30 do not hash to end_hash: an entry was altered, removed, added or "
        "moved"
    )


def test_step_5_start_prev_hash_of_entry_0_is_the_genesis() -> None:
    data = LEDGER.package(0, 3, CP_SMALL)

    def created_later(package: Package) -> None:
        package["statement"]["genesis"]["created_at"] = "2026-01-01T08:00:01.000000Z"
        resign(package)

    def other_ledger(package: Package) -> None:
        package["statement"]["genesis"]["ledger_id"] = "globex"
        resign(package)

    assert failure(edit(data, created_later)).reason == (
        "chain: start_prev_hash is not the ledger's genesis hash"
    )
    assert failure(edit(data, other_ledger)).reason == (
        "chain: statement.genesis is for another ledger"
    )


# --- Step 6: tie to the checkpoint -------------------------------------------------------------


def test_step_6_frontier_length() -> None:
    data = edit(GOOD, lambda p: p["left_frontier"].pop())
    assert failure(data).reason == (
        "merkle: left_frontier has 1 hashes; a range starting at 5 needs 2"
    )


def test_step_6_frontier_content() -> None:
    data = edit(GOOD, lambda p: p["left_frontier"].__setitem__(1, b64(LEDGER.hashes[4])))
    failed = failure(data)
    assert failed.check == "merkle"
    assert "consistency proof from tree size 31 to 64 does not verify" in failed.detail


def test_step_6_consistency_proof() -> None:
    data = edit(GOOD, lambda p: p["consistency"].reverse())
    assert "merkle: consistency proof from tree size 31 to 64" in failure(data).reason
    data = edit(GOOD, lambda p: p.__setitem__("consistency", []))
    assert failure(data).reason == (
        "merkle: consistency proof from tree size 31 to 64 does not verify "
        "(empty consistency proof)"
    )


def test_step_6_range_ending_at_the_checkpoint() -> None:
    data = LEDGER.package(40, 63, CP_FULL)
    assert (
        failure(
            edit(data, lambda p: p.__setitem__("consistency", [b64(LEDGER.log.root(64))]))
        ).reason
        == "merkle: consistency must be empty when the range ends at the checkpoint"
    )
    assert (
        failure(edit(data, lambda p: p["left_frontier"].reverse())).reason
        == "merkle: the entries and left_frontier do not lead to the checkpoint's root_hash"
    )


def test_step_6_end_hash_is_the_checkpoints_chain_head() -> None:
    """Only a dishonest checkpoint (right root, wrong chain head) reaches this check."""
    previous = CP_FULL.body
    body = CheckpointBody(
        origin=previous.origin,
        tree_size=previous.tree_size,
        root_hash=previous.root_hash,
        chain_head=hashlib.sha256(b"not the head").digest(),
        seq=previous.seq + 1,
        prev_checkpoint=body_hash(previous),
        issued_at=previous.issued_at + timedelta(hours=1),
    )
    dishonest = sign_checkpoint(body, [(SIGNER_ID, LEDGER.signer)])
    data = _unchecked_package(40, 63, dishonest)
    assert failure(data).reason == "merkle: end_hash is not the checkpoint's chain_head"


def _unchecked_package(start: int, end: int, checkpoint: SignedCheckpoint) -> bytes:
    """A package the builder would refuse: assembled by editing an honest one."""
    honest = LEDGER.package(start, end, CP_FULL)

    def swap_checkpoint(package: Package) -> None:
        package["checkpoint"] = checkpoint.to_json()
        package["statement"]["checkpoint"]["seq"] = checkpoint.body.seq
        package["statement"]["generated_at"] = package["checkpoint"]["body"]["issued_at"]
        resign(package)

    return edit(honest, swap_checkpoint)


# --- Step 7: state -----------------------------------------------------------------------------


def test_step_7_first_use_records_the_checkpoint_and_the_same_one_keeps_it() -> None:
    first = verify_range_package(GOOD, TRUST, state=AuditorState())
    assert first.state is not None
    assert first.state.latest(LEDGER.origin) == CP_FULL
    again = verify_range_package(LEDGER.package(0, 63, CP_FULL), TRUST, state=first.state)
    assert again.state == first.state


def test_step_7_an_older_checkpoint_is_a_rollback() -> None:
    state = AuditorState({LEDGER.origin: CP_FULL})
    failed = failure(LEDGER.package(0, 10, CP_SMALL), state=state)
    assert failed.reason == (
        "state: rollback: checkpoint seq 0 (tree size 24) is older than the stored seq 1 "
        "(tree size 64)"
    )
    assert failed.evidence == ()


def test_step_7_a_newer_checkpoint_needs_a_consistency_proof_from_the_stored_one() -> None:
    state = AuditorState({LEDGER.origin: CP_SMALL})
    failed = failure(GOOD, state=state)
    assert failed.check == "state"
    assert "a consistency proof from the stored checkpoint is needed" in failed.detail
    assert "audit bundle" in failed.detail


def test_step_7_equivocation_hands_back_both_signed_checkpoints() -> None:
    state = AuditorState({LEDGER.origin: CP_FULL})
    forged = REWRITTEN.package(5, 30)
    failed = failure(forged, state=state)
    assert failed.reason == (
        "state: equivocation: two different signed checkpoints for seq 1 of finance.test/acme"
    )
    stored, presented = (SignedCheckpoint.from_bytes(doc) for doc in failed.evidence)
    assert stored == CP_FULL
    assert presented == REWRITTEN.checkpoints[1]


# --- Step 8: freshness -------------------------------------------------------------------------


def test_step_8_freshness() -> None:
    issued = CP_FULL.body.issued_at
    hour = timedelta(hours=1)
    verify_range_package(GOOD, TRUST, max_age=hour, now=issued + hour)
    assert failure(GOOD, max_age=hour, now=issued + hour * 2).reason == (
        "freshness: checkpoint seq 1 was issued at 2026-01-01T10:00:00.000000Z, more than "
        "3600 s ago"
    )
    assert failure(GOOD, max_age=hour, now=issued - hour).check == "freshness"
    with pytest.raises(ValueError, match="max_age needs now"):
        verify_range_package(GOOD, TRUST, max_age=hour)


# --- The tamper corpus (issue 3; design proofs.md section 5) -----------------------------------


def delete_entry(package: Package) -> None:
    del package["entries"][7]


def delete_and_renumber(package: Package) -> None:
    """Entry 12 removed, the later ones renumbered, and the statement made to match."""
    del package["entries"][7]
    for offset, entry in enumerate(package["entries"]):
        entry["entry_id"] = 5 + offset
    package["statement"]["end_id"] -= 1
    package["statement"]["count"] -= 1


def swap_keeping_ids(package: Package) -> None:
    entries = package["entries"]
    entries[3], entries[4] = entries[4], entries[3]
    entries[3]["entry_id"], entries[4]["entry_id"] = 8, 9


def swap_keeping_ids_and_times(package: Package) -> None:
    swap_keeping_ids(package)
    entries = package["entries"]
    entries[3]["posted_at"], entries[4]["posted_at"] = (
        entries[4]["posted_at"],
        entries[3]["posted_at"],
    )


def append_next_entry(package: Package) -> None:
    package["entries"].append(LEDGER.bodies[31])


def cite_the_older_tree_size(package: Package) -> None:
    package["statement"]["checkpoint"]["tree_size"] = 24
    resign(package)


def edit_root(package: Package) -> None:
    package["checkpoint"]["body"]["root_hash"] = b64(hashlib.sha256(b"root").digest())


def replace_checkpoint_signatures(package: Package) -> None:
    """A package re-signed end to end with the attacker's own key."""
    body = CheckpointBody.from_json(package["checkpoint"]["body"])
    package["checkpoint"] = sign_checkpoint(body, [(SIGNER_ID, ATTACKER)]).to_json()
    resign(package, ATTACKER)


TAMPERS: list[tuple[str, Callable[[Package], None], str, str]] = [
    ("changed amount", set_both_amounts("106"), "chain", "do not hash to end_hash"),
    ("changed amount, unbalanced", set_posting("amount", "106"), "schema", "debits and credits"),
    (
        "changed account",
        set_posting("account", "5d1f7a4e-0000-4000-8000-000000000001"),
        "chain",
        "do not hash to end_hash",
    ),
    ("deleted entry", delete_entry, "range", "25 entries for 5..30"),
    ("deleted entry, ids renumbered", delete_and_renumber, "statement", "does not verify"),
    (
        "swapped entries",
        lambda p: p["entries"].insert(3, p["entries"].pop(4)),
        "chain",
        "entries[3] has entry_id 9, expected 8",
    ),
    ("swapped entries, ids kept in order", swap_keeping_ids, "chain", "posted before"),
    (
        "swapped entries, ids and times kept in order",
        swap_keeping_ids_and_times,
        "chain",
        "do not hash to end_hash",
    ),
    ("extra entry appended", append_next_entry, "range", "27 entries for 5..30"),
    (
        "edited tree size",
        lambda p: p["checkpoint"]["body"].__setitem__("tree_size", 65),
        "checkpoint",
        "does not verify",
    ),
    ("edited root", edit_root, "checkpoint", "does not verify"),
    ("re-signed with another key", replace_checkpoint_signatures, "checkpoint", "no checkpoint"),
    (
        "frontier of the wrong length",
        lambda p: p["left_frontier"].append(p["left_frontier"][0]),
        "merkle",
        "needs 2",
    ),
    ("consistency proof wrong", lambda p: p["consistency"].pop(), "merkle", "does not verify"),
    (
        "statement and checkpoint mismatch",
        cite_the_older_tree_size,
        "statement",
        "does not match the embedded checkpoint",
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "check", "detail"), TAMPERS, ids=[t[0] for t in TAMPERS]
)
def test_tamper_is_caught(
    name: str, change: Callable[[Package], None], check: str, detail: str
) -> None:
    tampered = edit(GOOD, change)
    assert tampered != GOOD
    failed = failure(tampered, expect_start=5, expect_end=30)
    assert (failed.check, detail in failed.detail) == (check, True), failed.reason


@pytest.mark.parametrize(
    ("name", "find", "replace", "reason"),
    [
        ("number written as float", b'"tree_size":64', b'"tree_size":64.0', "non-integer"),
        ("amount written as a number", b'"amount":"105"', b'"amount":105', "amount must be"),
        ("duplicate JSON key", b'"count":26', b'"count":26,"count":26', "duplicate object key"),
        ("non-canonical whitespace", b'{"checkpoint":', b'{ "checkpoint":', "canonical"),
    ],
)
def test_tamper_in_the_bytes_is_caught(name: str, find: bytes, replace: bytes, reason: str) -> None:
    assert find in GOOD
    failed = failure(GOOD.replace(find, replace, 1), expect_start=5, expect_end=30)
    assert failed.check in {"parse", "schema"}
    assert reason in failed.detail


def test_truncated_tail_is_caught_only_with_expect_end() -> None:
    truncated = LEDGER.package(5, 29, CP_FULL)
    assert failure(truncated, expect_start=5, expect_end=30).reason == (
        "expect: the package covers entries 5..29, expected end 30"
    )
    # Correctly, without --expect-end it is a valid proof of the shorter range.
    assert verify_range_package(truncated, TRUST, expect_start=5).statement.end_id == 29


def test_rewritten_history_re_signed_with_the_real_key() -> None:
    forged = REWRITTEN.package(5, 30)
    # Alone it is a valid package: every signature is the real key's.
    verify_range_package(forged, TRUST, expect_start=5, expect_end=30)
    # An auditor who saw the real seq 1 gets equivocation evidence.
    seen = AuditorState({LEDGER.origin: CP_FULL})
    assert "equivocation" in failure(forged, state=seen).reason
    # One who saw the older seq 0 sees that the forged seq 1 does not chain to it; the
    # consistency proof a forger could offer fails too (test_auditor_state).
    older = AuditorState({LEDGER.origin: CP_SMALL})
    failed = failure(forged, state=older)
    assert failed.reason.startswith(
        "state: checkpoint seq 1 does not follow the stored seq 0: prev_checkpoint is not"
    )
    assert [SignedCheckpoint.from_bytes(doc) for doc in failed.evidence] == [
        CP_SMALL,
        REWRITTEN.checkpoints[1],
    ]
