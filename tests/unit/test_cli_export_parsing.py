"""`finance export`'s pure parts: how --from/--to are read, and the progress bar that appears
only on a terminal."""

from __future__ import annotations

import io
from datetime import date

import pytest
from rich.console import Console

from finance.cli import export
from finance.services.export import DateRange, SequenceRange


def test_two_numbers_are_a_sequence_range_and_two_dates_a_date_range() -> None:
    assert export.parse_span("0", "99") == SequenceRange(0, 99)
    assert export.parse_span("2026-01-01", "2026-01-31") == DateRange(
        date(2026, 1, 1), date(2026, 1, 31)
    )


@pytest.mark.parametrize(
    ("first", "last"),
    [("1", "2026-01-01"), ("-1", "5"), ("1.5", "2"), ("2026-13-01", "2026-12-31"), ("", "1")],
)
def test_anything_else_is_a_usage_error(first: str, last: str) -> None:
    with pytest.raises(ValueError, match="--from"):
        export.parse_span(first, last)


def test_the_progress_bar_shows_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(export, "errors", Console(file=screen, force_terminal=True, width=80))
    with export._progress_bar(enabled=True) as progress:
        assert progress is not None
        progress(500, 1000)
        progress(1000, 1000)
    assert "exporting" in screen.getvalue()
    assert "1000/1000" in screen.getvalue()

    monkeypatch.setattr(export, "errors", Console(file=io.StringIO(), force_terminal=False))
    with export._progress_bar(enabled=True) as progress:
        assert progress is None
    with export._progress_bar(enabled=False) as progress:
        assert progress is None
