"""Shared helpers of the end-to-end tests: requests, problem checks and ledger snapshots."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = ("type", "title", "status", "code", "detail")


def key() -> str:
    """A fresh Idempotency-Key."""
    return f"k-{uuid.uuid4().hex}"


def writing(auth: dict[str, str], idempotency_key: str | None = None) -> dict[str, str]:
    """Headers for a write: the caller's token and an Idempotency-Key."""
    return {**auth, "Idempotency-Key": idempotency_key or key()}


def assert_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and stable code."""
    assert response.status_code == status, response.text
    media_type = response.headers["content-type"].split(";")[0].strip()
    assert media_type == PROBLEM_JSON, response.headers["content-type"]
    body: dict[str, Any] = response.json()
    missing = [name for name in PROBLEM_FIELDS if name not in body]
    assert not missing, f"problem lacks {missing}: {body}"
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"] == f"urn:finance:problem:{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert "Traceback" not in response.text
    return body


def line(account_id: str, side: str, amount: Any, currency: str = "USD") -> dict[str, Any]:
    return {"account_id": account_id, "side": side, "amount": amount, "currency": currency}


def pair(debit: str, credit: str, amount: Any, currency: str = "USD") -> list[dict[str, Any]]:
    """A balanced two-line entry body's lines."""
    return [line(debit, "debit", amount, currency), line(credit, "credit", amount, currency)]


def open_account(
    client: TestClient,
    auth: dict[str, str],
    code: str,
    kind: str,
    currency: str = "USD",
    **extra: Any,
) -> str:
    response = client.post(
        "/v1/accounts",
        json={"code": code, "name": code.title(), "type": kind, "currency": currency, **extra},
        headers=writing(auth),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def post_entry(
    client: TestClient,
    auth: dict[str, str],
    lines: list[dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    response = client.post("/v1/journal", json={"lines": lines, **extra}, headers=writing(auth))
    assert response.status_code == 201, response.text
    entry: dict[str, Any] = response.json()
    return entry


def get_json(client: TestClient, url: str, auth: dict[str, str], **params: Any) -> Any:
    response = client.get(url, headers=auth, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def snapshot(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    """Everything a tenant can read: entries, accounts, each balance and the trial balance."""
    entries = get_json(client, "/v1/journal", auth, limit=500)
    accounts = get_json(client, "/v1/accounts", auth, limit=500)
    balances = {
        account["id"]: get_json(client, f"/v1/accounts/{account['id']}/balance", auth)
        for account in accounts["data"]
    }
    return {
        "entries": entries,
        "accounts": accounts,
        "balances": balances,
        "trial_balance": get_json(client, "/v1/trial-balance", auth),
    }


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()


# The `finance` command ---------------------------------------------------------------


def finance_command() -> list[str]:
    """The installed console script next to this interpreter, else on PATH, else the module."""
    beside = Path(sys.executable).with_name("finance")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("finance")
    return [found] if found else [sys.executable, "-m", "finance.cli.main"]


FINANCE = finance_command()


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_lines(self) -> list[str]:
        return self.err.splitlines()


def environment(data_dir: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("FINANCE_")}
    env["FINANCE_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        env["FINANCE_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Run:
    completed = subprocess.run(
        [*FINANCE, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    result = Run(completed.returncode, completed.stdout, completed.stderr)
    assert "Traceback" not in result.out + result.err, result
    return result


def ok(env: dict[str, str], *args: str, stdin: str | None = None) -> Run:
    result = run(env, *args, stdin=stdin)
    assert result.code == 0, result
    return result


def one_error_line(result: Run, code: int, starts: str) -> str:
    assert result.code == code, result
    assert len(result.error_lines) == 1, result.err
    line = result.error_lines[0]
    assert line.startswith(starts), line
    return line
