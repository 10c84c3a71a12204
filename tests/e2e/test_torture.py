"""`finance torture` for real, in its short mode: its own PostgreSQL and `finance serve`,
clients posting for 30 s while the service is killed, PostgreSQL crashes and connections are
cut (a fault every 3 s, so each kind at least three times), then the full check."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.helpers import FINANCE, environment

SECONDS = 30
# Setup, the grace period for unknown outcomes, sealing and the final read come on top.
TIMEOUT_S = 300


def test_a_short_torture_run_finds_no_violation(tmp_path: Path) -> None:
    out = tmp_path / "torture.json"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    completed = subprocess.run(
        [
            *FINANCE,
            "torture",
            "--seconds",
            str(SECONDS),
            "--fault-interval",
            "3",
            "--clients",
            "4",
            # Few accounts, so the no-overdraft ones run dry and overdrafts are refused.
            "--accounts",
            "6",
            "--seed",
            "7",
            "--json",
            str(out),
        ],
        env=environment(tmp_path, None, TMPDIR=str(scratch)),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert "Traceback" not in completed.stdout + completed.stderr
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(out.read_text())
    assert result["violations"] == []
    figures = result["figures"]
    for kind in ("serve_kill", "postgres_restart", "client_cut"):
        assert figures[f"faults_{kind}"] >= 1, figures
    assert result["faults_injected"] == sum(
        figures[f"faults_{kind}"] for kind in ("serve_kill", "postgres_restart", "client_cut")
    )
    assert 0 < result["acknowledged"] <= result["sent"]
    # The faults made clients retry, and the no-overdraft limit refused postings.
    assert figures["retries"] > 0
    assert figures["refused_overdraft"] > 0
    # Every entry in the journal is an acknowledged posting or one whose answer was lost.
    assert figures["entries"] == (
        result["acknowledged"] + figures["unknown_committed"] + figures["refusals_superseded"]
    )
    assert figures["checkpoints_verified"] > 0
    assert "violations" in completed.stdout
    # The run's directory (its PostgreSQL's data, the service's keys and log) is gone.
    assert list(scratch.iterdir()) == []
