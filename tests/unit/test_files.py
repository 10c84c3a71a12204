"""Durable file writes: a new file never replaces an existing one; a replaced file is whole."""

from __future__ import annotations

import stat
from pathlib import Path

from finance.files import publish_new_file, replace_file


def test_publish_creates_once_with_its_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    assert publish_new_file(target, b"first", mode=0o600) is True
    assert publish_new_file(target, b"second", mode=0o644) is False
    assert target.read_bytes() == b"first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


def test_replace_swaps_the_whole_file_and_sets_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    replace_file(target, b"old", mode=0o600)
    replace_file(target, b"new bytes", mode=0o640)
    assert target.read_bytes() == b"new bytes"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
