"""`open_signers`: the signers chosen by configuration, each built on its real backend (key files,
SoftHSM2, a KMS emulator over HTTP) and tried at start-up, with one line per unusable key."""

from __future__ import annotations

import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from finance.adapters.signers.local import LocalSigner
from finance.adapters.signers.select import open_signers, trust_file
from finance.config import ConfigError, ServiceEnv, Settings
from finance.proofs.checkpoint import CheckpointBody, sign_checkpoint, verify_checkpoint
from finance.proofs.signatures import TrustStore
from finance.proofs.signing import Algorithm, Signer, key_id
from tests.kms_server import KmsServer, closed_port_url
from tests.softhsm import Token

SIGNER_ID = "finance.local"  # FINANCE_SIGNER_ID's default; the setting comes with the sealer


def body() -> CheckpointBody:
    return CheckpointBody(
        origin=f"{SIGNER_ID}/t-acme",
        tree_size=3,
        root_hash=b"\x01" * 32,
        chain_head=b"\x02" * 32,
        seq=0,
        prev_checkpoint=None,
        issued_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def assert_co_sign_verifiably(signers: list[Signer]) -> None:
    """Every signer co-signs a checkpoint and each signature verifies against the trust file."""
    signed = sign_checkpoint(body(), [(SIGNER_ID, signer) for signer in signers])
    assert [s.key_id for s in signed.signatures] == [signer.key_id for signer in signers]
    trust = TrustStore.from_json(trust_file(signers))
    assert len(trust) == len(signers)
    verify_checkpoint(signed, trust)
    for signer in signers:  # each key alone is enough for an auditor who pinned only it
        verify_checkpoint(signed, TrustStore.from_json(trust_file([signer])))


def problems_of(settings: Settings) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        open_signers(settings)
    problems = caught.value.problems
    assert all("\n" not in problem and "Traceback" not in problem for problem in problems)
    return problems


# Local key files -------------------------------------------------------------------------------


def test_the_default_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    [first] = open_signers(settings)
    path = tmp_path / "keys" / "ledger-signer.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert first.alg is Algorithm.ED25519
    assert first.key_id == key_id(first.public_key_spki())
    contents = path.read_bytes()
    [again] = open_signers(settings)
    assert again.key_id == first.key_id
    assert path.read_bytes() == contents
    assert again.key_id == LocalSigner(path).key_id


def test_listed_key_files_co_sign_in_the_order_given(tmp_path: Path) -> None:
    old, new = tmp_path / "old.pem", tmp_path / "new.pem"
    [alone] = open_signers(Settings(signer_key_file=str(old), data_dir=tmp_path))
    signers = open_signers(Settings(signer_key_file=f"{old},{new}", data_dir=tmp_path))
    assert [s.key_id for s in signers] == [alone.key_id, LocalSigner(new).key_id]
    assert_co_sign_verifiably(signers)
    assert not (tmp_path / "keys").exists()  # the default file is not made when files are listed


def test_a_copied_key_file_is_refused_as_the_same_key(tmp_path: Path) -> None:
    original, copy = tmp_path / "a.pem", tmp_path / "b.pem"
    [signer] = open_signers(Settings(signer_key_file=str(original), data_dir=tmp_path))
    shutil.copy(original, copy)
    problems = problems_of(Settings(signer_key_file=f"{original},{copy}", data_dir=tmp_path))
    assert problems == [
        f"FINANCE_SIGNER_KEY_FILE: {original} and {copy} are the same key ({signer.key_id})"
    ]


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.pem"
    LocalSigner(path)
    path.chmod(0o640)
    problems = problems_of(Settings(signer_key_file=str(path), data_dir=tmp_path))
    assert problems == [
        f"FINANCE_SIGNER_KEY_FILE: key file {path} is readable by group or others; chmod 600 it"
    ]


def test_a_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.pem"
    path.write_text("not a key\n", encoding="utf-8")
    path.chmod(0o600)
    problems = problems_of(Settings(signer_key_file=str(path), data_dir=tmp_path))
    assert problems == [
        f"FINANCE_SIGNER_KEY_FILE: key file {path} is not an unencrypted PEM private key"
    ]


def test_an_unusable_data_dir_names_both_variables(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    problems = problems_of(Settings(data_dir=blocker))
    key = blocker / "keys" / "ledger-signer.pem"
    assert problems == [
        f"FINANCE_SIGNER_KEY_FILE / FINANCE_DATA_DIR: cannot read key file {key}: Not a directory"
    ]


def test_every_unusable_key_file_is_reported(tmp_path: Path) -> None:
    missing_dir = tmp_path / "blocker"
    missing_dir.write_text("", encoding="utf-8")
    first, second = missing_dir / "a.pem", missing_dir / "b.pem"
    problems = problems_of(Settings(signer_key_file=f"{first},{second}", data_dir=tmp_path))
    assert [p.split(": ", 2)[1] for p in problems] == [
        f"cannot read key file {first}",
        f"cannot read key file {second}",
    ]


@pytest.mark.parametrize("env", [ServiceEnv.DEVELOPMENT, ServiceEnv.TEST])
def test_a_local_key_is_quiet_in_development_and_test(tmp_path: Path, env: ServiceEnv) -> None:
    with capture_logs() as logs:
        [signer] = open_signers(Settings(data_dir=tmp_path, service_env=env))
    assert [log["event"] for log in logs] == ["signer.ready"]
    assert logs[0]["key_id"] == signer.key_id


def test_a_local_key_outside_development_is_a_loud_warning(tmp_path: Path) -> None:
    with capture_logs() as logs:
        [signer] = open_signers(Settings(data_dir=tmp_path, service_env=ServiceEnv.STAGING))
    [warning] = [log for log in logs if log["log_level"] == "warning"]
    assert warning["event"] == "signer.local_key"
    assert warning["key_id"] == signer.key_id
    assert warning["service_env"] == "staging"
    assert "FINANCE_KMS_KEY_ID or FINANCE_PKCS11_*" in warning["detail"]


# PKCS#11 (SoftHSM2) ----------------------------------------------------------------------------


def pkcs11_settings(token: Token, labels: str, *, pin: str | None = None, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "pkcs11_module": token.module_path,
        "pkcs11_token": token.label,
        "pkcs11_key_label": labels,
        "pkcs11_pin": pin or token.pin,
        **extra,
    }
    return Settings(**values)


def test_pkcs11_keys_of_either_algorithm_are_found_by_label(token: Token) -> None:
    ed = token.generate("checkpoint-ed", Algorithm.ED25519)
    ec = token.generate("checkpoint-ec", Algorithm.ECDSA_P256_SHA256)
    signers = open_signers(pkcs11_settings(token, "checkpoint-ec,checkpoint-ed"))
    assert [(s.alg, s.public_key_spki()) for s in signers] == [
        (Algorithm.ECDSA_P256_SHA256, ec),
        (Algorithm.ED25519, ed),
    ]
    assert_co_sign_verifiably(signers)


def test_a_wrong_pin_is_named_once_and_never_shown(token: Token) -> None:
    token.generate("a", Algorithm.ED25519)
    token.generate("b", Algorithm.ED25519)
    problems = problems_of(pkcs11_settings(token, "a,b", pin="0000-wrong"))
    assert problems == [f"FINANCE_PKCS11_PIN: token {token.label!r} refused the PIN (PinIncorrect)"]


def test_a_missing_pkcs11_key_is_named_by_its_label(token: Token) -> None:
    token.generate("present", Algorithm.ED25519)
    problems = problems_of(pkcs11_settings(token, "present,absent"))
    assert problems == [
        "FINANCE_PKCS11_KEY_LABEL: no Ed25519 or ECDSA P-256 key pair labelled 'absent' on token"
        f" {token.label!r}"
    ]


def test_a_label_on_two_key_pairs_is_named(token: Token) -> None:
    token.generate("first", Algorithm.ED25519)
    token.generate_unchecked("twice")
    token.generate_unchecked("twice")
    assert problems_of(pkcs11_settings(token, "first,twice")) == [
        f"FINANCE_PKCS11_KEY_LABEL: more than one key labelled 'twice' on {token.label!r}"
    ]


def test_a_missing_token_is_named(token: Token) -> None:
    settings = pkcs11_settings(token, "checkpoint", pkcs11_token="no-such-token")
    assert problems_of(settings) == [
        f"FINANCE_PKCS11_TOKEN: no token labelled 'no-such-token' in {token.module_path}"
    ]


def test_a_missing_module_is_named(token: Token, tmp_path: Path) -> None:
    missing = tmp_path / "libmissing.so"
    settings = pkcs11_settings(token, "checkpoint", pkcs11_module=str(missing))
    assert problems_of(settings) == [f"FINANCE_PKCS11_MODULE: no such file {missing}"]


def test_a_file_that_is_not_a_pkcs11_module_is_named(token: Token, tmp_path: Path) -> None:
    not_a_library = tmp_path / "libfake.so"
    not_a_library.write_bytes(b"\x7fELF but not really")
    settings = pkcs11_settings(token, "checkpoint", pkcs11_module=str(not_a_library))
    [problem] = problems_of(settings)
    assert problem.startswith(f"FINANCE_PKCS11_MODULE: OS exception while loading {not_a_library}")


# AWS KMS (moto over HTTP) ----------------------------------------------------------------------


def kms_settings(kms: KmsServer, keys: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {"kms_key_id": keys, "signing_endpoint": kms.endpoint, **extra}
    return Settings(**values)


@pytest.mark.usefixtures("aws_env")
def test_kms_keys_co_sign_through_the_endpoint(kms: KmsServer) -> None:
    old, new = kms.create_key(), kms.create_key()
    signers = open_signers(kms_settings(kms, f"{old}, {new}"))
    client = kms.client()
    assert [s.public_key_spki() for s in signers] == [
        bytes(client.get_public_key(KeyId=key)["PublicKey"]) for key in (old, new)
    ]
    assert all(s.alg is Algorithm.ECDSA_P256_SHA256 for s in signers)
    assert_co_sign_verifiably(signers)


@pytest.mark.usefixtures("aws_env")
def test_an_alias_and_its_key_are_refused_as_the_same_key(kms: KmsServer) -> None:
    key = kms.create_key()
    alias = f"alias/finance-{key[:8]}"
    kms.client().create_alias(AliasName=alias, TargetKeyId=key)
    [problem] = problems_of(kms_settings(kms, f"{alias},{key}"))
    assert problem.startswith(f"FINANCE_KMS_KEY_ID: {alias} and {key} are the same key (")


@pytest.mark.usefixtures("aws_env")
def test_a_missing_kms_key_is_one_line_naming_the_variable(kms: KmsServer) -> None:
    missing = "11111111-2222-3333-4444-555555555555"
    [problem] = problems_of(kms_settings(kms, missing))
    assert problem.startswith(f"FINANCE_KMS_KEY_ID: KMS get_public_key for {missing!r} failed:")
    assert "NotFoundException" in problem


@pytest.mark.usefixtures("aws_env")
def test_a_kms_key_that_cannot_sign_is_refused(kms: KmsServer) -> None:
    rsa = kms.create_key("RSA_2048")
    [problem] = problems_of(kms_settings(kms, rsa))
    assert problem.startswith(f"FINANCE_KMS_KEY_ID: KMS key {rsa!r} has spec 'RSA_2048'")


@pytest.mark.usefixtures("aws_env")
def test_an_unreachable_endpoint_names_the_endpoint_variable() -> None:
    url = closed_port_url()
    settings = Settings(kms_key_id="alias/finance", signing_endpoint=url)
    [problem] = problems_of(settings)
    assert problem.startswith("FINANCE_SIGNING_ENDPOINT: KMS get_public_key for 'alias/finance'")
    assert "Could not connect to the endpoint URL" in problem


@pytest.mark.usefixtures("aws_env")
def test_missing_credentials_are_one_line(kms: KmsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    [problem] = problems_of(kms_settings(kms, "alias/finance"))
    assert problem.startswith("FINANCE_KMS_KEY_ID: KMS get_public_key for 'alias/finance'")
    assert "Unable to locate credentials" in problem


@pytest.mark.usefixtures("aws_env")
def test_without_any_region_kms_is_refused_with_the_variable_to_set(
    kms: KmsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert problems_of(kms_settings(kms, "alias/finance")) == [
        "FINANCE_KMS_REGION: no AWS region for KMS; set FINANCE_KMS_REGION or AWS_REGION, or give"
        " the keys as ARNs"
    ]


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize("source", ["FINANCE_KMS_REGION", "AWS_REGION", "ARN"])
def test_the_region_comes_from_the_setting_aws_region_or_the_arn(
    kms: KmsServer, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    key = kms.create_key()  # moto keeps keys per region: only us-east-1 finds it
    arn = f"arn:aws:kms:us-east-1:123456789012:key/{key}"
    extra: dict[str, Any] = {}
    if source == "FINANCE_KMS_REGION":
        extra["kms_region"] = "us-east-1"
    elif source == "AWS_REGION":
        monkeypatch.setenv("AWS_REGION", "us-east-1")
    [signer] = open_signers(kms_settings(kms, arn if source == "ARN" else key, **extra))
    assert signer.key_id == key_id(bytes(kms.client().get_public_key(KeyId=key)["PublicKey"]))


@pytest.mark.usefixtures("aws_env")
def test_finance_kms_region_wins_over_the_aws_variables(
    kms: KmsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = kms.create_key()
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    [signer] = open_signers(kms_settings(kms, key, kms_region="us-east-1"))
    assert signer.alg is Algorithm.ECDSA_P256_SHA256
    # And a region without the key really is another place: the key is not found there.
    [problem] = problems_of(kms_settings(kms, key))
    assert "NotFoundException" in problem


@pytest.mark.usefixtures("aws_env")
def test_a_key_arn_is_used_in_its_own_region(kms: KmsServer) -> None:
    key = kms.create_key()
    arn = f"arn:aws:kms:us-east-1:123456789012:key/{key}"
    [signer] = open_signers(kms_settings(kms, arn, kms_region="eu-west-1"))
    assert signer.alg is Algorithm.ECDSA_P256_SHA256


@pytest.mark.usefixtures("aws_env")
def test_a_missing_aws_profile_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    [problem] = problems_of(Settings(kms_key_id="alias/finance"))
    assert problem.startswith("FINANCE_KMS_KEY_ID: ")
    assert "no-such-profile" in problem


def test_the_trust_file_is_what_truststore_accepts(tmp_path: Path) -> None:
    signers = open_signers(Settings(signer_key_file=f"{tmp_path}/a.pem,{tmp_path}/b.pem"))
    document = trust_file(signers)
    assert list(document) == ["keys"]
    assert [sorted(entry) for entry in document["keys"]] == [["alg", "key_id", "public_key"]] * 2
    trust = TrustStore.from_json(document)
    for signer in signers:
        trusted = trust.get(signer.key_id)
        assert trusted is not None
        assert (trusted.alg, trusted.spki) == (signer.alg, signer.public_key_spki())
