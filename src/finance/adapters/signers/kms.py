"""A signer whose private key lives in AWS KMS, through a boto3 `kms` client (docs/proofs.md,
section 3.7).

* Ed25519: key spec ECC_NIST_EDWARDS25519, algorithm ED25519_SHA_512 with MessageType RAW, which
  is pure RFC 8032 Ed25519 (ED25519_PH_SHA_512 would be the pre-hash variant, never used here).
* ECDSA P-256: key spec ECC_NIST_P256, algorithm ECDSA_SHA_256 with MessageType RAW: KMS hashes
  the message and returns a DER signature.

RAW messages are limited to 4096 bytes by the Sign API; a checkpoint is about 300 bytes, so a bigger
message is refused here rather than silently switched to a digest. Each call is a network round
trip with its own (asymmetric) quota: sign once per checkpoint, never per entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from finance.proofs.signing import Algorithm, SignerError, load_public_key, verify_signature
from finance.proofs.signing import key_id as spki_key_id  # `key_id` here is the KMS key's name

RAW_MESSAGE_BYTES_MAX = 4096

# key spec -> (our algorithm, the KMS signing algorithm that produces it)
_KEY_SPECS = {
    "ECC_NIST_EDWARDS25519": (Algorithm.ED25519, "ED25519_SHA_512"),
    "ECC_NIST_P256": (Algorithm.ECDSA_P256_SHA256, "ECDSA_SHA_256"),
}


class KmsClient(Protocol):
    """The two calls used from a boto3 `kms` client (boto3 clients are built at run time)."""

    def get_public_key(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def sign(self, **kwargs: Any) -> Mapping[str, Any]: ...


class KmsSigner:
    """Signs with the KMS key `key_id` (id, ARN or alias). The algorithm follows from the key's
    spec; pass `alg` to insist on one, so a misconfigured key fails at start-up.

    The constructor fetches the public key once, so an unreachable KMS, a missing key or a key of
    the wrong kind is a SignerError at start-up rather than at the first checkpoint."""

    def __init__(self, key_id: str, client: KmsClient, *, alg: Algorithm | None = None) -> None:
        self._kms_key_id = key_id
        self._client = client
        self._alg, self._signing_algorithm, self._spki = _describe(client, key_id)
        if alg is not None and Algorithm(alg) is not self._alg:
            raise SignerError(f"KMS key {key_id!r} is an {self._alg} key, not {alg}")
        self._key_id = spki_key_id(self._spki)

    def __repr__(self) -> str:
        return f"KmsSigner({self._kms_key_id!r}, alg={self._alg})"

    @property
    def alg(self) -> Algorithm:
        return self._alg

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def kms_key_id(self) -> str:
        return self._kms_key_id

    def public_key_spki(self) -> bytes:
        return self._spki

    def sign(self, message: bytes) -> bytes:
        if len(message) > RAW_MESSAGE_BYTES_MAX:
            raise SignerError(
                f"message of {len(message)} bytes is over KMS's RAW limit of "
                f"{RAW_MESSAGE_BYTES_MAX}; sign the checkpoint, not bulk data"
            )
        try:
            response = self._client.sign(
                KeyId=self._kms_key_id,
                Message=message,
                MessageType="RAW",
                SigningAlgorithm=self._signing_algorithm,
            )
        except (BotoCoreError, ClientError) as exc:
            raise SignerError(f"KMS sign with {self._kms_key_id!r} failed: {exc}") from exc
        signature = bytes(response["Signature"])
        # Paired check: catches a key swapped behind an alias since start-up, or a wrong mode.
        if not verify_signature(self._alg, self._spki, message, signature):
            raise SignerError(f"{self!r} returned a signature that does not verify")
        return signature


def _describe(client: KmsClient, kms_key_id: str) -> tuple[Algorithm, str, bytes]:
    """(algorithm, KMS signing algorithm, SPKI DER) of a signing key, checked."""
    try:
        response = client.get_public_key(KeyId=kms_key_id)
    except (BotoCoreError, ClientError) as exc:
        raise SignerError(f"KMS get_public_key for {kms_key_id!r} failed: {exc}") from exc
    # CustomerMasterKeySpec is the deprecated name AWS still returns beside KeySpec; some
    # emulators (moto 5.2) return only it.
    spec = response.get("KeySpec") or response.get("CustomerMasterKeySpec")
    if spec not in _KEY_SPECS:
        raise SignerError(f"KMS key {kms_key_id!r} has spec {spec!r}; use {sorted(_KEY_SPECS)}")
    alg, signing_algorithm = _KEY_SPECS[spec]
    if response.get("KeyUsage") != "SIGN_VERIFY":
        raise SignerError(f"KMS key {kms_key_id!r} is not a SIGN_VERIFY key")
    if signing_algorithm not in response.get("SigningAlgorithms", ()):
        raise SignerError(f"KMS key {kms_key_id!r} does not offer {signing_algorithm}")
    spki = bytes(response["PublicKey"])
    try:
        load_public_key(alg, spki)
    except ValueError as exc:
        raise SignerError(f"KMS key {kms_key_id!r} exported a public key unfit for {alg}") from exc
    return alg, signing_algorithm, spki
