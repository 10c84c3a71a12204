"""Commands log to stderr, so that their stdout is only their output (`--json` is JSON alone);
`finance serve` logs to stdout, like a service."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import environment, ok
from tests.e2e.test_serve import postgres_stopped, postmaster_pid


@pytest.fixture
def fresh_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose embedded PostgreSQL does not exist yet; stopped afterwards."""
    yield tmp_path
    pgdata = (tmp_path / "postgres").resolve()
    pid = postmaster_pid(pgdata)
    if pid is not None:
        os.kill(pid, signal.SIGINT)
        if not postgres_stopped(pgdata, 10.0) and postmaster_pid(pgdata) == pid:
            os.kill(pid, signal.SIGKILL)


def test_json_output_stays_clean_when_a_command_logs(fresh_data_dir: Path) -> None:
    # The first command on a new data directory sets up the embedded server and logs
    # migrations.applied while doing so.
    env = environment(fresh_data_dir, None)
    result = ok(env, "migrate", "--json")
    assert json.loads(result.out) == {"applied": []}
    events = [json.loads(line) for line in result.err.splitlines()]
    assert [event["event"] for event in events] == ["migrations.applied"]
    assert events[0]["level"] == "info"
    assert events[0]["versions"]
