"""`finance torture` as the command line sees it, with the run itself replaced: the exit codes
(0 clean, 1 violations, 130 Ctrl-C), one line on stderr, and the JSON file."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from finance.cli import main as cli_main
from finance.cli import torture as torture_cli
from finance.torture.checker import Report
from finance.torture.run import TortureConfig, TortureResult

FIGURES = {name: 0 for name, _ in torture_cli.FIGURES} | {"sent": 12, "acknowledged": 10}


def finished(report: Report) -> Callable[[TortureConfig, Callable[[str], None]], TortureResult]:
    def run(config: TortureConfig, progress: Callable[[str], None]) -> TortureResult:
        return TortureResult(config, report, [], elapsed_s=1.0)

    return run


def interrupted(config: TortureConfig, progress: Callable[[str], None]) -> TortureResult:
    raise KeyboardInterrupt


def finance(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(cli_main, "log_to_stderr", lambda: None)
    monkeypatch.setattr(sys, "argv", ["finance", "torture", *args])
    try:
        cli_main.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_ctrl_c_exits_130_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torture_cli, "run_torture", interrupted)
    assert finance(monkeypatch, "--seconds", "5") == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def test_violations_exit_1_naming_the_first_and_write_the_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = Report(dict(FIGURES) | {"violations": 1})
    report.add("duplicate", "key t-1-3 posted 2 times (entries 4, 9)")
    monkeypatch.setattr(torture_cli, "run_torture", finished(report))
    out = tmp_path / "torture.json"
    assert finance(monkeypatch, "--seconds", "5", "--json", str(out)) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "error: 1 violation(s); first: duplicate: key t-1-3 posted 2 times (entries 4, 9)\n"
    )
    assert "postings sent (one idempotency key each)" in captured.out
    written = json.loads(out.read_text())
    assert (written["sent"], written["acknowledged"], written["faults_injected"]) == (12, 10, 0)
    assert written["violations"] == [
        {"code": "duplicate", "detail": "key t-1-3 posted 2 times (entries 4, 9)"}
    ]


def test_a_clean_run_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torture_cli, "run_torture", finished(Report(dict(FIGURES))))
    assert finance(monkeypatch, "--seconds", "5") == 0
    assert capsys.readouterr().err == ""
