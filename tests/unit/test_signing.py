"""Key identifiers, signature verification and the development key-file signer."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from finance.adapters.signers import local
from finance.adapters.signers.local import LocalSigner
from finance.proofs.signing import (
    Algorithm,
    Signer,
    SignerError,
    key_id,
    load_public_key,
    public_key_pem,
    verify_signature,
)

# RFC 8032 section 7.1, TEST 1: the public key and its signature of the empty message.
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
# The DER SubjectPublicKeyInfo prefix for Ed25519 (RFC 8410), then the 32-byte key.
RFC8032_SPKI = bytes.fromhex("302a300506032b6570032100") + RFC8032_PUBLIC
# `openssl dgst -sha256` of RFC8032_SPKI, computed outside Python.
RFC8032_KEY_ID = "06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9"

MESSAGE = b'finance/checkpoint/v1\n{"seq":42,"tree_size":1000}'


def spki_of(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def new_key_pair(alg: Algorithm) -> tuple[bytes, bytes]:
    """(spki, signature of MESSAGE) for a fresh key of `alg`."""
    if alg is Algorithm.ED25519:
        ed_key = ed25519.Ed25519PrivateKey.generate()
        return spki_of(ed_key), ed_key.sign(MESSAGE)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return spki_of(ec_key), ec_key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))


def flip_bit(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_key_id_is_the_sha256_of_the_spki_computed_elsewhere() -> None:
    assert key_id(RFC8032_SPKI) == RFC8032_KEY_ID


def test_key_id_differs_between_keys() -> None:
    first, _ = new_key_pair(Algorithm.ED25519)
    second, _ = new_key_pair(Algorithm.ED25519)
    assert key_id(first) != key_id(second)


def test_verify_accepts_the_rfc8032_vector_and_nothing_near_it() -> None:
    assert verify_signature(Algorithm.ED25519, RFC8032_SPKI, b"", RFC8032_SIGNATURE)
    assert not verify_signature(Algorithm.ED25519, RFC8032_SPKI, b"\x00", RFC8032_SIGNATURE)
    assert not verify_signature(
        Algorithm.ED25519, RFC8032_SPKI, b"", flip_bit(RFC8032_SIGNATURE, 0)
    )


@pytest.mark.parametrize("alg", list(Algorithm))
def test_verify_accepts_a_good_signature(alg: Algorithm) -> None:
    spki, signature = new_key_pair(alg)
    assert verify_signature(alg, spki, MESSAGE, signature)


@pytest.mark.parametrize("alg", list(Algorithm))
def test_verify_rejects_a_tampered_message(alg: Algorithm) -> None:
    spki, signature = new_key_pair(alg)
    assert not verify_signature(alg, spki, flip_bit(MESSAGE, len(MESSAGE) - 3), signature)
    assert not verify_signature(alg, spki, MESSAGE + b" ", signature)


@pytest.mark.parametrize("alg", list(Algorithm))
def test_verify_rejects_a_tampered_signature(alg: Algorithm) -> None:
    spki, signature = new_key_pair(alg)
    for index in (0, len(signature) // 2, len(signature) - 1):
        assert not verify_signature(alg, spki, MESSAGE, flip_bit(signature, index))


@pytest.mark.parametrize("alg", list(Algorithm))
def test_verify_rejects_garbage_signatures_without_raising(alg: Algorithm) -> None:
    spki, signature = new_key_pair(alg)
    for garbage in (b"", b"\x00", signature[:-1], signature + b"\x00", bytes(64), bytes(72)):
        assert not verify_signature(alg, spki, MESSAGE, garbage)


@pytest.mark.parametrize("alg", list(Algorithm))
def test_verify_rejects_a_signature_by_another_key(alg: Algorithm) -> None:
    _, signature = new_key_pair(alg)
    other_spki, _ = new_key_pair(alg)
    assert not verify_signature(alg, other_spki, MESSAGE, signature)


def test_verify_rejects_a_raw_r_s_ecdsa_signature() -> None:
    # Format confusion: only DER is the wire format, so the raw r||s form of a good signature fails.
    spki, signature = new_key_pair(Algorithm.ECDSA_P256_SHA256)
    r, s = decode_dss_signature(signature)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert not verify_signature(Algorithm.ECDSA_P256_SHA256, spki, MESSAGE, raw)


@pytest.mark.parametrize(
    ("alg", "key_alg"),
    [
        (Algorithm.ED25519, Algorithm.ECDSA_P256_SHA256),
        (Algorithm.ECDSA_P256_SHA256, Algorithm.ED25519),
    ],
)
def test_verify_refuses_a_key_of_another_type(alg: Algorithm, key_alg: Algorithm) -> None:
    spki, signature = new_key_pair(key_alg)
    with pytest.raises(ValueError, match="does not match algorithm"):
        verify_signature(alg, spki, MESSAGE, signature)


def test_verify_refuses_an_ecdsa_key_on_another_curve() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    signature = key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(ValueError, match="does not match algorithm"):
        verify_signature(Algorithm.ECDSA_P256_SHA256, spki_of(key), MESSAGE, signature)


def test_verify_refuses_bytes_that_are_not_a_public_key() -> None:
    with pytest.raises(ValueError, match="SubjectPublicKeyInfo"):
        verify_signature(Algorithm.ED25519, RFC8032_PUBLIC, b"", RFC8032_SIGNATURE)


def test_verify_refuses_an_unknown_algorithm_name() -> None:
    with pytest.raises(ValueError, match="ed25519ph"):
        verify_signature("ed25519ph", RFC8032_SPKI, b"", RFC8032_SIGNATURE)  # type: ignore[arg-type]


def test_load_public_key_returns_the_key_for_its_algorithm() -> None:
    key = load_public_key(Algorithm.ED25519, RFC8032_SPKI)
    assert isinstance(key, ed25519.Ed25519PublicKey)
    assert key.public_bytes_raw() == RFC8032_PUBLIC


def test_public_key_pem_round_trips_to_the_same_spki() -> None:
    pem = public_key_pem(RFC8032_SPKI)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert pem.endswith("-----END PUBLIC KEY-----\n")
    loaded = serialization.load_pem_public_key(pem.encode("ascii"))
    assert (
        loaded.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == RFC8032_SPKI
    )


def test_local_signer_creates_a_private_0600_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "checkpoint.pem"
    old_umask = os.umask(0)  # even a permissive umask must not widen the key file
    try:
        signer = LocalSigner(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pem"]  # no temp left
    assert signer.alg is Algorithm.ED25519


def test_local_signer_signs_what_verify_signature_accepts(tmp_path: Path) -> None:
    signer: Signer = LocalSigner(tmp_path / "key.pem")
    signature = signer.sign(MESSAGE)
    assert len(signature) == 64
    assert signer.key_id == key_id(signer.public_key_spki())
    assert verify_signature(signer.alg, signer.public_key_spki(), MESSAGE, signature)
    assert not verify_signature(signer.alg, signer.public_key_spki(), MESSAGE + b"x", signature)


def test_local_signer_is_stable_across_loads(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    first = LocalSigner(path)
    content = path.read_bytes()
    second = LocalSigner(path)
    assert second.key_id == first.key_id
    assert path.read_bytes() == content
    # Ed25519 is deterministic: the same key gives the same signature.
    assert second.sign(MESSAGE) == first.sign(MESSAGE)


def test_racing_creators_all_get_the_first_writers_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "key.pem"
    racers = 6
    # Hold every thread between "file missing" and "write mine", so all of them really create a
    # key and race on publishing it.
    all_missed = threading.Barrier(racers, timeout=10)
    real_create = local._create

    def create_after_everyone_missed(target: Path) -> None:
        all_missed.wait()
        real_create(target)

    monkeypatch.setattr(local, "_create", create_after_everyone_missed)
    key_ids: list[str] = []
    errors: list[BaseException] = []

    def open_signer() -> None:
        try:
            key_ids.append(LocalSigner(path).key_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_signer) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(key_ids) == racers
    assert len(set(key_ids)) == 1
    assert key_ids[0] == LocalSigner(path).key_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]


def test_local_signer_refuses_a_key_file_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    LocalSigner(path)
    path.chmod(0o640)
    with pytest.raises(SignerError, match="readable by group or others"):
        LocalSigner(path)


def test_local_signer_refuses_a_key_of_another_type(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    with pytest.raises(SignerError, match="not an Ed25519 key"):
        LocalSigner(path)


def test_local_signer_refuses_a_corrupt_key_file_with_the_cause_chained(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    path.chmod(0o600)
    with pytest.raises(SignerError, match="not an unencrypted PEM private key") as caught:
        LocalSigner(path)
    assert isinstance(caught.value.__cause__, ValueError)


def test_local_signer_reports_an_unreadable_path_as_signer_error(tmp_path: Path) -> None:
    path = tmp_path / "a-directory"
    path.mkdir(mode=0o700)
    with pytest.raises(SignerError, match="cannot read key file") as caught:
        LocalSigner(path)
    assert isinstance(caught.value.__cause__, OSError)
