"""The reference every throughput figure is compared with: PostgreSQL's own `pgbench`, run on
the same server in the same benchmark, so the ratio says what the ledger makes of the machine
rather than how fast the machine is.

The script is pgbench's built-in TPC-B-like transaction (three UPDATEs, one SELECT, one INSERT
in one transaction) with prepared statements (`-M prepared`), `clients` connections on
`threads` threads, for a fixed time, on a database of its own. The scale is 10 by default:
pgbench's documentation asks for a scale at least as large as the number of clients, because
every transaction updates one of `scale` branch rows, and at scale 1 all 8 clients queue on one
row, which measures that row lock rather than the server. (The ledger has such a row too, the
tenant's chain head; docs/performance.md compares the two.)

Latencies come from pgbench's per-transaction log (`-l`): one line per transaction, with its
time in microseconds, so p50 and p99 are exact rather than read off a histogram.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from finance.adapters.postgres.embedded import client_program, ensure_database
from finance.bench.workload import RunResult

INIT_TIMEOUT_S = 600.0
# On top of the run's own duration: pgbench vacuums its tables first and then connects.
RUN_GRACE_S = 120.0
_TPS_RE = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)$", re.MULTILINE)
_PROCESSED_RE = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)


class PgbenchError(Exception):
    """pgbench failed or printed something this module cannot read."""


@dataclass(frozen=True)
class PgbenchConfig:
    seconds: float
    scale: int = 10
    clients: int = 8
    threads: int = 2


def run_pgbench(database_url: str, workdir: Path, config: PgbenchConfig) -> RunResult:
    """Initialise a pgbench database next to `database_url`'s (same server), run the TPC-B-like
    script for `config.seconds` and drop the database. The result's entries are transactions."""
    server = database_url
    name = f"finance_pgbench_{uuid.uuid4().hex[:8]}"
    url = ensure_database(server, name)
    logs = workdir / "pgbench"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        _pgbench(["-i", "-q", "-s", str(config.scale), url], INIT_TIMEOUT_S)
        output = _pgbench(
            [
                "-M", "prepared",
                "-c", str(config.clients),
                "-j", str(config.threads),
                "-T", str(max(1, round(config.seconds))),
                "-l", "--log-prefix", str(logs / "tx"),
                url,
            ],
            config.seconds + RUN_GRACE_S,
        )  # fmt: skip
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    return _result(output, _latencies_ms(logs))


def _pgbench(arguments: list[str], timeout_s: float) -> str:
    program = client_program("pgbench")
    try:
        done = subprocess.run(  # noqa: S603 - our own arguments, the wheel's program
            [str(program), *arguments],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PgbenchError(f"pgbench did not finish within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise PgbenchError(f"pgbench exited with {done.returncode}: {tail}")
    return done.stdout


def _result(output: str, latencies_ms: list[float]) -> RunResult:
    tps, processed = _TPS_RE.search(output), _PROCESSED_RE.search(output)
    if tps is None or processed is None or float(tps.group(1)) <= 0:
        raise PgbenchError(f"no throughput in pgbench's output: {output.strip()[-300:]!r}")
    transactions = int(processed.group(1))
    # pgbench's own rate excludes connecting; the wall time is derived from it to match.
    return RunResult("pgbench", transactions, transactions / float(tps.group(1)), latencies_ms)


def _latencies_ms(logs: Path) -> list[float]:
    """Every transaction's latency from pgbench's logs (one file per thread). A line is
    `client transaction latency_us script epoch_s epoch_us`; a failed or skipped transaction
    has a word for its latency and is not a latency."""
    latencies = []
    for path in sorted(logs.glob("tx.*")):
        for line in path.read_text(encoding="ascii").splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000)
    if not latencies:
        raise PgbenchError(f"pgbench wrote no transaction log in {logs}")
    return latencies
