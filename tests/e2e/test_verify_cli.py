"""`finance verify` and `finance verify-receipt`: exit codes 0/1/2 and their one-line messages
(docs/proofs.md section 7). Most cases run `main()` in this process; a few run the installed
command with no FINANCE_* settings to show it needs no database, settings or data directory."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from finance.proofs.checkpoint import SignedCheckpoint
from tests.e2e.helpers import run
from tests.e2e.verifying import Auditor
from tests.proofs_support import SyntheticLedger
from tests.signers import EcdsaSigner, MemorySigner

LEDGER = SyntheticLedger(64)
CP_SMALL = LEDGER.issue(24)
CP_FULL = LEDGER.issue(64)
REWRITTEN = SyntheticLedger(
    64, signer=LEDGER.signer, edit=lambda b: b.__setitem__("memo", "x"), edit_at=3
)
REWRITTEN.issue(24)
REWRITTEN.issue(64)

VALID_LINE = (
    "valid: ledger acme entries 5..30 (26) against checkpoint seq 1 tree size 64 of "
    "finance.test/acme"
)


COVERS = "invalid: expect: the package covers entries 5..30"


@pytest.fixture
def auditor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Auditor:
    auditor = Auditor(tmp_path, capsys, monkeypatch)
    auditor.key = auditor.write("key.pem", MemorySigner().public_key_pem())
    auditor.package = auditor.write("package.json", LEDGER.package(5, 30, CP_FULL))
    return auditor


def tampered(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    package: dict[str, Any] = json.loads(data)
    change(package)
    return rfc8785.dumps(package)


# --- Exit 0 ------------------------------------------------------------------------------------


def test_a_valid_package(auditor: Auditor) -> None:
    result = auditor.verify(auditor.package, "--public-key", auditor.key)
    assert (result.code, result.out, result.err) == (0, VALID_LINE + "\n", "")
    result = auditor.verify(
        auditor.package, "--public-key", auditor.key, "--expect-start", "5", "--expect-end", "30"
    )
    assert result.code == 0


def test_a_trust_file_and_several_keys(auditor: Auditor) -> None:
    signer = LEDGER.signer
    trust = {
        "keys": [
            {
                "key_id": signer.key_id,
                "alg": "ed25519",
                "public_key": MemorySigner().public_key_pem().decode("ascii"),
                "valid_from": "2025-01-01T00:00:00+00:00",
            }
        ]
    }
    path = auditor.write("trust.json", json.dumps(trust, indent=2).encode())
    other = auditor.write("other.pem", MemorySigner(seed=5).public_key_pem())
    assert auditor.verify(auditor.package, "--trust", path).code == 0
    result = auditor.verify(
        auditor.package, "--trust", path, "--public-key", auditor.key, "--public-key", other
    )
    assert result.code == 0
    trust["keys"][0]["valid_to"] = "2025-12-31T00:00:00+00:00"
    expired = auditor.write("expired.json", json.dumps(trust).encode())
    result = auditor.verify(auditor.package, "--trust", expired, "--public-key", auditor.key)
    assert result.code == 1
    assert result.err_line.startswith("invalid: checkpoint: checkpoint dated")


def test_the_algorithm_follows_the_key(auditor: Auditor) -> None:
    ecdsa = EcdsaSigner()
    ledger = SyntheticLedger(8, signer=ecdsa)
    ledger.issue()
    package = auditor.write("ecdsa.json", ledger.package(2, 7))
    pem = auditor.write("ecdsa.pem", ecdsa.public_key_pem())
    assert auditor.verify(package, "--public-key", pem).code == 0
    assert auditor.verify(package, "--public-key", auditor.key).code == 1


def test_a_receipt(auditor: Auditor) -> None:
    receipt = auditor.write("receipt.json", LEDGER.receipt(7, CP_FULL))
    result = auditor.finance("verify-receipt", receipt, "--public-key", auditor.key)
    assert result.code == 0
    assert result.out.startswith("valid: ledger acme entry 7 (")
    assert result.out.endswith(") is in checkpoint seq 1 tree size 64 of finance.test/acme\n")


# --- Exit 1 ------------------------------------------------------------------------------------


def test_an_invalid_package_names_the_first_failed_check(auditor: Auditor) -> None:
    def change_amount(package: dict[str, Any]) -> None:
        # Both sides of the entry, so it still balances: only the chain can tell.
        for posting in package["entries"][3]["postings"]:
            posting["amount"] = "1"

    changed = tampered(LEDGER.package(5, 30, CP_FULL), change_amount)
    result = auditor.verify(auditor.write("bad.json", changed), "--public-key", auditor.key)
    assert (result.code, result.out) == (1, "")
    assert result.err_line == (
        "invalid: chain: entries 5..30 do not hash to end_hash: an entry was altered, removed, "
        "added or moved"
    )


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (["--expect-end", "31"], f"{COVERS}, expected end 31"),
        (["--expect-start", "4"], f"{COVERS}, expected start 4"),
        (
            ["--max-age", "60"],
            "invalid: freshness: checkpoint seq 1 was issued at 2026-01-01T10:00:00.000000Z, "
            "more than 60 s ago",
        ),
    ],
)
def test_expectations_and_freshness(auditor: Auditor, options: list[str], line: str) -> None:
    result = auditor.verify(auditor.package, "--public-key", auditor.key, *options)
    assert (result.code, result.err_line) == (1, line)


def test_a_package_signed_by_another_key(auditor: Auditor) -> None:
    other = auditor.write("other.pem", MemorySigner(seed=5).public_key_pem())
    result = auditor.verify(auditor.package, "--public-key", other)
    assert (result.code, result.err_line) == (
        1,
        "invalid: checkpoint: no checkpoint signature by a trusted key",
    )


def test_a_receipt_is_not_a_range_package_and_back(auditor: Auditor) -> None:
    receipt = auditor.write("receipt.json", LEDGER.receipt(7, CP_FULL))
    result = auditor.verify(receipt, "--public-key", auditor.key)
    assert result.err_line == (
        "invalid: schema: type is 'finance/entry-receipt/v1', expected 'finance/range-proof/v1'"
    )
    result = auditor.finance("verify-receipt", auditor.package, "--public-key", auditor.key)
    assert result.code == 1
    assert result.err_line.startswith("invalid: schema: type is 'finance/range-proof/v1'")
    wrong_index = tampered(LEDGER.receipt(7, CP_FULL), lambda r: r.__setitem__("leaf_index", 8))
    path = auditor.write("wrong.json", wrong_index)
    result = auditor.finance("verify-receipt", path, "--public-key", auditor.key)
    assert (result.code, result.err_line) == (
        1,
        "invalid: inclusion: entry_id 7 is not leaf_index 8",
    )


# --- State -------------------------------------------------------------------------------------


def test_state_is_created_kept_and_advanced_only_when_valid(auditor: Auditor) -> None:
    state = str(auditor.root / "state.json")
    first = auditor.verify(auditor.package, "--public-key", auditor.key, "--state", state)
    assert first.out == VALID_LINE + "; state: first checkpoint of this log recorded (seq 1)\n"
    saved = Path(state).read_bytes()
    assert (
        SignedCheckpoint.from_json(json.loads(saved)["checkpoints"]["finance.test/acme"]) == CP_FULL
    )
    again = auditor.verify(auditor.package, "--public-key", auditor.key, "--state", state)
    assert again.out == VALID_LINE + "; state: already at seq 1\n"

    older = auditor.write("older.json", LEDGER.package(0, 9, CP_SMALL))
    result = auditor.verify(older, "--public-key", auditor.key, "--state", state)
    assert (result.code, result.err_line) == (
        1,
        "invalid: state: rollback: checkpoint seq 0 (tree size 24) is older than the stored "
        "seq 1 (tree size 64)",
    )
    assert Path(state).read_bytes() == saved


def test_a_newer_checkpoint_needs_a_bundle(auditor: Auditor) -> None:
    state = str(auditor.root / "state.json")
    older = auditor.write("older.json", LEDGER.package(0, 9, CP_SMALL))
    assert auditor.verify(older, "--public-key", auditor.key, "--state", state).code == 0
    result = auditor.verify(auditor.package, "--public-key", auditor.key, "--state", state)
    assert result.code == 1
    assert result.err_line.startswith("invalid: state: the stored checkpoint is seq 0")
    assert "verify an audit bundle exported with one" in result.err_line
    # Without --state the same package is valid.
    assert auditor.verify(auditor.package, "--public-key", auditor.key).code == 0


def test_equivocation_prints_the_evidence(auditor: Auditor) -> None:
    state = str(auditor.root / "state.json")
    assert auditor.verify(auditor.package, "--public-key", auditor.key, "--state", state).code == 0
    saved = Path(state).read_bytes()
    forged = auditor.write("forged.json", REWRITTEN.package(5, 30))
    assert auditor.verify(forged, "--public-key", auditor.key).code == 0  # alone it passes
    result = auditor.verify(forged, "--public-key", auditor.key, "--state", state)
    assert (result.code, result.err_line) == (
        1,
        "invalid: state: equivocation: two different signed checkpoints for seq 1 of "
        "finance.test/acme",
    )
    evidence = [SignedCheckpoint.from_bytes(line.encode()) for line in result.out.splitlines()]
    assert evidence == [CP_FULL, REWRITTEN.checkpoints[1]]
    assert Path(state).read_bytes() == saved


# --- Exit 2 ------------------------------------------------------------------------------------


def rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_usage_and_io_errors(auditor: Auditor) -> None:
    missing = str(auditor.root / "missing.json")
    not_pem = auditor.write("not.pem", b"hello")
    rsa_key = auditor.write("rsa.pem", rsa_pem())
    bad_trust = auditor.write("trust.json", b"{")
    corrupt_state = auditor.write("state.json", b"[]")
    cases: list[tuple[list[str], str]] = [
        ([missing, "--public-key", auditor.key], f"error: cannot read {missing}: No such file"),
        ([auditor.package, "--public-key", missing], "error: cannot read public key"),
        ([auditor.package, "--public-key", not_pem], f"error: {not_pem} is not a PEM public key"),
        ([auditor.package, "--public-key", rsa_key], f"error: {rsa_key}: a "),
        ([auditor.package], "error: give at least one --public-key or a --trust file"),
        ([auditor.package, "--trust", bad_trust], f"error: trust file {bad_trust} is not usable"),
        (
            [auditor.package, "--public-key", auditor.key, "--state", corrupt_state],
            f"error: state file {corrupt_state} is not a valid state",
        ),
        (
            [auditor.package, "--public-key", auditor.key, "--expect-end", "-1"],
            "error: Invalid value",
        ),
        ([auditor.package, "--public-key", auditor.key, "--max-age", "x"], "error: Invalid value"),
    ]
    for args, starts in cases:
        result = auditor.verify(*args)
        assert result.code == 2, (args, result)
        assert result.out == ""
        assert result.err_line.startswith(starts), (args, result.err)


def test_a_tar_goes_to_the_bundle_verifier(auditor: Auditor) -> None:
    bundle = io.BytesIO()
    with tarfile.open(fileobj=bundle, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo("manifest.json"), io.BytesIO(b""))
    bundle_path = auditor.write("bundle.tar", bundle.getvalue())
    result = auditor.verify(bundle_path, "--public-key", auditor.key)
    assert result.code == 1
    assert result.err_line.startswith("invalid: bundle: member 'manifest.json' is outside")


def test_an_unwritable_state_file_is_an_io_error(auditor: Auditor) -> None:
    state = auditor.root / "no-such-directory" / "state.json"
    result = auditor.verify(auditor.package, "--public-key", auditor.key, "--state", str(state))
    assert result.code == 2
    assert result.err_line == f"error: cannot write state file {state}: No such file or directory"


# --- The installed command, with nothing configured ---------------------------------------------


def test_the_command_runs_with_no_settings_and_creates_no_data_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    key = tmp_path / "key.pem"
    key.write_bytes(MemorySigner().public_key_pem())
    package = tmp_path / "package.json"
    package.write_bytes(LEDGER.package(5, 30, CP_FULL))
    receipt = tmp_path / "receipt.json"
    receipt.write_bytes(LEDGER.receipt(3, CP_FULL))

    valid = run(env, "verify", str(package), "--public-key", str(key), "--expect-end", "30")
    assert (valid.code, valid.out, valid.err) == (0, VALID_LINE + "\n", "")
    invalid = run(env, "verify", str(package), "--public-key", str(key), "--expect-end", "31")
    assert (invalid.code, invalid.out) == (1, "")
    assert invalid.err == "invalid: expect: the package covers entries 5..30, expected end 31\n"
    usage = run(env, "verify", str(tmp_path / "none.json"), "--public-key", str(key))
    assert usage.code == 2
    assert len(usage.error_lines) == 1
    assert run(env, "verify-receipt", str(receipt), "--public-key", str(key)).code == 0
    assert list(home.iterdir()) == []
