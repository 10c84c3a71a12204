"""The two-command experience: `finance serve` on the embedded PostgreSQL, then
`finance token issue`, then plain HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from finance.adapters.signers.local import LocalSigner
from finance.proofs.checkpoint import SignedCheckpoint, verify_checkpoint
from tests.e2e.helpers import FINANCE, environment, one_error_line, run
from tests.signers import trust_for

READY_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 20.0
POSTGRES_STOP_TIMEOUT_S = 5.0
# uvicorn shuts down gracefully on SIGTERM, then re-raises the signal: -SIGTERM is a clean stop.
CLEAN_EXIT = (0, -signal.SIGTERM)


def postmaster_pid(pgdata: Path) -> int | None:
    """The embedded server's postmaster, if one is running on this data directory."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if str(pgdata).encode() in cmdline else None


def postgres_stopped(pgdata: Path, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while postmaster_pid(pgdata) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """FINANCE_DATA_DIR for one test; whatever embedded PostgreSQL the test's processes
    leave behind is shut down afterwards (fast shutdown, then kill)."""
    yield tmp_path
    pgdata = (tmp_path / "postgres").resolve()
    pid = postmaster_pid(pgdata)
    if pid is None:
        return
    os.kill(pid, signal.SIGINT)
    if not postgres_stopped(pgdata, 10.0) and postmaster_pid(pgdata) == pid:
        os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path  # stdout, where the service logs
    errors: Path  # stderr
    # How a client reaches it: True for plain HTTP, an SSL context (CA, client cert) for HTTPS.
    verify: ssl.SSLContext | bool = True

    def stdout(self) -> str:
        return self.log.read_text(errors="replace")

    def output(self) -> str:
        return self.stdout() + self.errors.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout=STOP_TIMEOUT_S)


def wait_ready(server: Server) -> httpx2.Response:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"finance serve exited early:\n{server.output()}")
        try:
            response = httpx2.get(f"{server.url}/readyz", timeout=2.0, verify=server.verify)
        except httpx2.TransportError as exc:
            last = type(exc).__name__
        else:
            if response.status_code == 200:
                return response
            last = response.text
        time.sleep(0.2)
    raise AssertionError(f"not ready after {READY_TIMEOUT_S}s ({last}):\n{server.output()}")


@contextmanager
def serving(
    env: dict[str, str], log: Path, *args: str, tls: ssl.SSLContext | None = None
) -> Iterator[Server]:
    """`finance serve *args` on a free port, ready; always stopped afterwards. With `tls` (a
    client's SSL context) it is reached, and waited for, over HTTPS."""
    port = free_port()
    errors = log.with_suffix(".err")
    with log.open("wb") as sink, errors.open("wb") as error_sink:
        process = subprocess.Popen(
            [*FINANCE, "serve", *args],
            env={**env, "FINANCE_PORT": str(port)},
            stdout=sink,
            stderr=error_sink,
            stdin=subprocess.DEVNULL,
        )
    scheme = "http" if tls is None else "https"
    server = Server(
        process, f"{scheme}://127.0.0.1:{port}", log, errors, True if tls is None else tls
    )
    try:
        wait_ready(server)
        yield server
    finally:
        server.stop()


def test_serve_token_post_balance(data_dir: Path) -> None:
    tmp_path = data_dir
    env = environment(tmp_path, None, FINANCE_SEAL_INTERVAL="0.2")
    assert "FINANCE_DATABASE_URL" not in env

    with serving(env, tmp_path / "serve.log") as server:
        ready = httpx2.get(f"{server.url}/readyz", timeout=5.0).json()
        assert ready == {
            "status": "ready",
            "reason": "ok",
            "write_mode": "readwrite",
            "unsigned_checkpoints": 0,
        }
        assert (tmp_path / "postgres").is_dir()

        issued = run(env, "token", "issue", "--tenant", "demo", "--role", "admin")
        assert issued.code == 0, issued
        token = issued.out.strip()

        with httpx2.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        ) as http:
            assert http.get("/v1/accounts").json() == {"data": [], "next_cursor": None}
            ids: dict[str, str] = {}
            for code, kind in (("cash", "asset"), ("equity", "equity")):
                opened = http.post(
                    "/v1/accounts",
                    json={"code": code, "name": code.title(), "type": kind, "currency": "USD"},
                    headers={"Idempotency-Key": f"open-{code}"},
                )
                assert opened.status_code == 201, opened.text
                ids[code] = opened.json()["id"]
            entry = {
                "lines": [
                    {"account_id": ids["cash"], "side": "debit", "amount": 1250, "currency": "USD"},
                    {
                        "account_id": ids["equity"],
                        "side": "credit",
                        "amount": 1250,
                        "currency": "USD",
                    },
                ],
                "memo": "first",
            }
            posted = http.post("/v1/journal", json=entry, headers={"Idempotency-Key": "e1"})
            assert posted.status_code == 201, posted.text
            assert posted.json()["sequence"] == 0
            replay = http.post("/v1/journal", json=entry, headers={"Idempotency-Key": "e1"})
            assert replay.headers["Idempotent-Replayed"] == "true"
            assert replay.content == posted.content

            balance = http.get(f"/v1/accounts/{ids['cash']}/balance").json()
            assert (balance["debits_posted"], balance["credits_posted"]) == (1250, 0)
            assert balance["balance"] == 1250
            assert http.get("/v1/trial-balance").json()["balanced"] is True

            # The background sealer signs a checkpoint over the entry with the key it created.
            checkpoint = wait_for_checkpoint(http)
            signer = LocalSigner(tmp_path / "keys" / "ledger-signer.pem")
            verify_checkpoint(checkpoint, trust_for(signer))
            assert (checkpoint.body.tree_size, checkpoint.body.origin) == (1, "finance.local/demo")

            unauthenticated = httpx2.get(f"{server.url}/v1/accounts", timeout=5.0)
            assert unauthenticated.status_code == 401
            assert unauthenticated.headers["content-type"] == "application/problem+json"

        # The posting freeze: a second server on the same data, read-only.
        frozen_env = {**env, "FINANCE_WRITE_MODE": "readonly"}
        with serving(frozen_env, tmp_path / "readonly.log") as frozen:
            headers = {"Authorization": f"Bearer {token}"}
            read = httpx2.get(
                f"{frozen.url}/v1/accounts/{ids['cash']}/balance", headers=headers, timeout=5.0
            )
            assert read.status_code == 200
            assert read.json()["balance"] == 1250
            refused = httpx2.post(
                f"{frozen.url}/v1/journal",
                json=entry,
                headers={**headers, "Idempotency-Key": "e2"},
                timeout=5.0,
            )
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == "ledger_read_only"
            assert frozen.stop() in CLEAN_EXIT

        assert len(httpx2.get(f"{server.url}/v1/journal", headers=headers).json()["data"]) == 1
        assert server.stop() in CLEAN_EXIT

    logs = server.output() + frozen.output()
    assert "Traceback" not in logs
    # The service logs JSON lines on stdout (the other commands log to stderr).
    request_logs = [json.loads(line) for line in server.stdout().splitlines()]
    assert {"serve.start", "request", "sealer.started", "checkpoint.signed", "sealer.stopped"} <= {
        event["event"] for event in request_logs
    }
    assert "sealer.started" not in frozen.stdout()  # a read-only service does not seal
    [start] = [event for event in request_logs if event["event"] == "serve.start"]
    # The start line names the key that signs, for operators to compare with what auditors pin.
    assert start["signer_key_ids"] == [LocalSigner(tmp_path / "keys" / "ledger-signer.pem").key_id]
    assert any(event.get("route") == "/v1/journal" for event in request_logs)
    assert token not in logs
    # Every process that used the embedded server has exited: it must have stopped too.
    pgdata = (tmp_path / "postgres").resolve()
    assert postgres_stopped(pgdata, POSTGRES_STOP_TIMEOUT_S), (
        f"the embedded PostgreSQL (pid {postmaster_pid(pgdata)}) outlived finance serve"
    )


def wait_for_checkpoint(http: httpx2.Client) -> SignedCheckpoint:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        latest = http.get("/v1/checkpoints/latest")
        if latest.status_code == 200:
            return SignedCheckpoint.from_bytes(latest.content)
        assert latest.status_code == 404, latest.text
        time.sleep(0.1)
    raise AssertionError("the sealer signed no checkpoint")


def test_serve_refuses_bad_configuration_in_one_line(data_dir: Path) -> None:
    tmp_path = data_dir
    env = environment(tmp_path, None, FINANCE_SERVICE_ENV="production")
    result = run(env, "serve")
    line = one_error_line(result, 2, "error: invalid configuration")
    assert "FINANCE_DATABASE_URL" in line
    assert not (tmp_path / "postgres").exists()
