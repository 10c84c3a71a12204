"""`finance serve` for a torture run: on the run's PostgreSQL, with the sealer on and a local
signing key in its data directory, killed with SIGKILL and restarted on the same port."""

from __future__ import annotations

import subprocess
from contextlib import suppress
from pathlib import Path

from finance.bench.http import ServeProcess, free_port, start_serve, stop_serve, wait_ready

KILL_WAIT_S = 10.0
# Seal often, so that the checkpoints cover the last entries soon after the run ends.
SERVICE_ENV = {
    "FINANCE_SEALER": "on",
    "FINANCE_SEAL_INTERVAL": "0.5",
    "FINANCE_LOG_LEVEL": "warning",
}


class Service:
    def __init__(self, workdir: Path, service_conninfo: str) -> None:
        self._workdir = workdir
        self._conninfo = service_conninfo
        self.port = free_port()
        self._serve: ServeProcess | None = None

    @property
    def signer_key(self) -> Path:
        """The local signer's key, created by the service on its first start."""
        return self._workdir / "serve" / "keys" / "ledger-signer.pem"

    def start(self) -> None:
        """Start and wait until /readyz answers 200 (HttpBenchError when it does not)."""
        self._serve = start_serve(
            self._workdir, self._conninfo, port=self.port, env_extra=SERVICE_ENV
        )
        wait_ready(self._serve)

    def wait_ready(self) -> None:
        if self._serve is not None:
            wait_ready(self._serve)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, requests in flight are cut, transactions open in
        the database are rolled back when their connections drop."""
        if self._serve is not None:
            self._serve.process.kill()
            # If it is not gone yet, stop() reaps it at the end.
            with suppress(subprocess.TimeoutExpired):
                self._serve.process.wait(timeout=KILL_WAIT_S)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL (the clean stop at the end; safe to call twice)."""
        if self._serve is not None:
            stop_serve(self._serve.process)
