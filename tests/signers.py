"""Checkpoint signers for tests: a real local Ed25519 key that can be switched off, as an HSM
or KMS outage would, and the trust store an auditor would pin for it."""

from __future__ import annotations

import threading
from pathlib import Path

from finance.adapters.signers.local import LocalSigner
from finance.proofs.signatures import TrustedKey, TrustStore
from finance.proofs.signing import Algorithm, SignerError

SIGNER_ID = "finance.local"


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


def trust_for(*signers: FlakySigner | LocalSigner) -> TrustStore:
    return TrustStore(TrustedKey(s.key_id, Algorithm.ED25519, s.public_key_spki()) for s in signers)
