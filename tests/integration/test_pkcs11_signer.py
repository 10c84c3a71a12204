"""The PKCS#11 signer against a real software HSM (SoftHSM2), one fresh token per test (the
`token` fixture, tests/softhsm.py)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.exceptions import (
    AttributeSensitive,
    MultipleObjectsReturned,
    NoSuchKey,
    NoSuchToken,
    PinIncorrect,
)

from finance.adapters.signers.pkcs11 import Pkcs11Signer
from finance.proofs.signing import Algorithm, Signer, SignerError, key_id, verify_signature
from tests.softhsm import PIN, TOKEN_LABEL, Token

MESSAGE = b'finance/checkpoint/v1\n{"seq":7,"tree_size":12}'
KEY_TYPES = {Algorithm.ED25519: KeyType.EC_EDWARDS, Algorithm.ECDSA_P256_SHA256: KeyType.EC}


@pytest.mark.parametrize("alg", list(Algorithm))
def test_a_key_made_in_the_token_signs_what_verify_signature_accepts(
    token: Token, alg: Algorithm
) -> None:
    spki = token.generate("checkpoint", alg)
    signer: Signer = token.signer("checkpoint", alg)
    assert signer.alg is alg
    assert signer.public_key_spki() == spki
    assert signer.key_id == key_id(spki)
    signature = signer.sign(MESSAGE)
    assert verify_signature(alg, spki, MESSAGE, signature)
    assert not verify_signature(alg, spki, MESSAGE + b"!", signature)


def test_ed25519_signatures_are_pure_64_byte_and_deterministic(token: Token) -> None:
    token.generate("ed", Algorithm.ED25519)
    signer = token.signer("ed", Algorithm.ED25519)
    signature = signer.sign(MESSAGE)
    assert len(signature) == 64
    assert signer.sign(MESSAGE) == signature


def test_ecdsa_signatures_are_der_over_the_sha256_of_the_message(token: Token) -> None:
    spki = token.generate("ec", Algorithm.ECDSA_P256_SHA256)
    signature = token.signer("ec", Algorithm.ECDSA_P256_SHA256).sign(MESSAGE)
    # Canonical DER: decoding and re-encoding gives back the very same bytes.
    assert encode_dss_signature(*decode_dss_signature(signature)) == signature
    assert verify_signature(Algorithm.ECDSA_P256_SHA256, spki, MESSAGE, signature)


@pytest.mark.parametrize("alg", list(Algorithm))
def test_the_private_key_cannot_leave_the_token(token: Token, alg: Algorithm) -> None:
    token.generate("sealed", alg)
    lib = pkcs11.lib(token.module_path)
    with lib.get_token(token_label=token.label).open(user_pin=token.pin) as session:
        key = session.get_key(ObjectClass.PRIVATE_KEY, KEY_TYPES[alg], "sealed")
        assert key[Attribute.TOKEN] is True
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.NEVER_EXTRACTABLE] is True
        assert key[Attribute.ALWAYS_SENSITIVE] is True
        with pytest.raises(AttributeSensitive):
            key[Attribute.VALUE]


def test_keys_persist_in_the_token_across_library_restarts(token: Token) -> None:
    spki = token.generate("durable", Algorithm.ED25519)
    pkcs11.lib(token.module_path).reinitialize()
    assert token.signer("durable", Algorithm.ED25519).public_key_spki() == spki


def test_a_wrong_pin_is_a_signer_error(token: Token) -> None:
    token.generate("checkpoint", Algorithm.ED25519)
    with pytest.raises(SignerError, match="PinIncorrect") as caught:
        token.signer("checkpoint", Algorithm.ED25519, pin="0000-wrong")
    assert isinstance(caught.value.__cause__, PinIncorrect)


def test_a_missing_key_label_is_a_signer_error(token: Token) -> None:
    token.generate("checkpoint", Algorithm.ED25519)
    with pytest.raises(SignerError, match="NoSuchKey") as caught:
        token.signer("no-such-key", Algorithm.ED25519)
    assert isinstance(caught.value.__cause__, NoSuchKey)


def test_a_key_of_another_type_is_not_found_for_the_algorithm(token: Token) -> None:
    token.generate("ed-only", Algorithm.ED25519)
    with pytest.raises(SignerError) as caught:
        token.signer("ed-only", Algorithm.ECDSA_P256_SHA256)
    assert isinstance(caught.value.__cause__, NoSuchKey)


def test_a_label_on_two_key_pairs_is_a_signer_error_and_nothing_else(token: Token) -> None:
    # python-pkcs11's get_key would leave its search open and fail later in a finalizer, which
    # pytest turns into an error here (warnings are errors) and a CLI prints as a traceback.
    token.generate_unchecked("twice")
    token.generate_unchecked("twice")
    with pytest.raises(SignerError, match="MultipleObjectsReturned") as caught:
        token.signer("twice", Algorithm.ED25519)
    assert isinstance(caught.value.__cause__, MultipleObjectsReturned)
    gc.collect()


def test_a_missing_token_is_a_signer_error(token: Token) -> None:
    with pytest.raises(SignerError) as caught:
        Pkcs11Signer(token.module_path, "no-such-token", PIN, "checkpoint", Algorithm.ED25519)
    assert isinstance(caught.value.__cause__, NoSuchToken)


def test_an_unloadable_module_is_a_signer_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "libmissing.so")
    with pytest.raises(SignerError) as caught:
        Pkcs11Signer(missing, TOKEN_LABEL, PIN, "checkpoint", Algorithm.ED25519)
    assert isinstance(caught.value.__cause__, pkcs11.PKCS11Error)


def test_generate_refuses_a_label_already_taken(token: Token) -> None:
    spki = token.generate("checkpoint", Algorithm.ED25519)
    with pytest.raises(SignerError, match="already holds"):
        token.generate("checkpoint", Algorithm.ECDSA_P256_SHA256)
    assert token.signer("checkpoint", Algorithm.ED25519).public_key_spki() == spki


def test_signers_sharing_a_token_do_not_log_each_other_out(token: Token) -> None:
    # PKCS#11 login state is per process and token; closing one logged-in session logs all out.
    token.generate("ed", Algorithm.ED25519)
    token.generate("ec", Algorithm.ECDSA_P256_SHA256)
    signers = [
        token.signer("ed", Algorithm.ED25519),
        token.signer("ec", Algorithm.ECDSA_P256_SHA256),
    ]
    results: list[bool] = []
    errors: list[BaseException] = []

    def sign_repeatedly(signer: Pkcs11Signer) -> None:
        try:
            for _ in range(5):
                signature = signer.sign(MESSAGE)
                spki = signer.public_key_spki()
                results.append(verify_signature(signer.alg, spki, MESSAGE, signature))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=sign_repeatedly, args=(s,)) for s in signers * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [True] * 20
