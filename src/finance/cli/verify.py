"""`finance verify` and `finance verify-receipt`: the auditor's offline checks
(docs/proofs.md section 8).

They need no database, no network and no settings: only the proof file and keys the auditor
pinned. Exit codes:

    0  valid: one line on stdout saying what was verified
    1  invalid: one line on stderr, "invalid: <check>: <detail>", naming the first failed check
       (with equivocation, stdout carries the two conflicting signed checkpoints as evidence,
       one JCS document per line)
    2  usage or I/O: a missing or unreadable file, a key that is not a usable public key, a
       corrupt state file
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from finance.adapters.state_file import StateFileError, load_state, save_state
from finance.cli.output import CliError, console, errors
from finance.limits import PROOF_PACKAGE_BYTES_MAX, RECEIPT_BYTES_MAX
from finance.proofs.audit_bundle import verify_bundle
from finance.proofs.bundle import BUNDLE_BYTES_MAX
from finance.proofs.checkpoint import SignedCheckpoint
from finance.proofs.range import verify_range_package
from finance.proofs.receipt import verify_receipt
from finance.proofs.signatures import TrustedKey, TrustStore
from finance.proofs.signing import Algorithm, key_id
from finance.proofs.state import AuditorState
from finance.proofs.verification import VerificationFailed

PublicKeys = Annotated[
    list[Path] | None,
    typer.Option(
        "--public-key",
        help="PEM public key to trust (Ed25519 or ECDSA P-256; the algorithm follows the key). "
        "Repeat for several keys.",
    ),
]
TrustFile = Annotated[
    Path | None,
    typer.Option(
        "--trust", help='Trust file {"keys": [{key_id, alg, public_key, valid_from, valid_to}]}'
    ),
]
StateFile = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help="Auditor state: the last verified checkpoint per log. Created on first use, "
        "updated only when everything verifies.",
    ),
]
MaxAge = Annotated[
    int | None,
    typer.Option("--max-age", min=0, help="Refuse a checkpoint issued more than this many s ago"),
]

# A POSIX tar header holds "ustar" at byte 257.
_TAR_MAGIC_OFFSET = 257
_TAR_MAGIC = b"ustar"


@dataclass(frozen=True)
class _Verdict:
    summary: str
    checkpoint: SignedCheckpoint
    state: AuditorState | None


def verify(
    package: Annotated[
        Path, typer.Argument(help="Range proof package (JSON) or audit bundle (tar)")
    ],
    public_key: PublicKeys = None,
    trust: TrustFile = None,
    expect_start: Annotated[
        int | None, typer.Option("--expect-start", min=0, help="The first entry you asked for")
    ] = None,
    expect_end: Annotated[
        int | None,
        typer.Option(
            "--expect-end",
            min=0,
            help="The last entry you asked for; without it a package cut short is valid for "
            "the shorter range",
        ),
    ] = None,
    state: StateFile = None,
    max_age: MaxAge = None,
) -> None:
    """Verify a range proof package or an audit bundle offline: signatures, completeness,
    order, chain, Merkle root; for a bundle also its manifest, files and checkpoint chain.
    Exit 0 valid, 1 invalid (naming the first failed check), 2 usage or I/O error."""
    store = trust_store(public_key or [], trust)
    data = read_proof(package, max(PROOF_PACKAGE_BYTES_MAX, BUNDLE_BYTES_MAX))
    # An audit bundle is a tar, recognised by its content (docs/proofs.md section 9).
    verifier = verify_bundle if _is_tar(data) else verify_range_package

    def run(current: AuditorState | None, now: datetime) -> _Verdict:
        result = verifier(
            data,
            store,
            expect_start=expect_start,
            expect_end=expect_end,
            state=current,
            max_age=_seconds(max_age),
            now=now,
        )
        return _Verdict(result.summary(), result.checkpoint, result.state)

    _report(run, state)


def _is_tar(data: bytes) -> bool:
    return data[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + len(_TAR_MAGIC)] == _TAR_MAGIC


def verify_receipt_command(
    receipt: Annotated[Path, typer.Argument(help="Entry receipt (JSON)")],
    public_key: PublicKeys = None,
    trust: TrustFile = None,
    state: StateFile = None,
    max_age: MaxAge = None,
) -> None:
    """Verify an entry receipt offline: the entry is in a checkpoint signed by a trusted key.
    Exit 0 valid, 1 invalid (naming the failed check), 2 usage or I/O error."""
    store = trust_store(public_key or [], trust)
    data = read_proof(receipt, RECEIPT_BYTES_MAX)

    def run(current: AuditorState | None, now: datetime) -> _Verdict:
        result = verify_receipt(data, store, state=current, max_age=_seconds(max_age), now=now)
        return _Verdict(result.summary(), result.checkpoint, result.state)

    _report(run, state)


def _report(run: Callable[[AuditorState | None, datetime], _Verdict], state: Path | None) -> None:
    """Run a verification with the state file, print the verdict, save the advanced state."""
    current = _load(state)
    try:
        verdict = run(current, datetime.now(UTC))
    except VerificationFailed as exc:
        for document in exc.evidence:
            sys.stdout.write(document.decode("utf-8") + "\n")
        errors.print(f"invalid: {exc.reason}", soft_wrap=True)
        # The line is printed; an empty message tells main() not to print another.
        raise CliError("", exit_code=1) from exc
    line = verdict.summary
    if state is not None and current is not None and verdict.state is not None:
        line += "; " + _state_change(current, verdict.state, verdict.checkpoint)
        if verdict.state != current:
            try:
                save_state(state, verdict.state)
            except StateFileError as exc:
                raise CliError(str(exc), exit_code=2) from exc
    console.print(line, soft_wrap=True)


def _state_change(before: AuditorState, after: AuditorState, checkpoint: SignedCheckpoint) -> str:
    origin = checkpoint.body.origin
    old = before.latest(origin)
    new = after.latest(origin)
    if new is None:  # pragma: no cover - advance always records the checkpoint
        return "state unchanged"
    if old is None:
        return f"state: first checkpoint of this log recorded (seq {new.body.seq})"
    if old.body == new.body:
        return f"state: already at seq {new.body.seq}"
    return f"state: advanced from seq {old.body.seq} to seq {new.body.seq}"


def _load(state: Path | None) -> AuditorState | None:
    if state is None:
        return None
    try:
        return load_state(state)
    except StateFileError as exc:
        raise CliError(str(exc), exit_code=2) from exc


def _seconds(max_age: int | None) -> timedelta | None:
    return None if max_age is None else timedelta(seconds=max_age)


def read_proof(path: Path, limit: int) -> bytes:
    """The proof file's bytes; a missing or unreadable file is exit 2, an oversized one is an
    invalid proof (exit 1), refused before it is read into memory."""
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", exit_code=2) from exc
    if len(data) > limit:
        errors.print(f"invalid: parse: {path} is larger than {limit} bytes", soft_wrap=True)
        raise CliError("", exit_code=1)
    return data


def trust_store(pem_paths: list[Path], trust_path: Path | None) -> TrustStore:
    """The auditor's pinned keys: `--trust` entries (with their validity windows) and
    `--public-key` PEM files (valid at any time). A key given both ways keeps the trust file's
    window."""
    if not pem_paths and trust_path is None:
        raise CliError("give at least one --public-key or a --trust file", exit_code=2)
    keys: dict[str, TrustedKey] = {}
    if trust_path is not None:
        for key in _trust_file(trust_path):
            keys[key.key_id] = key
    for path in pem_paths:
        key = _pem_key(path)
        keys.setdefault(key.key_id, key)
    return TrustStore(keys.values())


def _trust_file(path: Path) -> TrustStore:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read trust file {path}: {exc}", exit_code=2) from exc
    try:
        return TrustStore.from_json(json.loads(text))
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        raise CliError(f"trust file {path} is not usable: {exc}", exit_code=2) from exc


def _pem_key(path: Path) -> TrustedKey:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read public key {path}: {exc.strerror}", exit_code=2) from exc
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CliError(f"{path} is not a PEM public key", exit_code=2) from exc
    if isinstance(key, ed25519.Ed25519PublicKey):
        alg = Algorithm.ED25519
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        alg = Algorithm.ECDSA_P256_SHA256
    else:
        raise CliError(
            f"{path}: a {type(key).__name__} is not an Ed25519 or ECDSA P-256 key", exit_code=2
        )
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TrustedKey(key_id(spki), alg, spki)
