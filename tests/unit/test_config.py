"""Unit tests for settings loading (finance.config): defaults and one problem per bad variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from finance.config import (
    ConfigError,
    LogFormat,
    ServiceEnv,
    Settings,
    Switch,
    WriteMode,
    load_settings,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FINANCE_* variable from the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("FINANCE_"):
            monkeypatch.delenv(name)


def refused(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems, "a ConfigError must say what is wrong"
    assert str(caught.value) == "; ".join(caught.value.problems)
    return caught.value.problems


def test_defaults() -> None:
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert settings.port == 8445
    assert settings.host == "127.0.0.1"
    assert settings.write_mode is WriteMode.READWRITE
    assert settings.service_env is ServiceEnv.DEVELOPMENT
    assert settings.database_url is None
    assert settings.log_level == "info"
    assert settings.log_format is LogFormat.JSON
    assert settings.db_pool_max == 16


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINANCE_PORT", "9000")
    monkeypatch.setenv("FINANCE_WRITE_MODE", "readonly")
    monkeypatch.setenv("FINANCE_SERVICE_ENV", "production")
    monkeypatch.setenv("FINANCE_DATABASE_URL", "postgresql://db.example/finance")
    monkeypatch.setenv("FINANCE_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("FINANCE_JWT_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("FINANCE_KMS_KEY_ID", "alias/finance-checkpoints")
    settings = load_settings()
    assert settings.port == 9000
    assert settings.write_mode is WriteMode.READONLY
    assert settings.service_env is ServiceEnv.PRODUCTION
    assert settings.database_url == "postgresql://db.example/finance"
    assert settings.log_level == "debug"


@pytest.mark.parametrize("port", ["1", "65535"])
def test_port_bounds_are_inclusive(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("FINANCE_PORT", port)
    assert load_settings().port == int(port)


@pytest.mark.parametrize("port", ["abc", "0", "70000", "65536", "-1", "80.5", ""])
def test_bad_port_is_named(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    problems = refused(monkeypatch, FINANCE_PORT=port)
    assert len(problems) == 1
    assert problems[0].startswith("FINANCE_PORT: ")


def test_bad_port_problem_shows_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(monkeypatch, FINANCE_PORT="abc")
    assert "'abc'" in problems[0]


def test_unknown_write_mode_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(monkeypatch, FINANCE_WRITE_MODE="frozen")
    assert len(problems) == 1
    assert problems[0].startswith("FINANCE_WRITE_MODE: ")
    assert "'frozen'" in problems[0]


@pytest.mark.parametrize(
    "url", ["mysql://x", "sqlite:///tmp/x.db", "http://db/finance", "postgresql:/x", "db"]
)
def test_non_postgres_database_url_is_named(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    problems = refused(monkeypatch, FINANCE_DATABASE_URL=url)
    assert len(problems) == 1
    assert problems[0].startswith("FINANCE_DATABASE_URL: ")
    assert "postgresql://" in problems[0]


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db"])
def test_postgres_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("FINANCE_DATABASE_URL", url)
    assert load_settings().database_url == url


def test_empty_database_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINANCE_DATABASE_URL", "")
    assert load_settings().database_url is None


@pytest.mark.parametrize("url", [None, ""])
def test_production_requires_a_database_url(
    monkeypatch: pytest.MonkeyPatch, url: str | None
) -> None:
    env = {"FINANCE_SERVICE_ENV": "production"}
    if url is not None:
        env["FINANCE_DATABASE_URL"] = url
    problems = refused(monkeypatch, **env)
    assert len(problems) == 1
    assert "FINANCE_DATABASE_URL" in problems[0]
    assert "FINANCE_SERVICE_ENV=production" in problems[0]


@pytest.mark.parametrize("env", ["development", "test", "staging"])
def test_other_environments_may_use_the_embedded_database(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.setenv("FINANCE_SERVICE_ENV", env)
    assert load_settings().service_env is ServiceEnv(env)


def test_unknown_service_env_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(monkeypatch, FINANCE_SERVICE_ENV="prod")
    assert len(problems) == 1
    assert problems[0].startswith("FINANCE_SERVICE_ENV: ")


def test_unknown_log_level_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(monkeypatch, FINANCE_LOG_LEVEL="verbose")
    assert problems == [problems[0]]
    assert problems[0].startswith("FINANCE_LOG_LEVEL: ")


def test_every_bad_variable_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(
        monkeypatch,
        FINANCE_PORT="abc",
        FINANCE_WRITE_MODE="frozen",
        FINANCE_DATABASE_URL="mysql://x",
    )
    named = sorted(problem.split(":", 1)[0] for problem in problems)
    assert named == ["FINANCE_DATABASE_URL", "FINANCE_PORT", "FINANCE_WRITE_MODE"]


def test_problems_never_contain_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(monkeypatch, FINANCE_PORT="abc", FINANCE_WRITE_MODE="frozen")
    for problem in problems:
        assert "\n" not in problem
        assert "Traceback" not in problem


def test_production_refuses_the_local_token_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(
        monkeypatch,
        FINANCE_SERVICE_ENV="production",
        FINANCE_DATABASE_URL="postgresql://db.example/finance",
    )
    assert len(problems) == 1
    assert "FINANCE_JWT_PUBLIC_KEYS, FINANCE_JWT_JWKS_FILE or FINANCE_JWT_JWKS_URL" in problems[0]


# Checkpoint signers -------------------------------------------------------------------------

PKCS11_ENV = {
    "FINANCE_PKCS11_MODULE": "/usr/lib/softhsm/libsofthsm2.so",
    "FINANCE_PKCS11_TOKEN": "finance",
    "FINANCE_PKCS11_KEY_LABEL": "checkpoint-2025, checkpoint-2026",
    "FINANCE_PKCS11_PIN": "1234-secret-pin",
}
PRODUCTION_ENV = {
    "FINANCE_SERVICE_ENV": "production",
    "FINANCE_DATABASE_URL": "postgresql://db.example/finance",
    "FINANCE_JWT_JWKS_URL": "https://idp.example/jwks.json",
}


def accepted(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_the_default_signer_is_a_local_key_file_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = accepted(monkeypatch, FINANCE_DATA_DIR=str(tmp_path))
    assert settings.uses_local_signer
    assert not settings.uses_pkcs11
    assert settings.kms_key_ids == []
    assert settings.signer_key_paths == [tmp_path / "keys" / "ledger-signer.pem"]


def test_key_files_are_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = accepted(
        monkeypatch, FINANCE_SIGNER_KEY_FILE=f" {tmp_path}/old.pem ,{tmp_path}/new.pem,"
    )
    assert settings.signer_key_paths == [tmp_path / "old.pem", tmp_path / "new.pem"]


def test_kms_key_ids_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = accepted(
        monkeypatch,
        FINANCE_KMS_KEY_ID="alias/old, arn:aws:kms:eu-west-1:123456789012:key/abc",
        FINANCE_SIGNING_ENDPOINT="https://kms.eu-west-1.amazonaws.com",
        FINANCE_KMS_REGION="eu-west-1",
    )
    assert settings.kms_key_ids == ["alias/old", "arn:aws:kms:eu-west-1:123456789012:key/abc"]
    assert not settings.uses_local_signer
    assert settings.signing_endpoint == "https://kms.eu-west-1.amazonaws.com"
    assert settings.kms_region == "eu-west-1"


def test_a_complete_pkcs11_configuration_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = accepted(monkeypatch, **PKCS11_ENV)
    assert settings.uses_pkcs11
    assert not settings.uses_local_signer
    assert settings.pkcs11_key_labels == ["checkpoint-2025", "checkpoint-2026"]
    assert settings.pkcs11_pin is not None
    assert settings.pkcs11_pin.get_secret_value() == "1234-secret-pin"


def test_the_pkcs11_pin_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = accepted(monkeypatch, **PKCS11_ENV)
    assert "1234-secret-pin" not in repr(settings)
    assert "1234-secret-pin" not in str(settings)
    assert "1234-secret-pin" not in str(settings.model_dump())


def test_problems_never_show_the_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**PKCS11_ENV, "FINANCE_PKCS11_MODULE": "", "FINANCE_KMS_KEY_ID": "alias/x"}
    problems = refused(monkeypatch, **env)
    assert len(problems) == 2
    assert all("1234-secret-pin" not in problem for problem in problems)


def test_kms_and_pkcs11_together_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(monkeypatch, FINANCE_KMS_KEY_ID="alias/finance", **PKCS11_ENV)
    assert len(problems) == 1
    assert problems[0].startswith("FINANCE_KMS_KEY_ID: cannot be combined with FINANCE_PKCS11_*")
    assert "1234-secret-pin" not in problems[0]


@pytest.mark.parametrize("missing", sorted(PKCS11_ENV))
def test_pkcs11_needs_all_four_variables(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    env = {name: value for name, value in PKCS11_ENV.items() if name != missing}
    problems = refused(monkeypatch, **env)
    assert len(problems) == 1
    assert problems[0].startswith(f"{missing}: must be set with the other PKCS#11 variables")


def test_each_missing_pkcs11_variable_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(monkeypatch, FINANCE_PKCS11_TOKEN="finance")
    named = [problem.split(":", 1)[0] for problem in problems]
    assert named == ["FINANCE_PKCS11_MODULE", "FINANCE_PKCS11_KEY_LABEL", "FINANCE_PKCS11_PIN"]


def test_empty_pkcs11_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = accepted(
        monkeypatch,
        FINANCE_PKCS11_MODULE="",
        FINANCE_PKCS11_TOKEN="",
        FINANCE_PKCS11_KEY_LABEL=" , ",
        FINANCE_PKCS11_PIN="",
    )
    assert not settings.uses_pkcs11
    assert settings.pkcs11_pin is None
    assert settings.uses_local_signer


def test_a_key_file_beside_kms_or_pkcs11_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(
        monkeypatch, FINANCE_SIGNER_KEY_FILE="/keys/dev.pem", FINANCE_KMS_KEY_ID="alias/x"
    )
    assert len(problems) == 1
    assert problems[0].startswith("FINANCE_SIGNER_KEY_FILE: cannot be combined with")


def test_checkpoint_defaults() -> None:
    settings = load_settings()
    assert settings.sealer is Switch.ON
    assert settings.seal_interval == 1.0
    assert settings.signer_id == "finance.local"
    assert settings.runs_sealer


def test_checkpoint_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINANCE_SEALER", "off")
    monkeypatch.setenv("FINANCE_SEAL_INTERVAL", "0.25")
    monkeypatch.setenv("FINANCE_SIGNER_ID", "ledger.example.com/acme-prod")
    settings = load_settings()
    assert (settings.sealer, settings.seal_interval) == (Switch.OFF, 0.25)
    assert settings.signer_id == "ledger.example.com/acme-prod"
    assert not settings.runs_sealer


def test_a_read_only_service_runs_no_sealer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINANCE_WRITE_MODE", "readonly")
    assert not load_settings().runs_sealer


@pytest.mark.parametrize(
    ("variable", "value"),
    [("FINANCE_SIGNING_ENDPOINT", "http://127.0.0.1:5000"), ("FINANCE_KMS_REGION", "eu-west-1")],
)
def test_kms_settings_without_a_kms_key_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    problems = refused(monkeypatch, **{variable: value})
    assert problems == [f"{variable}: only used with FINANCE_KMS_KEY_ID, which is not set"]


@pytest.mark.parametrize("url", ["kms.example", "ftp://kms.example", "127.0.0.1:5000"])
def test_the_signing_endpoint_must_be_a_url(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    problems = refused(monkeypatch, FINANCE_KMS_KEY_ID="alias/x", FINANCE_SIGNING_ENDPOINT=url)
    assert len(problems) == 1
    assert problems[0].startswith("FINANCE_SIGNING_ENDPOINT: must be an https:// ")


@pytest.mark.parametrize(
    "variable", ["FINANCE_SIGNER_KEY_FILE", "FINANCE_KMS_KEY_ID", "FINANCE_PKCS11_KEY_LABEL"]
)
def test_a_key_listed_twice_is_refused(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    problems = refused(monkeypatch, **{variable: "k1, k2, k1"})
    assert problems[0].startswith(f"{variable}: lists k1 more than once")


def test_at_most_four_keys_co_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(accepted(monkeypatch, FINANCE_KMS_KEY_ID="a,b,c,d").kms_key_ids) == 4
    problems = refused(monkeypatch, FINANCE_KMS_KEY_ID="a,b,c,d,e")
    assert problems == ["FINANCE_KMS_KEY_ID: at most 4 keys co-sign, got 5"]


def test_production_refuses_the_local_key_file_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(monkeypatch, **PRODUCTION_ENV)
    assert len(problems) == 1
    assert problems[0].startswith("FINANCE_SIGNER_KEY_FILE: a local key file cannot sign")
    assert "keys never leave the HSM/KMS" in problems[0]


def test_production_refuses_an_explicit_key_file_too(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(monkeypatch, FINANCE_SIGNER_KEY_FILE="/keys/ledger.pem", **PRODUCTION_ENV)
    assert problems[0].startswith("FINANCE_SIGNER_KEY_FILE: a local key file cannot sign")


@pytest.mark.parametrize("backend", ["kms", "pkcs11"])
def test_production_accepts_kms_or_pkcs11(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    env = {"FINANCE_KMS_KEY_ID": "alias/finance"} if backend == "kms" else PKCS11_ENV
    assert accepted(monkeypatch, **PRODUCTION_ENV, **env).service_env is ServiceEnv.PRODUCTION


def test_production_wants_an_https_kms_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = refused(
        monkeypatch,
        FINANCE_KMS_KEY_ID="alias/finance",
        FINANCE_SIGNING_ENDPOINT="http://kms.internal",
        **PRODUCTION_ENV,
    )
    assert problems == [
        "FINANCE_SIGNING_ENDPOINT: must be https:// when FINANCE_SERVICE_ENV=production"
    ]


@pytest.mark.parametrize("env", ["development", "test", "staging"])
def test_other_environments_may_use_a_local_key_file(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    assert accepted(monkeypatch, FINANCE_SERVICE_ENV=env).uses_local_signer


def test_signer_problems_each_name_their_variable_on_their_own_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problems = refused(
        monkeypatch,
        FINANCE_KMS_KEY_ID="alias/x",
        FINANCE_PKCS11_TOKEN="finance",
        FINANCE_SIGNER_KEY_FILE="/keys/dev.pem",
    )
    named = [problem.split(":", 1)[0] for problem in problems]
    assert named == [
        "FINANCE_KMS_KEY_ID",
        "FINANCE_PKCS11_MODULE",
        "FINANCE_PKCS11_KEY_LABEL",
        "FINANCE_PKCS11_PIN",
        "FINANCE_SIGNER_KEY_FILE",
    ]
    assert all("\n" not in problem for problem in problems)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FINANCE_SEALER", "yes"),
        ("FINANCE_SEALER", "true"),
        ("FINANCE_SEAL_INTERVAL", "0"),
        ("FINANCE_SEAL_INTERVAL", "-1"),
        ("FINANCE_SEAL_INTERVAL", "nan"),
        ("FINANCE_SEAL_INTERVAL", "inf"),
        ("FINANCE_SEAL_INTERVAL", "soon"),
        ("FINANCE_SIGNER_ID", ""),
        ("FINANCE_SIGNER_ID", "has space"),
        ("FINANCE_SIGNER_ID", "trailing/"),
        ("FINANCE_SIGNER_ID", "new\nline"),
        ("FINANCE_SIGNER_ID", "x" * 129),
    ],
)
def test_bad_checkpoint_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    problems = refused(monkeypatch, **{variable: value})
    assert len(problems) == 1
    assert problems[0].startswith(f"{variable}: ")
