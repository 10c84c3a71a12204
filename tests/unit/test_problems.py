"""Unit tests for the translation of exceptions into problem documents (finance.api.problems)."""

from __future__ import annotations

import json

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import errors
from structlog.testing import capture_logs

from finance.api import problems

PROBLEM_JSON = "application/problem+json"


def app_raising(exc: Exception) -> TestClient:
    """A bare app with the problem handlers whose only route raises `exc`."""
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.DataError("invalid byte sequence for encoding UTF8: 0x00"),
        errors.UntranslatableCharacter("unsupported Unicode escape sequence"),
        errors.CharacterNotInRepertoire("invalid byte sequence"),
        errors.NumericValueOutOfRange("bigint out of range"),
        errors.InvalidTextRepresentation("invalid input syntax for type uuid"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_database_data_errors_are_400_invalid_parameter(exc: Exception) -> None:
    with capture_logs() as logs:
        response = app_raising(exc).get("/boom")
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    body = json.loads(response.content)
    assert body["code"] == "invalid_parameter"
    assert body["type"] == "urn:finance:problem:invalid_parameter"
    # The driver's message (which may echo the input) is logged, never returned.
    assert "0x00" not in response.text
    assert "bigint" not in response.text
    assert [entry["log_level"] for entry in logs] == ["warning"]
    assert logs[0]["event"] == "request.invalid_parameter"
    assert logs[0]["path"] == "/boom"
