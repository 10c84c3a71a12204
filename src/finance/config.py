"""Settings, read once from the environment and validated at start-up (warehouse habit).

Names follow the seed deployment guides where they exist (`FINANCE_PORT`,
`FINANCE_DATABASE_URL`, `FINANCE_SERVICE_ENV`, `FINANCE_WRITE_MODE`). A bad value stops the
process with one line per problem naming the variable, never a traceback.
"""

from __future__ import annotations

import enum
from pathlib import Path

import platformdirs
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # Signed checkpoints (docs/proofs.md): the background sealer, how often it looks for new
    # entries, and the name of this log's operator in every checkpoint's origin and signature.
    sealer: Switch = Switch.ON
    seal_interval: float = Field(default=1.0, gt=0, le=3600, allow_inf_nan=False)
    signer_id: str = Field(default="finance.local", pattern=SIGNER_ID_PATTERN)

    @field_validator("database_url", "admin_database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        levels = ("debug", "info", "warning", "error")
        if value.lower() not in levels:
            raise ValueError(f"must be one of {', '.join(levels)}")
        return value.lower()

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
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def runs_sealer(self) -> bool:
        """A read-only service cannot store checkpoints, so it does not try."""
        return self.sealer is Switch.ON and self.write_mode is WriteMode.READWRITE


def load_settings() -> Settings:
    """Read the environment; raise ConfigError with one line per problem."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError([_describe(error) for error in exc.errors()]) from exc


def _describe(error: object) -> str:
    details = error if isinstance(error, dict) else {}
    location = details.get("loc") or ()
    variable = "FINANCE_" + str(location[0]).upper() if location else "settings"
    message = str(details.get("msg", "invalid value")).removeprefix("Value error, ")
    value = details.get("input")
    shown = f" (got {value!r})" if location and isinstance(value, str | int) else ""
    return f"{variable}: {message}{shown}"
