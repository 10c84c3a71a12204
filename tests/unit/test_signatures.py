"""Signing any prefixed object: the same machinery checkpoints use, reused by range statements
and bundle manifests (docs/proofs.md 3.3 step 3, 3.6)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from finance.adapters.signers.local import LocalSigner
from finance.proofs.errors import InvalidProof
from finance.proofs.fields import integer, reraise_as
from finance.proofs.signatures import (
    SignatureError,
    TrustStore,
    sign_message,
    signatures_from_json,
    verify_message,
)
from finance.proofs.signing import Algorithm, public_key_pem

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def signer(tmp_path: Path) -> LocalSigner:
    return LocalSigner(tmp_path / "key.pem")


@pytest.fixture
def trust(signer: LocalSigner) -> TrustStore:
    pem = public_key_pem(signer.public_key_spki()).encode()
    return TrustStore.from_pems([(pem, Algorithm.ED25519)])


def test_a_message_verifies_under_its_own_bytes_only(
    signer: LocalSigner, trust: TrustStore
) -> None:
    signatures = sign_message(b"finance/range/v1\n{}", [("ledger", signer)])
    verify_message(b"finance/range/v1\n{}", signatures, trust, NOW, "statement")
    # The same object under another type's prefix is another message: no cross-type replay.
    with pytest.raises(SignatureError, match=r"statement signature by trusted key .* not verify"):
        verify_message(b"finance/bundle/v1\n{}", signatures, trust, NOW, "statement")


def test_signature_lists_round_trip_and_are_bounded(signer: LocalSigner) -> None:
    signatures = sign_message(b"m", [("a", signer), ("b", signer)])
    assert signatures_from_json([s.to_json() for s in signatures]) == signatures
    with pytest.raises(SignatureError, match="must be a list"):
        signatures_from_json({"sig": "x"})
    with pytest.raises(SignatureError, match="more than 64"):
        signatures_from_json([signatures[0].to_json()] * 65)


def test_signing_needs_a_signer() -> None:
    with pytest.raises(ValueError, match="at least one signer"):
        sign_message(b"m", [])


def test_reraise_as_keeps_the_reason_and_the_class() -> None:
    expected = pytest.raises(SignatureError, match="n must be a JSON integer")
    with expected, reraise_as(SignatureError):
        integer(1.0, "n")
    with pytest.raises(SignatureError) as caught, reraise_as(InvalidProof):
        raise SignatureError("already specific")
    assert caught.value.reason == "already specific"
