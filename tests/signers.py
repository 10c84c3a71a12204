"""Signers for tests: in-memory Ed25519 and ECDSA P-256 keys implementing the Signer port, a real
local Ed25519 key that can be switched off (as an HSM or KMS outage would), and the trust store
an auditor would pin for them."""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from finance.adapters.signers.local import LocalSigner
from finance.proofs.signatures import TrustedKey, TrustStore
from finance.proofs.signing import Algorithm, Signer, SignerError, key_id

SIGNER_ID = "finance.local"


class _MemoryKey:
    """The Signer port over a private key held in memory."""

    alg: Algorithm

    def __init__(self, key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def key_id(self) -> str:
        return key_id(self._spki)

    def public_key_spki(self) -> bytes:
        return self._spki

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class MemorySigner(_MemoryKey):
    """Ed25519 from a seed: the same seed gives the same key and, Ed25519 being deterministic,
    the same signatures."""

    alg = Algorithm.ED25519

    def __init__(self, seed: int = 0) -> None:
        self._ed25519 = ed25519.Ed25519PrivateKey.from_private_bytes(seed.to_bytes(32, "big"))
        super().__init__(self._ed25519)

    def sign(self, message: bytes) -> bytes:
        return self._ed25519.sign(message)


class EcdsaSigner(_MemoryKey):
    """ECDSA P-256 over SHA-256, DER signatures (randomised: two signatures of one message
    differ)."""

    alg = Algorithm.ECDSA_P256_SHA256

    def __init__(self) -> None:
        self._ec = ec.generate_private_key(ec.SECP256R1())
        super().__init__(self._ec)

    def sign(self, message: bytes) -> bytes:
        return self._ec.sign(message, ec.ECDSA(hashes.SHA256()))


class FlakySigner:
    """A LocalSigner whose `sign` fails with SignerError while `down` is set."""

    def __init__(self, path: Path) -> None:
        self._signer = LocalSigner(path)
        self._down = threading.Event()
        self.calls = 0

    @property
    def alg(self) -> Algorithm:
        return self._signer.alg

    @property
    def key_id(self) -> str:
        return self._signer.key_id

    def public_key_spki(self) -> bytes:
        return self._signer.public_key_spki()

    def sign(self, message: bytes) -> bytes:
        self.calls += 1
        if self._down.is_set():
            raise SignerError("HSM unreachable (test outage)")
        return self._signer.sign(message)

    def go_down(self) -> None:
        self._down.set()

    def come_back(self) -> None:
        self._down.clear()


def trust_for(*signers: Signer) -> TrustStore:
    """The trust store of an auditor who pinned these signers' public keys."""
    return TrustStore(TrustedKey(s.key_id, s.alg, s.public_key_spki()) for s in signers)
