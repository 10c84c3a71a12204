"""The CLI's log configuration: stderr, at the configured level and format."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from finance.cli.main import log_to_stderr


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    previous = structlog.get_config()
    yield
    structlog.reset_defaults()
    structlog.configure(**previous)


def test_commands_log_json_to_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FINANCE_LOG_LEVEL", raising=False)
    monkeypatch.delenv("FINANCE_LOG_FORMAT", raising=False)
    log_to_stderr()
    structlog.get_logger("test").info("something.happened", n=1)
    out, err = capsys.readouterr()
    assert out == ""
    event = json.loads(err)
    assert (event["event"], event["n"], event["level"]) == ("something.happened", 1, "info")


def test_the_configured_level_and_format_apply(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINANCE_LOG_LEVEL", "warning")
    monkeypatch.setenv("FINANCE_LOG_FORMAT", "console")
    log_to_stderr()
    logger = structlog.get_logger("test")
    logger.info("too.quiet")
    logger.warning("loud.enough")
    out, err = capsys.readouterr()
    assert out == ""
    assert "too.quiet" not in err
    assert "loud.enough" in err
    assert not err.startswith("{")


def test_a_bad_setting_still_logs_to_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command itself reports the bad setting; logging falls back to the defaults."""
    monkeypatch.setenv("FINANCE_PORT", "not-a-port")
    log_to_stderr()
    structlog.get_logger("test").info("still.logged")
    out, err = capsys.readouterr()
    assert out == ""
    assert json.loads(err)["event"] == "still.logged"
