"""`check_signers`, the start-up check of every configured signer, on fake signers built on the
real Signer protocol: each way a backend can hand back the wrong thing is one readable line."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from finance.adapters.signers.select import TRIAL_MESSAGE, check_signers
from finance.config import ConfigError
from finance.proofs.signing import Algorithm, Signer, SignerError, key_id


def spki_of(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class FakeSigner:
    """An Ed25519 signer whose public key, key_id, algorithm or signature can be made wrong."""

    private: ed25519.Ed25519PrivateKey = field(default_factory=ed25519.Ed25519PrivateKey.generate)
    signs_with: ed25519.Ed25519PrivateKey | None = None
    claimed_alg: Algorithm = Algorithm.ED25519
    claimed_key_id: str | None = None
    fails: bool = False
    messages: list[bytes] = field(default_factory=list)

    @property
    def alg(self) -> Algorithm:
        return self.claimed_alg

    @property
    def key_id(self) -> str:
        return self.claimed_key_id or key_id(self.public_key_spki())

    def public_key_spki(self) -> bytes:
        return spki_of(self.private)

    def sign(self, message: bytes) -> bytes:
        self.messages.append(message)
        if self.fails:
            raise SignerError("HSM unreachable")
        return (self.signs_with or self.private).sign(message)


def problems_of(signers: list[tuple[str, Signer]]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        check_signers(signers, "FINANCE_KMS_KEY_ID")
    return caught.value.problems


def test_good_signers_pass_after_one_trial_signature_each() -> None:
    first, second = FakeSigner(), FakeSigner()
    check_signers([("a", first), ("b", second)], "FINANCE_KMS_KEY_ID")
    assert first.messages == [TRIAL_MESSAGE]
    assert second.messages == [TRIAL_MESSAGE]


def test_the_trial_message_cannot_pass_for_a_signed_object() -> None:
    assert TRIAL_MESSAGE.startswith(b"finance/signer-check/")
    for prefix in (b"finance/checkpoint/", b"finance/range/", b"finance/bundle/"):
        assert not TRIAL_MESSAGE.startswith(prefix)


def test_a_key_id_that_is_not_the_keys_is_refused() -> None:
    signer = FakeSigner(claimed_key_id="00" * 32)
    assert problems_of([("alias/x", signer)]) == [
        "FINANCE_KMS_KEY_ID: alias/x: trial signature failed: signer "
        + "00" * 32
        + " reports a key_id that is not its key's"
    ]


def test_a_signature_by_another_key_is_refused() -> None:
    signer = FakeSigner(signs_with=ed25519.Ed25519PrivateKey.generate())
    [problem] = problems_of([("alias/x", signer)])
    assert problem.endswith("produced a signature that does not verify")


def test_a_key_of_another_algorithm_than_claimed_is_refused() -> None:
    signer = FakeSigner(claimed_alg=Algorithm.ECDSA_P256_SHA256)
    [problem] = problems_of([("alias/x", signer)])
    assert problem.endswith("key does not match ecdsa-p256-sha256")


def test_every_failing_signer_is_reported_on_its_own_line() -> None:
    problems = problems_of(
        [("a", FakeSigner(fails=True)), ("b", FakeSigner()), ("c", FakeSigner(fails=True))]
    )
    assert problems == [
        "FINANCE_KMS_KEY_ID: a: trial signature failed: HSM unreachable",
        "FINANCE_KMS_KEY_ID: c: trial signature failed: HSM unreachable",
    ]


def test_one_key_under_two_names_is_refused() -> None:
    signer = FakeSigner()
    assert problems_of([("alias/new", signer), ("1234", signer)]) == [
        f"FINANCE_KMS_KEY_ID: alias/new and 1234 are the same key ({signer.key_id})"
    ]
