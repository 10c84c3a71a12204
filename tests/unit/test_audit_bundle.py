"""How `verify_bundle` ties an audit bundle's files together (docs/proofs.md 9.6): each way the
files can disagree with each other, with the manifest signed by the real key, is refused and
named; the auditor state advances along the bundle's checkpoint chain."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from finance.proofs.audit_bundle import (
    AuditExport,
    ConsistencyFile,
    build_audit_bundle,
    checkpoint_path,
    consistency_path,
    entries_path,
    package_path,
    verify_bundle,
)
from finance.proofs.bundle import CheckpointRef, build_bundle
from finance.proofs.range import CheckpointRef as TreeRef
from finance.proofs.state import AuditorState
from finance.proofs.strict_json import canonical_dumps
from finance.proofs.verification import VerificationFailed
from tests.proofs_support import SyntheticLedger
from tests.signers import SIGNER_ID, trust_for

LEDGER = SyntheticLedger(40)
OLD = LEDGER.issue(10)
MIDDLE = LEDGER.issue(25)
ANCHOR = LEDGER.issue(40)
TRUST = trust_for(LEDGER.signer)
SIGNERS = [(SIGNER_ID, LEDGER.signer)]
START, END = 12, 30
# The same ledger grown further, its first checkpoints identical: a newer checkpoint than the
# bundle's anchor, consistent with it.
GROWN = SyntheticLedger(50)
for size in (10, 25, 40):
    GROWN.issue(size)
NEWER = GROWN.issue(50)


def export(since: bool = True) -> AuditExport:
    chain = [OLD, ANCHOR] if since else [ANCHOR]
    proofs = [LEDGER.log.consistency_proof(10, 40)] if since else []
    return AuditExport(
        ledger_id="acme",
        start_id=START,
        end_id=END,
        entries_jcs=[canonical_dumps(body) for body in LEDGER.bodies[START : END + 1]],
        package=LEDGER.package(START, END, ANCHOR),
        chain=chain,
        proofs=proofs,
    )


def bundle_of(files: dict[str, bytes]) -> bytes:
    _, data = build_bundle(
        "acme", START, END, CheckpointRef.of(ANCHOR.body), files, SIGNERS, "test"
    )
    return data


def refused(files: dict[str, bytes], check: str, detail: str) -> None:
    with pytest.raises(VerificationFailed) as failed:
        verify_bundle(bundle_of(files), TRUST)
    assert failed.value.check == check, failed.value.reason
    assert detail in failed.value.detail, failed.value.detail


def test_a_bundle_with_its_chain_verifies_and_advances_the_auditor() -> None:
    _, data = build_audit_bundle(export(), SIGNERS, "test")
    at_old = AuditorState().advance(OLD)
    verified = verify_bundle(data, TRUST, expect_start=START, expect_end=END, state=at_old)
    assert [c.body.seq for c in verified.chain] == [0, 2]
    assert verified.state is not None
    latest = verified.state.latest(LEDGER.origin)
    assert latest == ANCHOR
    assert verified.summary().startswith("valid: ledger acme entries 12..30 (19)")


def test_an_auditor_between_the_bundles_checkpoints_needs_another_export() -> None:
    _, data = build_audit_bundle(export(), SIGNERS, "test")
    at_middle = AuditorState().advance(OLD).advance(MIDDLE, LEDGER.log.consistency_proof(10, 25))
    with pytest.raises(VerificationFailed) as failed:
        verify_bundle(data, TRUST, state=at_middle)
    assert failed.value.check == "state"


Edit = Callable[[dict[str, bytes]], None]


def drop(path: str) -> Edit:
    return lambda files: files.__delitem__(path)


def put(path: str, content: bytes) -> Edit:
    return lambda files: files.__setitem__(path, content)


def add_newer_checkpoint(files: dict[str, bytes]) -> None:
    files[checkpoint_path(3)] = NEWER.to_bytes()
    link = ConsistencyFile(
        TreeRef.of(ANCHOR.body), TreeRef.of(NEWER.body), tuple(GROWN.log.consistency_proof(40, 50))
    )
    files[consistency_path(2, 3)] = link.to_bytes()


def drop_chain(files: dict[str, bytes]) -> None:
    for path in [p for p in files if p.startswith(("checkpoints/", "consistency/"))]:
        del files[path]


WRONG_PROOF = ConsistencyFile(
    TreeRef.of(OLD.body), TreeRef.of(ANCHOR.body), tuple(LEDGER.log.consistency_proof(9, 40))
).to_bytes()
OTHER_ENDS = ConsistencyFile(
    TreeRef.of(MIDDLE.body), TreeRef.of(ANCHOR.body), tuple(LEDGER.log.consistency_proof(25, 40))
).to_bytes()

CASES: dict[str, tuple[Edit, str, str]] = {
    "no range package": (drop(package_path(START, END)), "bundle", "has no proofs/range-12-30"),
    "no entries file": (drop(entries_path(START, END)), "bundle", "has no entries/"),
    "entries file differs": (
        put(entries_path(START, END), b"{}\n"),
        "bundle",
        "does not hold exactly the range package's entries",
    ),
    "no consistency proof": (
        drop(consistency_path(0, 2)),
        "consistency",
        "no consistency proof from checkpoint 0 to 2",
    ),
    "a wrong consistency proof": (put(consistency_path(0, 2), WRONG_PROOF), "consistency", ""),
    "a proof naming other checkpoints": (
        put(consistency_path(0, 2), OTHER_ENDS),
        "consistency",
        "holds a proof from 1 to 2",
    ),
    "a stray consistency file": (
        put(consistency_path(1, 2), OTHER_ENDS),
        "bundle",
        "links no two checkpoints",
    ),
    "a checkpoint under another seq": (
        put(checkpoint_path(5), OLD.to_bytes()),
        "checkpoint",
        "checkpoints/000005.json holds checkpoint seq 0",
    ),
    "the anchor is not the newest checkpoint": (
        add_newer_checkpoint,
        "bundle",
        "the newest checkpoint file is seq 3",
    ),
    "no checkpoints": (drop_chain, "bundle", "has no checkpoints/ file"),
    "an unparseable checkpoint": (put(checkpoint_path(0), b"{"), "checkpoint", "000000.json: "),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_files_that_disagree_are_refused(name: str) -> None:
    edit, check, detail = CASES[name]
    files = export().files()
    edit(files)
    refused(files, check, detail)


def test_an_export_needs_one_proof_per_link() -> None:
    broken = AuditExport("acme", START, END, [], b"", [OLD, ANCHOR], [])
    with pytest.raises(ValueError, match="n - 1 consistency proofs"):
        broken.files()
