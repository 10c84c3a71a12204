"""The checkpoint signers chosen by configuration (docs/operations.md, "Checkpoint signers").

Exactly one backend is configured (config.signer_problems holds that line): AWS KMS keys
(FINANCE_KMS_KEY_ID), keys in a PKCS#11 token (FINANCE_PKCS11_*), or else local Ed25519 key
files (FINANCE_SIGNER_KEY_FILE, development and tests only). Every key listed co-signs every
checkpoint: listing the old and the new key for a while is how a key is handed over.

Each signer is tried once here, at start-up: its key_id must be the SHA-256 of its SPKI and a
trial signature must verify, so a wrong PIN, a missing key or an unreachable KMS stops the process
with one line naming the variable, instead of failing at the first checkpoint. The backends'
libraries are imported only when their backend is configured, so other commands do not pay for
boto3 or the PKCS#11 binding.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from finance.config import ConfigError, ServiceEnv, Settings
from finance.proofs.signatures import sign_message
from finance.proofs.signing import Algorithm, Signer, SignerError, public_key_pem

if TYPE_CHECKING:
    from finance.adapters.signers.kms import KmsClient

log = structlog.get_logger(__name__)

# Signed by every signer at start-up and thrown away. The prefix is not the prefix of any signed
# object (finance/checkpoint/v1, finance/range/v1, ...), so a trial signature can never pass for
# the signature of a checkpoint.
TRIAL_MESSAGE = b"finance/signer-check/v1\n"
# The trial signature is thrown away, so the signer id it carries is never seen.
TRIAL_SIGNER_ID = "finance.local"

# A KMS that does not answer must not hold start-up (or a sealer round) for minutes.
KMS_CONNECT_TIMEOUT_S = 5
KMS_READ_TIMEOUT_S = 10
KMS_ATTEMPTS_MAX = 2

# Where a local key file signs without a warning (production refuses it: config.py).
QUIET_LOCAL_ENVS = (ServiceEnv.DEVELOPMENT, ServiceEnv.TEST)

_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):")


def open_signers(settings: Settings) -> list[Signer]:
    """Build and check the configured signers, in the order configured.

    Raises ConfigError with one line per unusable key, naming its variable."""
    if settings.kms_key_ids:
        variable, signers = "FINANCE_KMS_KEY_ID", _kms_signers(settings)
    elif settings.uses_pkcs11:
        variable, signers = "FINANCE_PKCS11_KEY_LABEL", _pkcs11_signers(settings)
    else:
        variable, signers = _local_variable(settings), _local_signers(settings)
    check_signers(signers, variable)
    for name, signer in signers:
        # Debug: every CLI command opens the signers, and its stderr is for errors; `finance
        # serve` names the active key ids in its start line.
        log.debug("signer.ready", key=name, key_id=signer.key_id, alg=str(signer.alg))
    if settings.uses_local_signer and settings.service_env not in QUIET_LOCAL_ENVS:
        _warn_local_keys(signers, settings.service_env)
    return [signer for _, signer in signers]


def trust_file(signers: Sequence[Signer]) -> dict[str, list[dict[str, str]]]:
    """The signers' public keys as a trust file (`TrustStore.from_json`), for auditors to pin."""
    return {
        "keys": [
            {
                "key_id": signer.key_id,
                "alg": str(signer.alg),
                "public_key": public_key_pem(signer.public_key_spki()),
            }
            for signer in signers
        ]
    }


# Local key files ------------------------------------------------------------------------------


def _local_variable(settings: Settings) -> str:
    # The default key file lives in the data directory, like the token issuer's key.
    return (
        "FINANCE_SIGNER_KEY_FILE"
        if settings.signer_key_file
        else "FINANCE_SIGNER_KEY_FILE / FINANCE_DATA_DIR"
    )


def _local_signers(settings: Settings) -> list[tuple[str, Signer]]:
    from finance.adapters.signers.local import LocalSigner

    variable = _local_variable(settings)
    return _build_each(
        [(str(path), path) for path in settings.signer_key_paths],
        lambda path: LocalSigner(path),
        lambda _, exc: f"{variable}: {_one_line(exc)}",
    )


def _warn_local_keys(signers: list[tuple[str, Signer]], service_env: ServiceEnv) -> None:
    for name, signer in signers:
        # Loud on purpose: a key on this host's disk can forge checkpoints if it leaks.
        log.warning(
            "signer.local_key",
            key=name,
            key_id=signer.key_id,
            service_env=service_env.value,
            detail="checkpoints are signed with a key file on this host; use"
            " FINANCE_KMS_KEY_ID or FINANCE_PKCS11_* so the key never leaves a KMS or HSM",
        )


# AWS KMS --------------------------------------------------------------------------------------


def _kms_signers(settings: Settings) -> list[tuple[str, Signer]]:
    from botocore.exceptions import EndpointConnectionError

    from finance.adapters.signers.kms import KmsSigner

    clients: dict[str, KmsClient] = {}  # one per region: a key ARN names its key's region

    def signer(key: str) -> Signer:
        region = _arn_region(key) or _default_region(settings)
        if region not in clients:
            clients[region] = _kms_client(settings, region)
        return KmsSigner(key, clients[region])

    def describe(_: str, exc: SignerError) -> str:
        unreachable = isinstance(exc.__cause__, EndpointConnectionError)
        variable = "FINANCE_SIGNING_ENDPOINT" if unreachable and settings.signing_endpoint else None
        return f"{variable or 'FINANCE_KMS_KEY_ID'}: {_one_line(exc)}"

    return _build_each([(key, key) for key in settings.kms_key_ids], signer, describe)


def _kms_client(settings: Settings, region: str) -> KmsClient:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    config = Config(
        connect_timeout=KMS_CONNECT_TIMEOUT_S,
        read_timeout=KMS_READ_TIMEOUT_S,
        retries={"mode": "standard", "max_attempts": KMS_ATTEMPTS_MAX},
    )
    try:
        client: KmsClient = _aws_session().client(
            "kms", region_name=region, endpoint_url=settings.signing_endpoint, config=config
        )
    except (BotoCoreError, ValueError) as exc:
        raise ConfigError(
            [f"FINANCE_KMS_KEY_ID: cannot make a KMS client: {_one_line(exc)}"]
        ) from exc
    return client


def _aws_session() -> Any:
    """boto3's session: credentials and region from the usual AWS variables and files."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.session.Session()
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        raise ConfigError([f"FINANCE_KMS_KEY_ID: AWS configuration: {_one_line(exc)}"]) from exc


def _arn_region(kms_key_id: str) -> str | None:
    match = _ARN_REGION.match(kms_key_id)
    return match.group(1) if match else None


def _default_region(settings: Settings) -> str:
    """For key ids and aliases: FINANCE_KMS_REGION, else AWS_REGION (which botocore does not
    read), else boto3's own (AWS_DEFAULT_REGION, the profile)."""
    region = settings.kms_region or os.environ.get("AWS_REGION") or _aws_session().region_name
    if not region:
        raise ConfigError(
            [
                "FINANCE_KMS_REGION: no AWS region for KMS; set FINANCE_KMS_REGION or AWS_REGION,"
                " or give the keys as ARNs"
            ]
        )
    return str(region)


# PKCS#11 --------------------------------------------------------------------------------------


def _pkcs11_signers(settings: Settings) -> list[tuple[str, Signer]]:
    module, token, pin = settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin
    if module is None or token is None or pin is None:  # config.signer_problems refuses this
        raise ConfigError(["FINANCE_PKCS11_*: module, token, key label and PIN go together"])
    if not Path(module).is_file():
        raise ConfigError([f"FINANCE_PKCS11_MODULE: no such file {module}"])
    return _build_each(
        [(label, label) for label in settings.pkcs11_key_labels],
        lambda label: _pkcs11_signer(module, token, pin.get_secret_value(), label),
        lambda label, exc: _describe_pkcs11_failure(exc, module, token, label),
    )


def _pkcs11_signer(module: str, token: str, pin: str, label: str) -> Signer:
    """The key pair `label`, Ed25519 or else ECDSA P-256: the token knows its key's type, so the
    operator does not have to repeat it."""
    from pkcs11.exceptions import NoSuchKey

    from finance.adapters.signers.pkcs11 import Pkcs11Signer

    for alg in (Algorithm.ED25519, Algorithm.ECDSA_P256_SHA256):
        try:
            return Pkcs11Signer(module, token, pin, label, alg)
        except SignerError as exc:
            if not isinstance(exc.__cause__, NoSuchKey):
                raise
    raise SignerError(f"no Ed25519 or ECDSA P-256 key pair labelled {label!r} on token {token!r}")


def _describe_pkcs11_failure(exc: SignerError, module: str, token: str, label: str) -> str:
    """Name the variable to fix from the PKCS#11 error; never mention the PIN's value."""
    from pkcs11 import exceptions as p11

    cause = exc.__cause__
    pin_errors = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinExpired)
    if isinstance(cause, (*pin_errors, p11.PinLocked, p11.UserPinNotInitialized)):
        return f"FINANCE_PKCS11_PIN: token {token!r} refused the PIN ({type(cause).__name__})"
    if isinstance(cause, p11.NoSuchToken):
        return f"FINANCE_PKCS11_TOKEN: no token labelled {token!r} in {module}"
    if isinstance(cause, p11.MultipleObjectsReturned):
        return f"FINANCE_PKCS11_KEY_LABEL: more than one key labelled {label!r} on {token!r}"
    if cause is None or isinstance(cause, p11.NoSuchKey):
        return f"FINANCE_PKCS11_KEY_LABEL: {_one_line(exc)}"
    if type(cause) is p11.PKCS11Error and "loading" in str(cause):
        return f"FINANCE_PKCS11_MODULE: {_one_line(cause)}"
    return f"FINANCE_PKCS11_TOKEN: key {label!r}: {_one_line(exc)}"


# Shared ---------------------------------------------------------------------------------------


def _build_each(
    items: list[tuple[str, Any]],
    build: Callable[[Any], Signer],
    describe: Callable[[str, SignerError], str],
) -> list[tuple[str, Signer]]:
    """Build a signer per configured key; report every key that fails, once per problem."""
    built, problems = [], []
    for name, item in items:
        try:
            built.append((name, build(item)))
        except SignerError as exc:
            problems.append(describe(name, exc))
    _raise_if_any(problems)
    return built


def check_signers(signers: Sequence[tuple[str, Signer]], variable: str) -> None:
    """Raise ConfigError unless each `(name, signer)` signs with the key it names (its key_id is
    the SHA-256 of its SPKI, and a trial signature verifies) and no key is listed twice."""
    problems = []
    for name, signer in signers:
        try:
            sign_message(TRIAL_MESSAGE, [(TRIAL_SIGNER_ID, signer)])
        except SignerError as exc:
            problems.append(f"{variable}: {name}: trial signature failed: {_one_line(exc)}")
    _raise_if_any(problems)
    # Two names for one key (an alias and its id, a copied key file) would sign twice with one
    # key_id, which a trust store refuses.
    seen: dict[str, str] = {}
    for name, signer in signers:
        if signer.key_id in seen:
            raise ConfigError(
                [f"{variable}: {seen[signer.key_id]} and {name} are the same key ({signer.key_id})"]
            )
        seen[signer.key_id] = name


def _raise_if_any(problems: list[str]) -> None:
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))  # a wrong PIN fails every label alike


def _one_line(exc: BaseException) -> str:
    """The message, and its OS-level cause's, on one line (no traceback, no botocore newlines)."""
    text = str(exc).strip() or type(exc).__name__
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.strerror and cause.strerror not in text:
        text = f"{text}: {cause.strerror}"
    return " ".join(text.split())
