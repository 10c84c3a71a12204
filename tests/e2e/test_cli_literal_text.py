"""Text from tenants (names, codes, arguments, error details) is printed literally by the CLI:
never read as rich markup, emoji codes or highlighting."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.e2e.helpers import environment, ok, one_error_line, run

NAMES = ["[/x] bracket", "[bold]cash", "[red]loss[/red]", "[link=http://e.x]pay[/link]"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> dict[str, str]:
    # Wide enough that no cell is wrapped, so each name appears whole on one line.
    return environment(tmp_path_factory.mktemp("cli-text"), database_url, COLUMNS="200")


@pytest.fixture(scope="module")
def tenant(env: dict[str, str]) -> str:
    tenant = f"txt-{uuid.uuid4().hex[:10]}"
    ok(env, "tenants", "create", tenant)
    for number, name in enumerate(NAMES):
        ok(
            env,
            "accounts", "create", "--tenant", tenant, "--code", f"acct-{number}",
            "--name", name, "--type", "asset", "--currency", "USD",
        )  # fmt: skip
    ok(
        env,
        "accounts", "create", "--tenant", tenant, "--code", "x:smile:y", "--name", ":thumbs_up:",
        "--type", "asset", "--currency", "USD",
    )  # fmt: skip
    return tenant


def test_account_table_shows_names_and_codes_literally(env: dict[str, str], tenant: str) -> None:
    listed = ok(env, "accounts", "list", "--tenant", tenant)
    for name in NAMES:
        assert name in listed.out, listed.out
    assert "x:smile:y" in listed.out
    assert ":thumbs_up:" in listed.out
    assert "\U0001f604" not in listed.out  # the :smile: emoji
    assert "\x1b[" not in listed.out  # no colours or styles
    assert f"Accounts of {tenant}" in listed.out


def test_names_survive_json_output_too(env: dict[str, str], tenant: str) -> None:
    listed = ok(env, "accounts", "list", "--tenant", tenant, "--json").json()
    assert [a["name"] for a in listed][: len(NAMES)] == NAMES


def test_balance_table_title_shows_the_code_literally(env: dict[str, str], tenant: str) -> None:
    shown = ok(env, "balance", "--tenant", tenant, "x:smile:y")
    assert "Balance of x:smile:y" in shown.out


@pytest.mark.parametrize("account", ["[/x]", "[bold]cash", "[/]", ":smile:"])
def test_an_unknown_account_with_markup_is_one_literal_error_line(
    env: dict[str, str], tenant: str, account: str
) -> None:
    result = run(env, "balance", "--tenant", tenant, account)
    line = one_error_line(result, 1, "error: account_not_found")
    assert line == f"error: account_not_found: no account with id or code {account!r}"


def test_token_for_an_invalid_tenant_keeps_the_pattern_text(tmp_path: Path) -> None:
    result = run(
        environment(tmp_path, None), "token", "issue", "--tenant", "Not A Slug", "--role", "admin"
    )
    line = one_error_line(result, 2, "error:")
    assert "[a-z0-9]" in line
    assert "[a-z0-9_-]" in line
