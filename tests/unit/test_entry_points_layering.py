"""The entry points stay thin: the CLI does not reach into the web layer, and neither reads
storage except through the use cases (services)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit.test_architecture import SRC, imported_modules, is_within

# The API's request and response shapes are shared (finance.api.schemas); its routing,
# dependencies and error mapping are web-only.
WEB_ONLY = ("finance.api.routers", "finance.api.deps", "finance.api.problems", "fastapi")
READS = {"list_accounts", "list_entries", "trial_balance", "account_lines"}


def cli_modules() -> list[Path]:
    return sorted((SRC / "cli").glob("*.py"))


@pytest.mark.parametrize("path", cli_modules(), ids=lambda p: p.name)
def test_cli_imports_nothing_web_only(path: Path) -> None:
    for name in imported_modules(path):
        assert not is_within(name, WEB_ONLY), f"cli/{path.name} imports {name}"


def storage_reads(path: Path) -> list[str]:
    """Calls like `tx.list_accounts(...)`: a read on the transaction, not via a use case."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno} tx.{node.func.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "tx"
        and node.func.attr in READS
    ]


def test_routers_and_commands_read_through_the_query_use_cases() -> None:
    paths = [*sorted((SRC / "api" / "routers").glob("*.py")), *cli_modules()]
    found = [call for path in paths for call in storage_reads(path)]
    assert found == []
