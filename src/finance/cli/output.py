"""How commands talk to people (rich tables) and to scripts (`--json`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Names, codes, memos and error details come from tenants: they are printed as they are,
# never read as rich markup ("[bold]", "[/x]"), emoji codes (":smile:") or highlighted.
console = Console(markup=False, emoji=False, highlight=False)
errors = Console(stderr=True, markup=False, emoji=False, highlight=False)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    width: int | None = None,
) -> None:
    """`width`: when stdout is not a terminal (rich then assumes 80 columns), render this wide,
    for tables whose cells would otherwise wrap into narrow strips in a file or a pipe."""
    view = Table(title=Text(title))
    for column in columns:
        view.add_column(Text(column))
    for row in rows:
        view.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    if width is None or console.is_terminal:
        console.print(view)
    else:
        Console(file=console.file, width=width, markup=False, emoji=False, highlight=False).print(
            view
        )


class CliError(Exception):
    """A failure to report as one line on stderr, with an exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
