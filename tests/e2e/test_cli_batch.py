"""`finance post --batch`: the batch use case from the command line, JSON lines or an array, one
line per entry, exit 1 when any entry was refused, errors in one line."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import environment, ok, one_error_line, run


@dataclass(frozen=True)
class Books:
    env: dict[str, str]
    tenant: str
    cash: str
    equity: str


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Books:
    """A tenant with a no-overdraft cash account and an equity account, made with the CLI."""
    env = environment(tmp_path_factory.mktemp("cli-batch"), database_url)
    tenant = f"cli-{uuid.uuid4().hex[:10]}"
    ok(env, "tenants", "create", tenant, "--name", "Batch books")
    accounts = [
        ok(
            env,
            "accounts", "create", "--tenant", tenant, "--code", code, "--name", code,
            "--type", kind, "--currency", "USD", *flags, "--json",
        ).json()["id"]
        for code, kind, flags in (("cash", "asset", ["--no-overdraft"]), ("equity", "equity", []))
    ]  # fmt: skip
    return Books(env, tenant, *accounts)


def item(debit: str, credit: str, amount: int, **extra: Any) -> dict[str, Any]:
    lines = [
        {"account_id": debit, "side": "debit", "amount": amount, "currency": "USD"},
        {"account_id": credit, "side": "credit", "amount": amount, "currency": "USD"},
    ]
    return {"idempotency_key": f"k-{uuid.uuid4().hex}", "lines": lines, **extra}


def json_lines(items: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(i) for i in items) + "\n\n"


def test_a_batch_from_json_lines_prints_one_line_per_entry(books: Books) -> None:
    items = [
        item(books.cash, books.equity, 100),
        item(books.equity, books.cash, 500),  # cash cannot go below zero
        item(books.equity, books.cash, 40),
    ]
    result = run(
        books.env, "post", "--tenant", books.tenant, "--batch", "-", stdin=json_lines(items)
    )

    assert result.code == 1, result
    lines = result.out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("0 created entry ")
    assert lines[1].startswith("1 refused overdraft: account ")
    assert lines[2].startswith("2 created entry ")
    assert result.error_lines == ["error: 1 of 3 entries refused; the others were posted"]

    # The same file again: the posted entries replay, the refused one is evaluated afresh.
    again = run(
        books.env, "post", "--tenant", books.tenant, "--batch", "-", stdin=json_lines(items)
    )
    assert [line.split()[1] for line in again.out.splitlines()] == [
        "replayed",
        "refused",
        "replayed",
    ]
    assert again.out.splitlines()[0] == lines[0].replace("created", "replayed")


def test_a_batch_from_a_json_array_prints_the_api_results(books: Books, tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    items = [
        item(books.cash, books.equity, 5, linked=True, memo="chained"),
        item(books.equity, books.cash, 3),
    ]
    path.write_text(json.dumps(items))
    results = ok(books.env, "post", "--tenant", books.tenant, "--batch", str(path), "--json").json()

    assert [r["status"] for r in results] == ["created", "created"]
    assert [r["index"] for r in results] == [0, 1]
    first, second = (r["entry"] for r in results)
    assert first["memo"] == "chained"
    assert second["sequence"] == first["sequence"] + 1
    assert second["prev_hash"] == first["hash"]

    # The same key from the single command replays the entry the batch posted.
    single = {k: v for k, v in items[0].items() if k not in ("idempotency_key", "linked")}
    replayed = ok(
        books.env,
        "post", "--tenant", books.tenant, "--idempotency-key", items[0]["idempotency_key"],
        "--json",
        stdin=json.dumps(single),
    ).json()  # fmt: skip
    assert replayed == first

    check = ok(books.env, "check", "--tenant", books.tenant, "--json").json()
    assert check["ok"] is True


def test_a_refused_linked_chain_in_json(books: Books) -> None:
    items = [item(books.equity, books.cash, 10**9, linked=True), item(books.cash, books.equity, 1)]
    result = run(books.env, "post", "--tenant", books.tenant, "--batch", "-", "--json",
                 stdin=json.dumps(items))  # fmt: skip
    assert result.code == 1
    results = json.loads(result.out)
    assert [r["error"]["code"] for r in results] == ["overdraft", "linked_entry_failed"]
    assert results[1]["error"]["type"] == "urn:finance:problem:linked_entry_failed"


@pytest.mark.parametrize(
    ("stdin", "code", "starts"),
    [
        ("[{]", 1, "error: invalid batch in -: "),
        ('{"idempotency_key": "a"}\n', 1, "error: invalid batch item in - line 1: lines: "),
        ("\n\n", 1, "error: no batch items in -"),
        (
            '[{"idempotency_key": "a", "lines": [], "linked": true}]',
            1,
            "error: linked_chain_open: ",
        ),
        ('[{"idempotency_key": "a b", "lines": []}]', 1, "error: idempotency_key_invalid: "),
    ],
)
def test_a_bad_batch_is_one_error_line(books: Books, stdin: str, code: int, starts: str) -> None:
    result = run(books.env, "post", "--tenant", books.tenant, "--batch", "-", stdin=stdin)
    one_error_line(result, code, starts)
    assert result.out == ""


def test_a_batch_takes_no_single_key(books: Books) -> None:
    result = run(
        books.env, "post", "--tenant", books.tenant, "--batch", "-", "--idempotency-key", "k",
        stdin="[]",
    )  # fmt: skip
    one_error_line(result, 1, "error: --idempotency-key is for one entry")


def test_a_missing_batch_file_is_exit_2(books: Books, tmp_path: Path) -> None:
    result = run(books.env, "post", "--tenant", books.tenant, "--batch", str(tmp_path / "none"))
    one_error_line(result, 2, "error: cannot read ")
