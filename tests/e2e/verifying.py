"""`finance verify` run in this process (main() with argv set), for the many verifier cases:
much faster than a subprocess each, with the same exit codes and output."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from finance.cli import main as cli_main


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def err_line(self) -> str:
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        return lines[0]


class Auditor:
    """Files in a temporary directory and the `finance` command run in this process."""

    def __init__(
        self, root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.root = root
        self._capsys = capsys
        self._monkeypatch = monkeypatch
        # main() would configure process-wide logging; the commands under test log nothing.
        monkeypatch.setattr(cli_main, "log_to_stderr", lambda: None)
        self.key = ""  # the pinned public key's path, set by the test
        self.package = ""  # the file under test's path

    def write(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.write_bytes(data)
        return str(path)

    def finance(self, *args: str) -> Outcome:
        self._monkeypatch.setattr(sys, "argv", ["finance", *args])
        self._capsys.readouterr()
        try:
            cli_main.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = self._capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    def verify(self, *args: str) -> Outcome:
        return self.finance("verify", *args)
