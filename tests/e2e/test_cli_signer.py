"""`finance signer public-key`, run as a subprocess in each signer mode: the key it prints is the
key the configured signer signs with, and `--json` is a trust file an auditor can pin."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from finance.adapters.signers.kms import KmsSigner
from finance.adapters.signers.local import LocalSigner
from finance.proofs.checkpoint import CheckpointBody, sign_checkpoint, verify_checkpoint
from finance.proofs.signatures import TrustStore
from finance.proofs.signing import Algorithm, Signer, key_id, public_key_pem
from tests.e2e.helpers import environment, ok, one_error_line, run
from tests.kms_server import DUMMY_AWS_ENV, FOREIGN_AWS_VARIABLES, KmsServer, kms_server
from tests.softhsm import Token, new_token

SIGNER_ID = "finance.local"  # FINANCE_SIGNER_ID's default; the setting comes with the sealer
PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n")


@pytest.fixture(scope="module")
def kms() -> Iterator[KmsServer]:
    with kms_server() as server:
        yield server


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Token:
    """A fresh SoftHSM2 token; SOFTHSM2_CONF is set here, so the commands find it too."""
    return new_token(tmp_path, monkeypatch)


def trust_from(env: dict[str, str]) -> TrustStore:
    return TrustStore.from_json(ok(env, "signer", "public-key", "--json").json())


def assert_trusted(trust: TrustStore, signers: Sequence[Signer]) -> None:
    """A checkpoint signed by these signers verifies against the printed trust file, key by key."""
    body = CheckpointBody(
        origin=f"{SIGNER_ID}/t-cli",
        tree_size=1,
        root_hash=b"\x03" * 32,
        chain_head=b"\x04" * 32,
        seq=0,
        prev_checkpoint=None,
        issued_at=datetime.now(UTC),
    )
    assert len(trust) == len(signers)
    for signer in signers:
        verify_checkpoint(sign_checkpoint(body, [(SIGNER_ID, signer)]), trust)


def pem_keys(output: str) -> list[bytes]:
    """The SPKI of each PEM block; the output holds nothing else."""
    blocks = PEM_BLOCK.findall(output)
    assert "".join(blocks) == output
    return [
        serialization.load_pem_public_key(block.encode()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for block in blocks
    ]


def kms_env(tmp_path: Path, kms: KmsServer, keys: str) -> dict[str, str]:
    env = environment(
        tmp_path, None, FINANCE_KMS_KEY_ID=keys, FINANCE_SIGNING_ENDPOINT=kms.endpoint
    )
    for name in FOREIGN_AWS_VARIABLES:
        env.pop(name, None)
    return {**env, **DUMMY_AWS_ENV}


def pkcs11_env(tmp_path: Path, token: Token, labels: str, pin: str | None = None) -> dict[str, str]:
    return environment(
        tmp_path,
        None,
        FINANCE_PKCS11_MODULE=token.module_path,
        FINANCE_PKCS11_TOKEN=token.label,
        FINANCE_PKCS11_KEY_LABEL=labels,
        FINANCE_PKCS11_PIN=pin or token.pin,
    )


def test_the_local_key_is_created_on_first_use_and_printed(tmp_path: Path) -> None:
    env = environment(tmp_path, None)
    document = ok(env, "signer", "public-key", "--json").json()
    path = tmp_path / "keys" / "ledger-signer.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    signer = LocalSigner(path)
    assert document == {
        "keys": [
            {
                "key_id": signer.key_id,
                "alg": "ed25519",
                "public_key": public_key_pem(signer.public_key_spki()),
            }
        ]
    }
    assert_trusted(TrustStore.from_json(document), [signer])
    # The second start reuses the key: the PEM printed is the same key.
    assert pem_keys(ok(env, "signer", "public-key").out) == [signer.public_key_spki()]


def test_listed_key_files_print_one_pem_block_each(tmp_path: Path) -> None:
    old, new = tmp_path / "old.pem", tmp_path / "new.pem"
    env = environment(tmp_path, None, FINANCE_SIGNER_KEY_FILE=f"{old},{new}")
    printed = pem_keys(ok(env, "signer", "public-key").out)
    assert printed == [LocalSigner(path).public_key_spki() for path in (old, new)]


def test_a_local_key_in_staging_warns_on_stderr_only(tmp_path: Path) -> None:
    env = environment(tmp_path, None, FINANCE_SERVICE_ENV="staging")
    result = ok(env, "signer", "public-key")
    [key] = pem_keys(result.out)
    assert '"event": "signer.local_key"' in result.err
    assert '"level": "warning"' in result.err
    assert key_id(key) in result.err


def test_production_refuses_the_local_key_in_one_line(tmp_path: Path) -> None:
    env = environment(
        tmp_path,
        "postgresql://db.example/finance",
        FINANCE_SERVICE_ENV="production",
        FINANCE_JWT_JWKS_URL="https://idp.example/jwks.json",
    )
    line = one_error_line(run(env, "signer", "public-key"), 2, "error: invalid configuration: ")
    assert "FINANCE_SIGNER_KEY_FILE: a local key file cannot sign checkpoints" in line
    assert "keys never leave the HSM/KMS" in line
    assert not (tmp_path / "keys").exists()


def test_pkcs11_keys_are_printed_with_their_algorithms(tmp_path: Path, token: Token) -> None:
    token.generate("ed", Algorithm.ED25519)
    token.generate("ec", Algorithm.ECDSA_P256_SHA256)
    env = pkcs11_env(tmp_path, token, "ed,ec")
    signers: list[Signer] = [
        token.signer("ed", Algorithm.ED25519),
        token.signer("ec", Algorithm.ECDSA_P256_SHA256),
    ]
    assert pem_keys(ok(env, "signer", "public-key").out) == [s.public_key_spki() for s in signers]
    trust = trust_from(env)
    assert [k.alg for k in (trust.get(s.key_id) for s in signers) if k] == [
        Algorithm.ED25519,
        Algorithm.ECDSA_P256_SHA256,
    ]
    assert_trusted(trust, signers)


def test_a_wrong_pkcs11_pin_is_one_line_without_the_pin(tmp_path: Path, token: Token) -> None:
    token.generate("ed", Algorithm.ED25519)
    result = run(pkcs11_env(tmp_path, token, "ed", pin="9999-wrong"), "signer", "public-key")
    line = one_error_line(result, 2, "error: invalid configuration: FINANCE_PKCS11_PIN: ")
    assert "9999-wrong" not in result.err + result.out
    assert "PinIncorrect" in line


def test_kms_keys_are_printed_and_their_signatures_verify(tmp_path: Path, kms: KmsServer) -> None:
    old, new = kms.create_key(), kms.create_key()
    env = kms_env(tmp_path, kms, f"{old},{new}")
    client = kms.client()
    signers: list[Signer] = [KmsSigner(old, client), KmsSigner(new, client)]
    assert pem_keys(ok(env, "signer", "public-key").out) == [s.public_key_spki() for s in signers]
    trust = trust_from(env)
    assert_trusted(trust, signers)
    assert all(trust.get(s.key_id) is not None for s in signers)


def test_a_missing_kms_key_is_one_line(tmp_path: Path, kms: KmsServer) -> None:
    missing = "11111111-2222-3333-4444-555555555555"
    result = run(kms_env(tmp_path, kms, missing), "signer", "public-key")
    line = one_error_line(result, 2, "error: invalid configuration: FINANCE_KMS_KEY_ID: ")
    assert missing in line
    assert "NotFoundException" in line
