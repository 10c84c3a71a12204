"""Configuration problems found while wiring the service are named, not tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from finance.bootstrap import local_issuer, token_verifier
from finance.config import ConfigError, Settings


def test_missing_public_key_file_names_its_variable(tmp_path: Path) -> None:
    settings = Settings(jwt_public_keys=str(tmp_path / "missing.pem"), data_dir=tmp_path)
    with pytest.raises(ConfigError) as caught:
        token_verifier(settings)
    assert caught.value.problems == [
        f"FINANCE_JWT_PUBLIC_KEYS: No such file or directory: {tmp_path / 'missing.pem'}"
    ]


def test_unusable_jwks_file_names_its_variable(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text("not json", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        token_verifier(Settings(jwt_jwks_file=jwks, data_dir=tmp_path))
    assert caught.value.problems[0].startswith("FINANCE_JWT_JWKS_FILE: ")


def test_unwritable_issuer_key_location_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    settings = Settings(data_dir=blocker)
    with pytest.raises(ConfigError) as caught:
        local_issuer(settings)
    assert caught.value.problems[0].startswith("FINANCE_JWT_ISSUER_KEY / FINANCE_DATA_DIR: ")


def test_local_issuer_key_verifies_its_own_tokens(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from finance.auth.tokens import Role

    settings = Settings(data_dir=tmp_path)
    token = local_issuer(settings).issue(
        tenant_id="acme", roles=[Role.VIEWER], subject="t", ttl_s=60, now=datetime.now(UTC)
    )
    principal = token_verifier(settings).verify(token)
    assert (principal.tenant_id, principal.roles) == ("acme", frozenset({Role.VIEWER}))
