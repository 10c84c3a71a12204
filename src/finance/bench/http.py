"""Posting through the HTTP API: `finance serve` in a process of its own, on the benchmark's
database, and keep-alive clients in threads of this one, each request timed.

The clients use the standard library's `http.client` (one persistent connection per thread)
rather than an HTTP library: it adds no dependency to the service, and on a small machine the
clients share the cores with the server, so the cheaper the client, the more of the figure is
the server's.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID

from psycopg.conninfo import conninfo_to_dict

from finance.auth.tokens import Role, TokenIssuer, load_or_create_issuer_key
from finance.bench.workload import CURRENCY, EFFECTIVE, RunResult, run_workers, split

HOST = "127.0.0.1"
JOURNAL_PATH = "/v1/journal"
BATCH_PATH = "/v1/journal/batch"
ISSUER = "finance-bench"
AUDIENCE = "finance-api"
TOKEN_TTL_S = 4 * 3600
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 120.0


class HttpBenchError(Exception):
    """The service did not start, or answered a request the benchmark cannot count."""


@dataclass(frozen=True)
class ServeProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def peak_rss_mb(self) -> float:
        """The process's peak resident set so far (VmHWM), in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise HttpBenchError(f"no VmHWM in /proc/{self.process.pid}/status")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT_S)


@contextmanager
def serving(workdir: Path, service_conninfo: str) -> Iterator[ServeProcess]:
    """`finance serve` on a free port of 127.0.0.1, as an operator would run it against an
    external database: `service_conninfo` is the service's own login. Its data directory (and
    the local token issuer's key) is in `workdir`. The sealer is off: the posting figures of
    the service layer are taken without it too, and `sealer` measures what it costs. Stopped
    (SIGTERM, then SIGKILL) afterwards."""
    serve = start_serve(workdir, service_conninfo, port=free_port(), env_extra={})
    try:
        wait_ready(serve)
        yield serve
    finally:
        stop_serve(serve.process)


def start_serve(
    workdir: Path, service_conninfo: str, *, port: int, env_extra: dict[str, str]
) -> ServeProcess:
    """Start `finance serve` on `port` of 127.0.0.1 without waiting for it to be ready (see
    `serving`); `env_extra` overrides its FINANCE_* settings (the sealer is off unless it says
    otherwise). Its log is appended to, so that a restarted service keeps one log."""
    data_dir = workdir / "serve"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = workdir / "serve.log"
    # Nothing of this process's FINANCE_* settings leaks in (external token keys, a signer...).
    env = {name: value for name, value in os.environ.items() if not name.startswith("FINANCE_")}
    env |= {
        "FINANCE_DATABASE_URL": postgres_url(service_conninfo),
        "FINANCE_DATA_DIR": str(data_dir),
        "FINANCE_JWT_ISSUER": ISSUER,
        "FINANCE_JWT_AUDIENCE": AUDIENCE,
        "FINANCE_SEALER": "off",
        # The benchmark measures the server's ceiling, not the rate limit it would hit.
        "FINANCE_RATE_LIMIT_PER_SECOND": "0",
        "FINANCE_HOST": HOST,
        "FINANCE_PORT": str(port),
    }
    env |= env_extra
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "finance.cli.main", "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ServeProcess(process, port, log)


def issue_token(workdir: Path, tenant_id: str) -> str:
    """An accountant's token for `tenant_id`, signed by the local issuer key that the service
    started by `serving(workdir, ...)` trusts (the key is created here on first use)."""
    key = load_or_create_issuer_key(workdir / "serve" / "keys" / "token-issuer.pem")
    issuer = TokenIssuer(key, issuer=ISSUER, audience=AUDIENCE)
    return issuer.issue(
        tenant_id=tenant_id,
        roles=[Role.ACCOUNTANT],
        subject="bench",
        ttl_s=TOKEN_TTL_S,
        now=datetime.now(UTC),
    )


def postgres_url(conninfo: str) -> str:
    """A postgresql:// URL for a libpq connection string (FINANCE_DATABASE_URL takes URLs):
    user and database in the URL, every other parameter (a socket directory as host, too) in
    its query string."""
    params = conninfo_to_dict(conninfo)
    user = str(params.pop("user", "") or "")
    dbname = str(params.pop("dbname", "") or "")
    query = urlencode({key: str(value) for key, value in params.items() if value is not None})
    authority = f"{quote(user, safe='')}@" if user else ""
    return f"postgresql://{authority}/{quote(dbname, safe='')}" + (f"?{query}" if query else "")


def line_pair(rng: random.Random, accounts: Sequence[UUID]) -> list[dict[str, Any]]:
    debit, credit = rng.sample(accounts, 2)
    amount = rng.randint(1, 100_000)
    return [
        {"account_id": str(debit), "side": "debit", "amount": amount, "currency": CURRENCY},
        {"account_id": str(credit), "side": "credit", "amount": amount, "currency": CURRENCY},
    ]


def post_single(
    serve: ServeProcess,
    token: str,
    accounts: Sequence[UUID],
    *,
    name: str,
    entries: int,
    clients: int,
) -> RunResult:
    """`entries` POST /v1/journal requests of one 2-line entry each from `clients` threads,
    each with a connection of its own kept alive and a fresh Idempotency-Key per request."""
    connections = [serve.connection() for _ in range(clients)]

    def post_one(worker: int, rng: random.Random) -> int:
        body = {"lines": line_pair(rng, accounts), "effective_date": EFFECTIVE.isoformat()}
        status, answer = _post(connections[worker], JOURNAL_PATH, token, body)
        if status != 201:
            raise HttpBenchError(f"POST {JOURNAL_PATH} answered {status}: {answer[:300]!r}")
        return 1

    try:
        return run_workers(name, split(entries, clients), post_one)
    finally:
        for connection in connections:
            connection.close()


@dataclass(frozen=True)
class NotMeasured:
    """A run that was not made, and why: `skipped` when this build cannot make it (no such
    endpoint), `failed` when the service refused what the benchmark sent."""

    status: str
    reason: str


def post_batches(
    serve: ServeProcess,
    token: str,
    accounts: Sequence[UUID],
    *,
    name: str,
    requests: int,
    batch_size: int,
    clients: int,
) -> RunResult | NotMeasured:
    """`requests` POST /v1/journal/batch requests of `batch_size` 2-line entries each from
    `clients` threads; entries/s counts entries, the latencies are per request.

    The endpoint is probed first with a batch of one entry, not counted: when the service has
    no batch endpoint (404 or 405 for its path) the run is skipped, and when the probe is
    refused (the contract differs) it has failed, as when a batch of the run is refused (a
    lock timeout, say); either way the rest of the benchmark goes on.
    """
    probe = serve.connection()
    try:
        one = _batch(random.Random(0), accounts, 1)  # noqa: S311 - test data
        status, answer = _post(probe, BATCH_PATH, token, one)
    finally:
        probe.close()
    if status in (404, 405):
        return NotMeasured(
            "skipped", f"POST {BATCH_PATH} answered {status}: no batch endpoint in this build"
        )
    try:
        _count_created(status, answer, 1)
    except (HttpBenchError, ValueError) as exc:
        return NotMeasured("failed", f"the probe batch of one entry: {exc}")
    connections = [serve.connection() for _ in range(clients)]

    def post_one(worker: int, rng: random.Random) -> int:
        body = _batch(rng, accounts, batch_size)
        status, answer = _post(connections[worker], BATCH_PATH, token, body)
        return _count_created(status, answer, batch_size)

    try:
        return run_workers(name, split(requests, clients), post_one)
    except HttpBenchError as exc:
        return NotMeasured("failed", str(exc))
    finally:
        for connection in connections:
            connection.close()


def _batch(rng: random.Random, accounts: Sequence[UUID], size: int) -> dict[str, Any]:
    return {
        "entries": [
            {
                "idempotency_key": f"k-{uuid.uuid4()}",
                "linked": False,
                "lines": line_pair(rng, accounts),
                "effective_date": EFFECTIVE.isoformat(),
            }
            for _ in range(size)
        ]
    }


def _count_created(status: int, answer: bytes, size: int) -> int:
    """The entries a batch created; every entry of a benchmark batch is new and valid, so any
    other outcome is an error."""
    if status != 200:
        raise HttpBenchError(f"POST {BATCH_PATH} answered {status}: {answer[:300]!r}")
    parsed = json.loads(answer)
    results = parsed.get("results") if isinstance(parsed, dict) else None
    if not isinstance(results, list):
        raise HttpBenchError(f"POST {BATCH_PATH}: no results list in {answer[:300]!r}")
    statuses = [r.get("status") if isinstance(r, dict) else None for r in results]
    created = statuses.count("created")
    if created != size:
        other = next((r for r, s in zip(results, statuses, strict=True) if s != "created"), None)
        raise HttpBenchError(
            f"POST {BATCH_PATH}: {created} of {size} entries created; first other: {other}"
        )
    return created


def _post(
    connection: http.client.HTTPConnection, path: str, token: str, body: dict[str, Any]
) -> tuple[int, bytes]:
    connection.request(
        "POST",
        path,
        body=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),
        },
    )
    response = connection.getresponse()
    return response.status, response.read()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(serve: ServeProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if serve.process.poll() is not None:
            raise HttpBenchError(f"finance serve exited early; its log: {_tail(serve.log)}")
        connection = http.client.HTTPConnection(HOST, serve.port, timeout=2.0)
        try:
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            if response.status == 200:
                return
            last = response.read().decode(errors="replace")
        except OSError as exc:
            last = type(exc).__name__
        finally:
            connection.close()
        time.sleep(0.2)
    raise HttpBenchError(f"finance serve not ready after {READY_TIMEOUT_S:.0f} s ({last})")


def stop_serve(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait(timeout=STOP_TIMEOUT_S)


def _tail(log: Path) -> str:
    return " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
