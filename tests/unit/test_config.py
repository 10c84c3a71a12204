"""Unit tests for settings loading (finance.config): defaults and one problem per bad variable."""

from __future__ import annotations

import os

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
