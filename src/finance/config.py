"""Settings, read once from the environment and validated at start-up (warehouse habit).

Names follow the seed deployment guides where they exist (`FINANCE_PORT`,
`FINANCE_DATABASE_URL`, `FINANCE_SERVICE_ENV`, `FINANCE_WRITE_MODE`). A bad value stops the
process with one line per problem naming the variable, never a traceback.
"""

from __future__ import annotations

import enum
import os
import re
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from finance import limits


class ServiceEnv(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class WriteMode(enum.StrEnum):
    READWRITE = "readwrite"
    READONLY = "readonly"


class Switch(enum.StrEnum):
    ON = "on"
    OFF = "off"


# The checkpoint origin is f"{signer id}/{tenant id}": a host-like name, perhaps with a path.
SIGNER_ID_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._:@/-]{0,126}[A-Za-z0-9])?$"


class LogFormat(enum.StrEnum):
    JSON = "json"
    CONSOLE = "console"


class ConfigError(Exception):
    """Settings that cannot be used; `problems` holds one readable line per bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# Audit bundles are kept seven years by default (2,557 days, leap days included): the usual
# retention for books and records (e.g. IRS, SOX section 802, HMRC six years plus the current
# one). Set FINANCE_EXPORT_RETENTION_DAYS to your own regulatory period; in COMPLIANCE mode it
# cannot be shortened once an object is written.
EXPORT_RETENTION_DAYS_DEFAULT = 2_557
EXPORT_RETENTION_DAYS_MAX = 36_500
_S3_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_PREFIX_RE = re.compile(r"[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*")
EXPORT_PREFIX_CHARS_MAX = 512


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("finance", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINANCE_", frozen=True, extra="ignore")

    port: int = Field(default=8445, ge=1, le=65535)
    host: str = "127.0.0.1"
    database_url: str | None = None
    # The owning role, for `finance migrate` and `finance check`; FINANCE_DATABASE_URL when unset.
    admin_database_url: str | None = None
    data_dir: Path = Field(default_factory=_default_data_dir)
    service_env: ServiceEnv = ServiceEnv.DEVELOPMENT
    write_mode: WriteMode = WriteMode.READWRITE
    log_level: str = "info"
    log_format: LogFormat = LogFormat.JSON

    jwt_issuer: str = "finance-local"
    jwt_audience: str = "finance-api"
    # Comma-separated paths of PEM public keys that may sign tokens.
    jwt_public_keys: str = ""
    jwt_jwks_file: Path | None = None
    jwt_jwks_url: str | None = None
    # The local token issuer's private key; created on first use when no keys are configured.
    jwt_issuer_key: Path | None = None

    db_pool_max: int = Field(default=16, ge=1, le=200)
    # Entries per batch (POST /v1/journal/batch, `finance post --batch`): never fewer than the
    # default, which clients may count on.
    batch_entries_max: int = Field(
        default=limits.BATCH_ENTRIES_MAX_DEFAULT,
        ge=limits.BATCH_ENTRIES_MAX_DEFAULT,
        le=limits.BATCH_ENTRIES_MAX_CEILING,
    )

    # Checkpoint signers (docs/operations.md, "Checkpoint signers"): AWS KMS keys, or keys in a
    # PKCS#11 token, or else local Ed25519 key files (development only). Every comma-separated
    # key co-signs every checkpoint, which is how a key hand-over works.
    signer_key_file: str = ""
    kms_key_id: str = ""
    kms_region: str | None = None
    signing_endpoint: str | None = None
    pkcs11_module: str | None = None
    pkcs11_token: str | None = None
    pkcs11_key_label: str = ""
    pkcs11_pin: SecretStr | None = None

    # Where audit bundles go (docs/operations.md, "Audit export store"): a local directory
    # (default <data_dir>/exports), or an S3 bucket with Object Lock when export_bucket is set.
    export_dir: Path | None = None
    export_bucket: str | None = None
    export_prefix: str = ""
    export_retention_days: int = Field(
        default=EXPORT_RETENTION_DAYS_DEFAULT, ge=1, le=EXPORT_RETENTION_DAYS_MAX
    )
    export_kms_key_id: str | None = None
    export_endpoint: str | None = None

    # Signed checkpoints (docs/proofs.md): the background sealer, how often it looks for new
    # entries, and the name of this log's operator in every checkpoint's origin and signature.
    sealer: Switch = Switch.ON
    seal_interval: float = Field(default=1.0, gt=0, le=3600, allow_inf_nan=False)
    signer_id: str = Field(default="finance.local", pattern=SIGNER_ID_PATTERN)

    # Transport security of `finance serve` (docs/operations.md, "Transport security and rate
    # limits"): HTTPS with the server's certificate and key; with a client CA, mutual TLS.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    # Requests per second and burst per caller (token bucket, per process); 0 turns it off.
    rate_limit_per_second: float = Field(
        default=limits.RATE_LIMIT_PER_SECOND_DEFAULT,
        ge=0,
        le=limits.RATE_LIMIT_PER_SECOND_MAX,
        allow_inf_nan=False,
    )
    rate_limit_burst: int = Field(
        default=limits.RATE_LIMIT_BURST_DEFAULT, ge=1, le=limits.RATE_LIMIT_BURST_MAX
    )

    @field_validator("database_url", "admin_database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("kms_region", "pkcs11_module", "pkcs11_token", "pkcs11_pin")
    @classmethod
    def _empty_is_unset(cls, value: str | SecretStr | None) -> str | SecretStr | None:
        if isinstance(value, SecretStr):
            return value if value.get_secret_value() else None
        return value or None

    @field_validator("signing_endpoint")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an https:// (or, for an emulator, http://) URL")
        return value

    @field_validator("signer_key_file", "kms_key_id", "pkcs11_key_label")
    @classmethod
    def _no_repeats(cls, value: str) -> str:
        items = _split(value)
        repeated = sorted({item for item in items if items.count(item) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} more than once")
        return value

    @field_validator("export_dir", "tls_cert", "tls_key", "client_ca", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("export_bucket", "export_kms_key_id", "export_endpoint")
    @classmethod
    def _empty_export_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("export_bucket")
    @classmethod
    def _s3_bucket_name(cls, value: str | None) -> str | None:
        if value is not None and (not _S3_BUCKET_RE.fullmatch(value) or ".." in value):
            raise ValueError(
                "must be an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens"
            )
        return value

    @field_validator("export_prefix")
    @classmethod
    def _s3_prefix(cls, value: str) -> str:
        prefix = value.removesuffix("/")
        if not prefix:
            return ""
        segments = prefix.split("/")
        if (
            len(prefix) > EXPORT_PREFIX_CHARS_MAX
            or not _S3_PREFIX_RE.fullmatch(prefix)
            or any(segment in (".", "..") for segment in segments)
        ):
            raise ValueError(
                "must be a relative key prefix such as finance/exports: '/'-separated segments of"
                " letters, digits and !_.*'()- (no '.' or '..' segment, no leading '/')"
            )
        return prefix

    @field_validator("export_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        levels = ("debug", "info", "warning", "error")
        if value.lower() not in levels:
            raise ValueError(f"must be one of {', '.join(levels)}")
        return value.lower()

    @model_validator(mode="after")
    def _one_export_store(self) -> Settings:
        if self.export_bucket is not None:
            if self.export_dir is not None:
                raise ValueError(
                    "FINANCE_EXPORT_DIR and FINANCE_EXPORT_BUCKET are both set: bundles go to one"
                    " store, unset one of them"
                )
            return self
        s3_only = sorted(
            "FINANCE_" + name.upper()
            for name in (
                "export_prefix",
                "export_retention_days",
                "export_kms_key_id",
                "export_endpoint",
            )
            if name in self.model_fields_set and getattr(self, name) not in (None, "")
        )
        if s3_only:
            verb = "is" if len(s3_only) == 1 else "are"
            raise ValueError(
                f"{', '.join(s3_only)} {verb} only used with FINANCE_EXPORT_BUCKET, which is unset"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_real_infrastructure(self) -> Settings:
        if self.service_env is not ServiceEnv.PRODUCTION:
            return self
        if self.database_url is None:
            raise ValueError(
                "FINANCE_DATABASE_URL must be set when FINANCE_SERVICE_ENV=production"
                " (the embedded PostgreSQL is for development and tests)"
            )
        if not self.uses_external_token_keys:
            # A key file on the service's own disk would let whoever reads it mint admin tokens.
            raise ValueError(
                "FINANCE_JWT_PUBLIC_KEYS, FINANCE_JWT_JWKS_FILE or FINANCE_JWT_JWKS_URL must be"
                " set when FINANCE_SERVICE_ENV=production (the local token issuer is for"
                " development)"
            )
        return self

    @model_validator(mode="after")
    def _usable_tls_files(self) -> Settings:
        problems = tls_problems(self.tls_cert, self.tls_key, self.client_ca)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _one_signer_backend(self) -> Settings:
        problems = signer_problems(self)
        if problems:
            # One line per variable; load_settings splits them back (see _problems).
            raise ValueError("\n".join(problems))
        return self

    @property
    def kms_key_ids(self) -> list[str]:
        return _split(self.kms_key_id)

    @property
    def pkcs11_key_labels(self) -> list[str]:
        return _split(self.pkcs11_key_label)

    @property
    def uses_pkcs11(self) -> bool:
        return any((self.pkcs11_module, self.pkcs11_token, self.pkcs11_key_labels, self.pkcs11_pin))

    @property
    def uses_local_signer(self) -> bool:
        return not self.kms_key_ids and not self.uses_pkcs11

    @property
    def signer_key_paths(self) -> list[Path]:
        """The local signers' key files: FINANCE_SIGNER_KEY_FILE, else one in the data dir."""
        configured = [Path(p).expanduser() for p in _split(self.signer_key_file)]
        return configured or [self.data_dir / "keys" / "ledger-signer.pem"]

    @property
    def public_key_paths(self) -> list[Path]:
        return [Path(p.strip()) for p in self.jwt_public_keys.split(",") if p.strip()]

    @property
    def uses_external_token_keys(self) -> bool:
        return bool(self.public_key_paths or self.jwt_jwks_file or self.jwt_jwks_url)

    @property
    def issuer_key_path(self) -> Path:
        return self.jwt_issuer_key or self.data_dir / "keys" / "token-issuer.pem"

    @property
    def export_directory(self) -> Path:
        """The local bundle store's directory (when no bucket is set)."""
        return self.export_dir or self.data_dir / "exports"

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def runs_sealer(self) -> bool:
        """A read-only service cannot store checkpoints, so it does not try."""
        return self.sealer is Switch.ON and self.write_mode is WriteMode.READWRITE


# Every signer is one HSM or KMS round trip per checkpoint; a hand-over needs two.
SIGNERS_MAX = 4

# Never echoed in a problem line.
SECRET_FIELDS = frozenset({"pkcs11_pin"})

PKCS11_VARIABLES = (
    "FINANCE_PKCS11_MODULE",
    "FINANCE_PKCS11_TOKEN",
    "FINANCE_PKCS11_KEY_LABEL",
    "FINANCE_PKCS11_PIN",
)


def signer_problems(settings: Settings) -> list[str]:
    """One line per signer variable that cannot be used as set."""
    kms, pkcs11 = bool(settings.kms_key_ids), settings.uses_pkcs11
    problems = []
    if kms and pkcs11:
        problems.append(
            "FINANCE_KMS_KEY_ID: cannot be combined with FINANCE_PKCS11_*; choose one signer"
            " (KMS or PKCS#11)"
        )
    if pkcs11:
        given = (
            settings.pkcs11_module,
            settings.pkcs11_token,
            settings.pkcs11_key_labels,
            settings.pkcs11_pin,
        )
        problems.extend(
            f"{name}: must be set with the other PKCS#11 variables ({', '.join(PKCS11_VARIABLES)})"
            for name, value in zip(PKCS11_VARIABLES, given, strict=True)
            if not value
        )
    if settings.signer_key_file and (kms or pkcs11):
        problems.append(
            "FINANCE_SIGNER_KEY_FILE: cannot be combined with FINANCE_KMS_KEY_ID or"
            " FINANCE_PKCS11_*; the local key file would not sign"
        )
    for name, value in (
        ("FINANCE_SIGNING_ENDPOINT", settings.signing_endpoint),
        ("FINANCE_KMS_REGION", settings.kms_region),
    ):
        if value and not kms:
            problems.append(f"{name}: only used with FINANCE_KMS_KEY_ID, which is not set")
    for name, items in (
        ("FINANCE_SIGNER_KEY_FILE", _split(settings.signer_key_file)),
        ("FINANCE_KMS_KEY_ID", settings.kms_key_ids),
        ("FINANCE_PKCS11_KEY_LABEL", settings.pkcs11_key_labels),
    ):
        if len(items) > SIGNERS_MAX:
            problems.append(f"{name}: at most {SIGNERS_MAX} keys co-sign, got {len(items)}")
    production = settings.service_env is ServiceEnv.PRODUCTION
    if production and settings.uses_local_signer:
        problems.append(
            "FINANCE_SIGNER_KEY_FILE: a local key file cannot sign checkpoints when"
            " FINANCE_SERVICE_ENV=production (keys never leave the HSM/KMS): set"
            " FINANCE_KMS_KEY_ID or FINANCE_PKCS11_*"
        )
    endpoint = settings.signing_endpoint
    if production and kms and endpoint and not endpoint.startswith("https://"):
        problems.append(
            "FINANCE_SIGNING_ENDPOINT: must be https:// when FINANCE_SERVICE_ENV=production"
        )
    return problems


TLS_CERT = "FINANCE_TLS_CERT (--tls-cert)"
TLS_KEY = "FINANCE_TLS_KEY (--tls-key)"
CLIENT_CA = "FINANCE_CLIENT_CA (--client-ca)"


def tls_problems(cert: Path | None, key: Path | None, client_ca: Path | None) -> list[str]:
    """One line per TLS setting of `finance serve` that cannot be used: a file that is missing
    or unreadable, or a combination that would not do what it says (a key or a client CA
    without a server certificate would silently serve plain HTTP)."""
    problems = []
    if cert is None:
        if key is not None:
            problems.append(f"{TLS_KEY}: set without {TLS_CERT}, the server certificate")
        if client_ca is not None:
            problems.append(
                f"{CLIENT_CA}: mutual TLS needs a server certificate: set {TLS_CERT} and {TLS_KEY}"
            )
    elif key is None:
        problems.append(f"{TLS_CERT}: set without {TLS_KEY}, the server's private key")
    for name, path in ((TLS_CERT, cert), (TLS_KEY, key), (CLIENT_CA, client_ca)):
        unreadable = None if path is None else _unreadable(path)
        if unreadable:
            problems.append(f"{name}: {path}: {unreadable}")
    return problems


def _unreadable(path: Path) -> str | None:
    """Why `path` cannot be read as a file, or None. Opened rather than stat-ed, so that
    permissions are checked as the server will meet them."""
    if path.is_dir():
        return "is a directory, not a file"
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return (exc.strerror or type(exc).__name__).lower()
    if os.path.getsize(path) == 0:
        return "is empty"
    return None


def load_settings() -> Settings:
    """Read the environment; raise ConfigError with one line per problem."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError([line for error in exc.errors() for line in _problems(error)]) from exc


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _problems(error: object) -> list[str]:
    """A whole-settings check reports lines that already name their variables; keep them."""
    details = error if isinstance(error, dict) else {}
    message = str(details.get("msg", "")).removeprefix("Value error, ")
    if not details.get("loc") and message.startswith("FINANCE_"):
        return message.split("\n")
    return [_describe(error)]


def _describe(error: object) -> str:
    details = error if isinstance(error, dict) else {}
    location = details.get("loc") or ()
    variable = "FINANCE_" + str(location[0]).upper() if location else "settings"
    message = str(details.get("msg", "invalid value")).removeprefix("Value error, ")
    value = details.get("input")
    secret = str(location[0]) in SECRET_FIELDS if location else False
    shown = f" (got {value!r})" if location and not secret and isinstance(value, str | int) else ""
    return f"{variable}: {message}{shown}"
