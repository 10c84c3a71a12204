"""The KMS signer against moto's in-process AWS KMS, and against botocore's Stubber for what moto
cannot do: moto 5.2 has no ECC_NIST_EDWARDS25519 keys, so the Ed25519 request is checked against
the real botocore KMS model with a locally made signature standing in for KMS's answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from moto import mock_aws

from finance.adapters.signers.kms import RAW_MESSAGE_BYTES_MAX, KmsSigner
from finance.proofs.signing import Algorithm, Signer, SignerError, key_id, verify_signature

REGION = "us-east-1"
MESSAGE = b'finance/checkpoint/v1\n{"seq":3,"tree_size":99}'
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real account: fake keys, and no profile or config file from the machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms", region_name=REGION)


def create_signing_key(kms: Any, key_spec: str) -> str:
    response = kms.create_key(KeySpec=key_spec, KeyUsage="SIGN_VERIFY")
    return str(response["KeyMetadata"]["KeyId"])


def test_ecdsa_p256_key_signs_what_verify_signature_accepts(kms: Any) -> None:
    kms_key = create_signing_key(kms, "ECC_NIST_P256")
    signer: Signer = KmsSigner(kms_key, kms)
    spki = bytes(kms.get_public_key(KeyId=kms_key)["PublicKey"])
    assert signer.alg is Algorithm.ECDSA_P256_SHA256
    assert signer.public_key_spki() == spki
    assert signer.key_id == key_id(spki)
    signature = signer.sign(MESSAGE)
    assert verify_signature(Algorithm.ECDSA_P256_SHA256, spki, MESSAGE, signature)
    assert not verify_signature(Algorithm.ECDSA_P256_SHA256, spki, MESSAGE + b"!", signature)


def test_kms_itself_agrees_the_signature_is_over_the_raw_message(kms: Any) -> None:
    kms_key = create_signing_key(kms, "ECC_NIST_P256")
    signature = KmsSigner(kms_key, kms).sign(MESSAGE)
    verdict = kms.verify(
        KeyId=kms_key,
        Message=MESSAGE,
        MessageType="RAW",
        Signature=signature,
        SigningAlgorithm="ECDSA_SHA_256",
    )
    assert verdict["SignatureValid"] is True


def test_a_key_found_through_an_alias_has_the_keys_identity(kms: Any) -> None:
    kms_key = create_signing_key(kms, "ECC_NIST_P256")
    kms.create_alias(AliasName="alias/finance-checkpoints", TargetKeyId=kms_key)
    by_alias = KmsSigner("alias/finance-checkpoints", kms)
    assert by_alias.key_id == KmsSigner(kms_key, kms).key_id
    assert verify_signature(
        by_alias.alg, by_alias.public_key_spki(), MESSAGE, by_alias.sign(MESSAGE)
    )


def test_a_message_at_the_raw_limit_is_signed_and_one_byte_more_is_refused(kms: Any) -> None:
    signer = KmsSigner(create_signing_key(kms, "ECC_NIST_P256"), kms)
    largest = b"x" * RAW_MESSAGE_BYTES_MAX
    assert verify_signature(signer.alg, signer.public_key_spki(), largest, signer.sign(largest))
    with pytest.raises(SignerError, match="over KMS's RAW limit of 4096"):
        signer.sign(largest + b"x")


def test_an_unsupported_key_spec_is_refused(kms: Any) -> None:
    kms_key = create_signing_key(kms, "RSA_2048")
    with pytest.raises(SignerError, match="has spec 'RSA_2048'"):
        KmsSigner(kms_key, kms)


def test_a_key_not_meant_for_signing_is_refused(kms: Any) -> None:
    response = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")
    with pytest.raises(SignerError, match="not a SIGN_VERIFY key"):
        KmsSigner(response["KeyMetadata"]["KeyId"], kms)


def test_a_key_of_another_algorithm_than_configured_is_refused(kms: Any) -> None:
    kms_key = create_signing_key(kms, "ECC_NIST_P256")
    with pytest.raises(SignerError, match="not ed25519"):
        KmsSigner(kms_key, kms, alg=Algorithm.ED25519)


def test_a_missing_key_is_a_signer_error_with_the_cause_chained(kms: Any) -> None:
    with pytest.raises(SignerError, match="get_public_key") as caught:
        KmsSigner("11111111-2222-3333-4444-555555555555", kms)
    cause = caught.value.__cause__
    assert isinstance(cause, ClientError)
    assert cause.response["Error"]["Code"] == "NotFoundException"


def test_a_refused_sign_call_is_a_signer_error(kms: Any) -> None:
    signer = KmsSigner(create_signing_key(kms, "ECC_NIST_P256"), kms)
    # moto signs with disabled keys, so KMS's DisabledException is injected with the Stubber.
    with Stubber(kms) as stub:
        stub.add_client_error("sign", service_error_code="DisabledException", http_status_code=400)
        with pytest.raises(SignerError, match="sign with") as caught:
            signer.sign(MESSAGE)
    cause = caught.value.__cause__
    assert isinstance(cause, ClientError)
    assert cause.response["Error"]["Code"] == "DisabledException"


def test_an_unreachable_kms_is_a_signer_error() -> None:
    config = Config(connect_timeout=2, read_timeout=2, retries={"max_attempts": 1})
    client = boto3.client(
        "kms", region_name=REGION, endpoint_url="http://127.0.0.1:9", config=config
    )
    with pytest.raises(SignerError) as caught:
        KmsSigner("alias/finance-checkpoints", client)
    assert isinstance(caught.value.__cause__, EndpointConnectionError)


def ed25519_public_key_response(key: ed25519.Ed25519PrivateKey) -> dict[str, Any]:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "KeyId": KEY_ARN,
        "PublicKey": spki,
        "KeySpec": "ECC_NIST_EDWARDS25519",
        "KeyUsage": "SIGN_VERIFY",
        "SigningAlgorithms": ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
    }


def test_ed25519_asks_kms_for_pure_ed25519_over_the_raw_message() -> None:
    kms_key = ed25519.Ed25519PrivateKey.generate()
    client = boto3.client("kms", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response(
            "get_public_key", ed25519_public_key_response(kms_key), {"KeyId": KEY_ARN}
        )
        stub.add_response(
            "sign",
            {
                "KeyId": KEY_ARN,
                "Signature": kms_key.sign(MESSAGE),
                "SigningAlgorithm": "ED25519_SHA_512",
            },
            {
                "KeyId": KEY_ARN,
                "Message": MESSAGE,
                "MessageType": "RAW",
                "SigningAlgorithm": "ED25519_SHA_512",
            },
        )
        signer = KmsSigner(KEY_ARN, client)
        signature = signer.sign(MESSAGE)
        stub.assert_no_pending_responses()
    assert signer.alg is Algorithm.ED25519
    assert len(signature) == 64
    assert verify_signature(Algorithm.ED25519, signer.public_key_spki(), MESSAGE, signature)


def test_a_signature_by_another_key_than_the_exported_one_is_refused() -> None:
    # A key swapped behind an alias after start-up must not produce an unverifiable checkpoint.
    exported = ed25519.Ed25519PrivateKey.generate()
    swapped_in = ed25519.Ed25519PrivateKey.generate()
    client = boto3.client("kms", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response("get_public_key", ed25519_public_key_response(exported))
        stub.add_response("sign", {"Signature": swapped_in.sign(MESSAGE)})
        signer = KmsSigner(KEY_ARN, client)
        with pytest.raises(SignerError, match="does not verify"):
            signer.sign(MESSAGE)
