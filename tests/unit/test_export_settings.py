"""The audit export store settings (FINANCE_EXPORT_*): defaults, and one readable line per bad
variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from finance.config import EXPORT_RETENTION_DAYS_DEFAULT, ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("FINANCE_"):
            monkeypatch.delenv(name)


def problems(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return caught.value.problems


def test_defaults_are_the_local_directory_and_seven_years(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.export_directory == tmp_path / "exports"
    assert settings.export_bucket is None
    assert settings.export_retention_days == EXPORT_RETENTION_DAYS_DEFAULT == 2557
    assert (settings.export_prefix, settings.export_kms_key_id, settings.export_endpoint) == (
        "",
        None,
        None,
    )


def test_an_export_directory_and_empty_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINANCE_EXPORT_DIR", str(tmp_path / "bundles"))
    monkeypatch.setenv("FINANCE_EXPORT_BUCKET", "")
    monkeypatch.setenv("FINANCE_EXPORT_KMS_KEY_ID", "")
    settings = load_settings()
    assert settings.export_directory == tmp_path / "bundles"
    assert settings.export_bucket is None
    assert settings.export_kms_key_id is None


def test_an_s3_store(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "FINANCE_EXPORT_BUCKET": "acme-ledger-exports",
        "FINANCE_EXPORT_PREFIX": "finance/exports/",
        "FINANCE_EXPORT_RETENTION_DAYS": "3653",
        "FINANCE_EXPORT_KMS_KEY_ID": "alias/finance-exports",
        "FINANCE_EXPORT_ENDPOINT": "http://127.0.0.1:9000",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.export_bucket == "acme-ledger-exports"
    assert settings.export_prefix == "finance/exports"
    assert settings.export_retention_days == 3653
    assert settings.export_kms_key_id == "alias/finance-exports"
    assert settings.export_endpoint == "http://127.0.0.1:9000"


@pytest.mark.parametrize("bucket", ["ab", "Acme", "acme_exports", "-acme", "acme..x", "a" * 64])
def test_a_bad_bucket_name_is_named(monkeypatch: pytest.MonkeyPatch, bucket: str) -> None:
    found = problems(monkeypatch, FINANCE_EXPORT_BUCKET=bucket)
    assert found == [
        "FINANCE_EXPORT_BUCKET: must be an S3 bucket name: 3 to 63 lower-case letters, digits,"
        f" dots and hyphens (got {bucket!r})"
    ]


@pytest.mark.parametrize("prefix", ["/abs", "a/../b", "a//b", "./a", "a b", "x" * 513])
def test_a_bad_prefix_is_named(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    found = problems(monkeypatch, FINANCE_EXPORT_BUCKET="acme", FINANCE_EXPORT_PREFIX=prefix)
    assert len(found) == 1
    assert found[0].startswith("FINANCE_EXPORT_PREFIX: must be a relative key prefix")


@pytest.mark.parametrize("days", ["0", "-1", "36501", "seven", "1.5"])
def test_a_bad_retention_is_named(monkeypatch: pytest.MonkeyPatch, days: str) -> None:
    found = problems(monkeypatch, FINANCE_EXPORT_BUCKET="acme", FINANCE_EXPORT_RETENTION_DAYS=days)
    assert len(found) == 1
    assert found[0].startswith("FINANCE_EXPORT_RETENTION_DAYS: ")


def test_a_bad_endpoint_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems(monkeypatch, FINANCE_EXPORT_BUCKET="acme", FINANCE_EXPORT_ENDPOINT="s3.local")
    assert found == ["FINANCE_EXPORT_ENDPOINT: must be an http:// or https:// URL (got 's3.local')"]


def test_s3_options_without_a_bucket_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems(
        monkeypatch, FINANCE_EXPORT_KMS_KEY_ID="alias/x", FINANCE_EXPORT_RETENTION_DAYS="30"
    )
    assert found == [
        "FINANCE_EXPORT_KMS_KEY_ID, FINANCE_EXPORT_RETENTION_DAYS are only used with"
        " FINANCE_EXPORT_BUCKET, which is unset"
    ]


def test_a_directory_and_a_bucket_are_refused_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = problems(monkeypatch, FINANCE_EXPORT_DIR=str(tmp_path), FINANCE_EXPORT_BUCKET="acme")
    assert len(found) == 1
    assert "FINANCE_EXPORT_DIR and FINANCE_EXPORT_BUCKET are both set" in found[0]
