"""Fixtures shared by the integration tests of the signers: a SoftHSM2 token, a KMS emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kms_server import DUMMY_AWS_ENV, FOREIGN_AWS_VARIABLES, KmsServer, kms_server
from tests.softhsm import Token, new_token


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Token:
    """A freshly initialised SoftHSM2 token under tmp_path."""
    return new_token(tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def kms() -> Iterator[KmsServer]:
    """One KMS emulator for the session; each test makes its own keys."""
    with kms_server() as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and no AWS configuration from the machine."""
    for name in FOREIGN_AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)
