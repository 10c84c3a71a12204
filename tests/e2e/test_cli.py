"""The real `finance` command, run as a subprocess against the worker's database."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from finance.auth.tokens import (
    Role,
    TokenVerifier,
    VerificationKey,
    key_id,
    load_or_create_issuer_key,
)
from tests.e2e.helpers import environment, ok, one_error_line, run


@dataclass(frozen=True)
class Books:
    env: dict[str, str]
    data_dir: Path
    database_url: str
    tenant: str
    cash: str
    equity: str

    def journal(self) -> list[tuple[Any, ...]]:
        """The tenant's entries and balances, read straight from the database."""
        with psycopg.connect(self.database_url) as conn:
            entries = conn.execute(
                "SELECT sequence, hash FROM journal_entries WHERE tenant_id = %s ORDER BY sequence",
                (self.tenant,),
            ).fetchall()
            balances = conn.execute(
                "SELECT account_id, debits_posted, credits_posted FROM balances"
                " WHERE tenant_id = %s ORDER BY account_id",
                (self.tenant,),
            ).fetchall()
        return [*entries, *balances]


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Books:
    """A tenant made with the CLI, with a no-overdraft cash account and an equity account."""
    data_dir = tmp_path_factory.mktemp("cli")
    env = environment(data_dir, database_url)
    tenant = f"cli-{uuid.uuid4().hex[:10]}"
    created = ok(env, "tenants", "create", tenant, "--name", "CLI books", "--json")
    assert created.json() == {"tenant_id": tenant, "created": True}
    cash = ok(
        env,
        "accounts", "create", "--tenant", tenant, "--code", "assets:cash", "--name", "Cash",
        "--type", "asset", "--currency", "usd", "--no-overdraft", "--json",
    ).json()  # fmt: skip
    assert cash["currency"] == "USD"
    assert cash["credits_must_not_exceed_debits"] is True
    assert cash["debits_must_not_exceed_credits"] is False
    assert cash["normal_side"] == "debit"
    equity = ok(
        env,
        "accounts", "create", "--tenant", tenant, "--code", "equity", "--name", "Owner",
        "--type", "equity", "--currency", "USD", "--json",
    ).json()  # fmt: skip
    return Books(env, data_dir, database_url, tenant, cash["id"], equity["id"])


def entry_json(debit: str, credit: str, amount: int, **extra: Any) -> str:
    lines = [
        {"account_id": debit, "side": "debit", "amount": amount, "currency": "USD"},
        {"account_id": credit, "side": "credit", "amount": amount, "currency": "USD"},
    ]
    return json.dumps({"lines": lines, **extra})


def test_help() -> None:
    result = run(environment(Path("/nonexistent"), None), "--help")
    assert result.code == 0
    assert "Usage" in result.out
    for command in ("serve", "post", "balance", "check", "token", "tenants", "accounts"):
        assert command in result.out


def test_accounts_list(books: Books) -> None:
    listed = ok(books.env, "accounts", "list", "--tenant", books.tenant, "--json").json()
    assert [(a["code"], a["type"], a["id"]) for a in listed] == [
        ("assets:cash", "asset", books.cash),
        ("equity", "equity", books.equity),
    ]
    table = ok(books.env, "accounts", "list", "--tenant", books.tenant)
    assert "assets:cash" in table.out


def test_token_issue_is_verifiable(books: Books) -> None:
    result = ok(
        books.env, "token", "issue", "--tenant", books.tenant, "--role", "admin", "--ttl", "120"
    )
    token = result.out.strip()
    assert token.count(".") == 2
    assert "\n" not in token
    key_path = books.data_dir / "keys" / "token-issuer.pem"
    assert key_path.exists()
    assert key_path.stat().st_mode & 0o077 == 0
    public = load_or_create_issuer_key(key_path).public_key()
    verifier = TokenVerifier(
        [VerificationKey(key_id(public), public)], issuer="finance-local", audience="finance-api"
    )
    principal = verifier.verify(token)
    assert principal.tenant_id == books.tenant
    assert principal.roles == frozenset({Role.ADMIN})
    assert principal.subject == "cli"

    several = ok(
        books.env,
        "token", "issue", "--tenant", books.tenant, "--role", "viewer", "--role", "accountant",
        "--json",
    ).json()  # fmt: skip
    assert several["roles"] == ["viewer", "accountant"]
    assert verifier.verify(several["token"]).roles == frozenset({Role.VIEWER, Role.ACCOUNTANT})


def test_post_from_file_and_stdin_then_balance(books: Books, tmp_path: Path) -> None:
    path = tmp_path / "entry.json"
    path.write_text(entry_json(books.cash, books.equity, 1_000, memo="from a file"))
    from_file = ok(books.env, "post", "--tenant", books.tenant, str(path), "--json").json()
    assert from_file["memo"] == "from a file"
    assert [ln["amount"] for ln in from_file["lines"]] == [1_000, 1_000]

    stdin = entry_json(books.cash, books.equity, 250, memo="from stdin")
    from_stdin = ok(books.env, "post", "--tenant", books.tenant, "--json", stdin=stdin).json()
    assert from_stdin["memo"] == "from stdin"
    assert from_stdin["sequence"] == from_file["sequence"] + 1
    assert from_stdin["prev_hash"] == from_file["hash"]

    by_code = ok(books.env, "balance", "--tenant", books.tenant, "assets:cash", "--json").json()
    assert by_code["account_id"] == books.cash
    assert by_code["balance"] >= 1_250
    at_first = ok(
        books.env,
        "balance", "--tenant", books.tenant, books.cash,
        "--as-of-sequence", str(from_file["sequence"]), "--json",
    ).json()  # fmt: skip
    assert at_first["as_of_sequence"] == from_file["sequence"]
    assert at_first["debits_posted"] == by_code["debits_posted"] - 250
    before_any = ok(
        books.env,
        "balance", "--tenant", books.tenant, books.equity, "--as-of", "2000-01-01", "--json",
    ).json()  # fmt: skip
    assert (before_any["balance"], before_any["as_of"]) == (0, "2000-01-01")

    checked = ok(books.env, "check", "--tenant", books.tenant, "--json").json()
    assert checked["ok"] is True
    assert checked["results"]
    assert {r["tenant_id"] for r in checked["results"]} == {books.tenant}
    assert all(r["problem"] is None for r in checked["results"])


def test_post_with_idempotency_key_replays(books: Books) -> None:
    stdin = entry_json(books.cash, books.equity, 7, memo="retry me")
    key = f"cli-{uuid.uuid4().hex}"
    args = ("post", "--tenant", books.tenant, "--idempotency-key", key)
    first = ok(books.env, *args, "--json", stdin=stdin).json()
    again = ok(books.env, *args, stdin=stdin)
    assert first["id"] in again.out
    assert "(replayed)" in again.out

    changed = run(books.env, *args, stdin=entry_json(books.cash, books.equity, 8))
    one_error_line(changed, 1, "error: idempotency_key_reused")


def test_unbalanced_post_is_one_error_line(books: Books, tmp_path: Path) -> None:
    before = books.journal()
    lines = [
        {"account_id": books.cash, "side": "debit", "amount": 10, "currency": "USD"},
        {"account_id": books.equity, "side": "credit", "amount": 9, "currency": "USD"},
    ]
    path = tmp_path / "unbalanced.json"
    path.write_text(json.dumps({"lines": lines}))
    result = run(books.env, "post", "--tenant", books.tenant, str(path))
    one_error_line(result, 1, "error: unbalanced_entry")
    assert result.out == ""
    assert books.journal() == before


def test_invalid_entry_file_is_one_error_line(books: Books, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"lines": [{"amount": "10"}]')
    result = run(books.env, "post", "--tenant", books.tenant, str(path))
    one_error_line(result, 1, f"error: invalid entry in {path}")


def test_missing_file_is_exit_2(books: Books, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = run(books.env, "post", "--tenant", books.tenant, str(missing))
    line = one_error_line(result, 2, "error: cannot read")
    assert str(missing) in line


def test_unknown_account_balance_is_exit_1(books: Books) -> None:
    result = run(books.env, "balance", "--tenant", books.tenant, "assets:nowhere", "--json")
    line = one_error_line(result, 1, "error: account_not_found")
    assert "assets:nowhere" in line
    assert result.out == ""


def test_existing_tenant_is_exit_1(books: Books) -> None:
    result = run(books.env, "tenants", "create", books.tenant)
    one_error_line(result, 1, "error: tenant_exists")


def test_large_valid_amount_posts(books: Books) -> None:
    """2**53 + 1 minor units is a valid amount (limit: 2**63 - 1)."""
    stdin = entry_json(books.cash, books.equity, 2**53 + 1)
    result = run(books.env, "post", "--tenant", books.tenant, "--json", stdin=stdin)
    assert result.code == 0, result
    assert result.json()["lines"][0]["amount"] == 2**53 + 1


def test_invalid_configuration_is_exit_2(tmp_path: Path) -> None:
    env = environment(tmp_path, None, FINANCE_PORT="abc", FINANCE_WRITE_MODE="sometimes")
    result = run(env, "tenants", "list")
    line = one_error_line(result, 2, "error: invalid configuration")
    assert "FINANCE_PORT" in line
    assert "'abc'" in line
    assert "FINANCE_WRITE_MODE" in line
    assert result.out == ""
    # Refused before anything started: no embedded database was created.
    assert not (tmp_path / "postgres").exists()


def test_token_for_an_invalid_tenant_is_exit_2(books: Books) -> None:
    result = run(books.env, "token", "issue", "--tenant", "Not A Slug", "--role", "admin")
    assert result.code == 2, result
    assert len(result.error_lines) == 1
    assert result.error_lines[0].startswith("error:")
    assert "tenant" in result.error_lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("token", "issue", "--tenant", "acme", "--role", "root"),
        ("balance", "--tenant", "acme"),
    ],
    ids=["unknown-role", "missing-argument"],
)
def test_usage_errors_are_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Click's usage errors keep their exit code (2) and message; they are not "unexpected"."""
    result = run(environment(tmp_path, None), *args)
    assert result.code == 2, result
    assert len(result.error_lines) == 1, result.err
    assert result.error_lines[0].startswith("error:")
    assert "unexpected" not in result.err
    assert result.out == ""
