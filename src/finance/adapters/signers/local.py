"""An Ed25519 key in a PEM file: for development and tests only (docs/proofs.md, section 3.7).

The file is created on first use, mode 0600, and loaded afterwards. Creation is race-safe: the key
is written to a temporary file in the same directory and published with `os.link`, which fails if
the name exists, so the first writer wins and every racer ends up loading the same key. A plain
`open(..., "x")` would publish a half-written file that a concurrent reader could see.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from finance.files import publish_new_file
from finance.proofs.signing import Algorithm, SignerError, key_id

KEY_FILE_MODE = 0o600
KEY_DIR_MODE = 0o700


class LocalSigner:
    """Signs with an Ed25519 key kept in `path` (PKCS#8 PEM, unencrypted)."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._private_key = _load_or_create(self._path)
        self._spki = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._key_id = key_id(self._spki)

    @property
    def alg(self) -> Algorithm:
        return Algorithm.ED25519

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def path(self) -> Path:
        return self._path

    def public_key_spki(self) -> bytes:
        return self._spki

    def sign(self, message: bytes) -> bytes:
        return self._private_key.sign(message)


def _load_or_create(path: Path) -> ed25519.Ed25519PrivateKey:
    try:
        try:
            return _load(path)
        except FileNotFoundError:
            _create(path)
        return _load(path)
    except OSError as exc:
        raise SignerError(f"cannot read key file {path}") from exc


def _load(path: Path) -> ed25519.Ed25519PrivateKey:
    """Read the key; FileNotFoundError passes through so the caller can create it."""
    with path.open("rb") as file:
        # Like ssh: a private key others can read is a leaked key, so refuse rather than use it.
        if stat.S_IMODE(os.fstat(file.fileno()).st_mode) & 0o077:
            raise SignerError(f"key file {path} is readable by group or others; chmod 600 it")
        pem = file.read()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SignerError(f"key file {path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignerError(f"key file {path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _create(path: Path) -> None:
    """Write a new key to a temporary file and link it into place unless someone was first."""
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(mode=KEY_DIR_MODE, parents=True, exist_ok=True)
        # False when another writer was first: its key is the one to use.
        publish_new_file(path, pem, mode=KEY_FILE_MODE)
    except OSError as exc:
        raise SignerError(f"cannot create key file {path}") from exc
