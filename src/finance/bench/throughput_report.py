"""The throughput benchmark's figures as rows for people (each next to its goal of issue 4 and
a verdict) and as JSON for scripts. Nothing is measured here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from finance.bench.proofs import OVERHEAD_GOAL_PCT
from finance.bench.throughput import (
    AS_OF_P99_GOAL_MS,
    BALANCE_P99_GOAL_MS,
    BATCH_RATIO_GOAL,
    BYTES_PER_ENTRY_GOAL,
    CLIENTS,
    HOT_RATIO_GOAL,
    HTTP_8_P99_GOAL_MS,
    HTTP_8_RATIO_GOAL,
    RUN_NAMES,
    SERVE_RSS_GOAL_MB,
    SERVICE_8_RATIO_GOAL,
    UNIFORM_FOR_HOT,
    ThroughputResult,
)
from finance.bench.workload import RunResult, percentile


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    ratio: float | None = None  # to pgbench
    goal: str = ""
    met: bool | None = None  # None: no goal, or not measured

    @property
    def verdict(self) -> str:
        return "" if self.met is None else "met" if self.met else "NOT MET"

    def cells(self) -> tuple[str, ...]:
        def ms(value: float | None) -> str:
            return "" if value is None else f"{value:.2f}"

        ratio = "" if self.ratio is None else f"{self.ratio:.2f}x"
        return (
            self.figure, self.measured, ms(self.p50_ms), ms(self.p99_ms), ratio, self.goal,
            self.verdict,
        )  # fmt: skip


COLUMNS = ("figure", "measured", "p50 ms", "p99 ms", "vs pgbench", "goal", "")

_RUN_GOALS = {
    "service_single_8": f">= {SERVICE_8_RATIO_GOAL}x pgbench",
    "http_single_8": f">= {HTTP_8_RATIO_GOAL}x pgbench, p99 < {HTTP_8_P99_GOAL_MS:.0f} ms",
    "batch_1000": f">= {BATCH_RATIO_GOAL:.0f}x pgbench",
    "hot_account": f">= {HOT_RATIO_GOAL}x {UNIFORM_FOR_HOT}",
}
TABLE_WIDTH = 120


def rows(result: ThroughputResult) -> list[Row]:
    """One row per figure, in the order of the benchmark."""
    found = [_run_row(result, name) for name in RUN_NAMES]
    return [row for row in found if row is not None] + _other_rows(result)


def _run_row(result: ThroughputResult, name: str) -> Row | None:
    run = result.runs.get(name)
    goal = _RUN_GOALS.get(name, "reference" if name == "pgbench" else "")
    if run is None:
        missing = result.not_measured.get(name)
        if missing is None:
            return None
        return Row(name, f"{missing.status} (see below)", goal=goal)
    unit = "tx/s" if name == "pgbench" else "entries/s"
    measured = f"{run.entries_per_s:,.0f} {unit}"
    if name == "hot_account" and result.hot_to_uniform is not None:
        measured += f", {result.hot_to_uniform:.2f}x uniform"
    ratio = result.ratio_to_pgbench(name)
    return Row(name, measured, run.p50_ms, run.p99_ms, ratio, goal, _run_met(result, name, run))


def _run_met(result: ThroughputResult, name: str, run: RunResult) -> bool | None:
    ratio = result.ratio_to_pgbench(name)
    if ratio is None:
        return None
    if name == "service_single_8":
        return ratio >= SERVICE_8_RATIO_GOAL
    if name == "http_single_8":
        return ratio >= HTTP_8_RATIO_GOAL and run.p99_ms < HTTP_8_P99_GOAL_MS
    if name == "batch_1000":
        return ratio >= BATCH_RATIO_GOAL
    if name == "hot_account" and result.hot_to_uniform is not None:
        return result.hot_to_uniform >= HOT_RATIO_GOAL
    return None


def _other_rows(result: ThroughputResult) -> list[Row]:
    found = []
    if result.sealer_off and result.sealer_on:
        reference = result.runs.get("pgbench")
        tps = reference.entries_per_s if reference else 0.0
        off, on = result.sealer_off_per_s, result.sealer_on_per_s
        found += [
            Row("sealer off (median)", f"{off:,.0f} entries/s", ratio=off / tps if tps else None),
            Row(
                "sealer on (median)",
                f"{on:,.0f} entries/s, {result.sealer_overhead_pct:+.1f} %",
                ratio=on / tps if tps else None,
                goal=f"overhead < {OVERHEAD_GOAL_PCT:.0f} %",
                met=result.sealer_overhead_pct < OVERHEAD_GOAL_PCT,
            ),
        ]
    if result.storage is not None:
        per_entry = result.storage.bytes_per_entry
        found.append(
            Row(
                "storage per 2-line entry",
                f"{per_entry:,.0f} bytes",
                goal=f"< {BYTES_PER_ENTRY_GOAL} bytes",
                met=per_entry < BYTES_PER_ENTRY_GOAL,
            )
        )
    if result.serve_peak_rss_mb:
        found.append(
            Row(
                "finance serve peak RSS",
                f"{result.serve_peak_rss_mb:,.0f} MB",
                goal=f"< {SERVE_RSS_GOAL_MB:.0f} MB",
                met=result.serve_peak_rss_mb < SERVE_RSS_GOAL_MB,
            )
        )
    return found + _balance_rows(result)


def _balance_rows(result: ThroughputResult) -> list[Row]:
    reads = result.balance
    if reads is None:
        return []
    found = []
    for label, latencies, limit_ms in (
        ("balance read, current", reads.current_ms, BALANCE_P99_GOAL_MS),
        ("balance as of a sequence", reads.as_of_sequence_ms, AS_OF_P99_GOAL_MS),
        ("balance as of a date", reads.as_of_date_ms, AS_OF_P99_GOAL_MS),
    ):
        p99 = percentile(latencies, 99)
        found.append(
            Row(
                label,
                f"{len(latencies):,} reads ({reads.entries_loaded:,} entries)",
                percentile(latencies, 50),
                p99,
                goal=f"p99 < {limit_ms:.0f} ms",
                met=p99 < limit_ms,
            )
        )
    return found


def notes(result: ThroughputResult) -> list[str]:
    """What the table cannot say in a cell: why a run was not measured, what storage is made of."""
    found = [f"{name} {m.status}: {m.reason}" for name, m in result.not_measured.items()]
    storage = result.storage
    if storage is not None:
        parts = ", ".join(f"{t} {b:,.0f}" for t, b in storage.bytes_per_entry_by_table.items())
        found.append(f"storage per entry, bytes: {parts} (over {storage.entries:,} entries)")
    return found


def to_json(result: ThroughputResult) -> dict[str, Any]:
    """Every figure: `results` (one object per run, in RUN_NAMES order, with `status`
    measured, skipped or failed), `storage`, `memory`, `balance_read`, `sealer`, `goals`."""
    return {
        "config": asdict(result.config),
        "results": [_run_json(result, name) for name in RUN_NAMES],
        "hot_account": {
            "uniform": UNIFORM_FOR_HOT,
            "ratio_to_uniform": _round(result.hot_to_uniform, 3),
        },
        "storage": _storage_json(result),
        "memory": {
            "serve_peak_rss_mb": round(result.serve_peak_rss_mb, 1),
            "serve_peak_rss_after_single_mb": round(result.serve_rss_after_single_mb, 1),
        },
        "balance_read": _balance_json(result),
        "sealer": _sealer_json(result),
        "goals": [
            {"figure": row.figure, "goal": row.goal, "measured": row.measured, "met": row.met}
            for row in rows(result)
            if row.goal and row.goal != "reference"
        ],
    }


def _run_json(result: ThroughputResult, name: str) -> dict[str, Any]:
    run = result.runs.get(name)
    if run is None:
        missing = result.not_measured.get(name)
        return {
            "name": name,
            "status": missing.status if missing else "skipped",
            "reason": missing.reason if missing else "not run",
            "entries_per_s": None,
            "p50_ms": None,
            "p99_ms": None,
            "ratio_to_pgbench": None,
        }
    return {
        "name": name,
        "status": "measured",
        "entries": run.entries,
        "seconds": round(run.seconds, 3),
        "entries_per_s": round(run.entries_per_s, 1),
        "p50_ms": round(run.p50_ms, 3),
        "p99_ms": round(run.p99_ms, 3),
        "ratio_to_pgbench": _round(result.ratio_to_pgbench(name), 4),
    }


def _storage_json(result: ThroughputResult) -> dict[str, Any] | None:
    storage = result.storage
    if storage is None:
        return None
    return {
        "bytes_per_entry": round(storage.bytes_per_entry, 1),
        "entries": storage.entries,
        "bytes_per_entry_by_table": {
            table: round(value, 1) for table, value in storage.bytes_per_entry_by_table.items()
        },
    }


def _balance_json(result: ThroughputResult) -> dict[str, Any] | None:
    reads = result.balance
    if reads is None:
        return None
    figures: dict[str, Any] = {
        "entries_loaded": reads.entries_loaded,
        "load_seconds": round(reads.load_s, 2),
        "reads_per_kind": len(reads.current_ms),
    }
    for kind, latencies in (
        ("current", reads.current_ms),
        ("as_of_sequence", reads.as_of_sequence_ms),
        ("as_of_date", reads.as_of_date_ms),
    ):
        figures[f"{kind}_p50_ms"] = round(percentile(latencies, 50), 3)
        figures[f"{kind}_p99_ms"] = round(percentile(latencies, 99), 3)
    return figures


def _sealer_json(result: ThroughputResult) -> dict[str, Any] | None:
    if not result.sealer_off or not result.sealer_on:
        return None
    return {
        "workers": CLIENTS,
        "off_entries_per_s": round(result.sealer_off_per_s, 1),
        "on_entries_per_s": round(result.sealer_on_per_s, 1),
        "overhead_pct": round(result.sealer_overhead_pct, 2),
        "runs": [
            {"name": run.name, "entries_per_s": round(run.entries_per_s, 1)}
            for run in [*result.sealer_off, *result.sealer_on]
        ],
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
