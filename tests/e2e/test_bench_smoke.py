"""The proofs benchmark runs end to end at a tiny size and reports every figure (its speed is
measured by `finance bench proofs`, never asserted here)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from finance.bench.proofs import ProofBenchConfig, run_proof_bench
from finance.bench.workload import bench_database
from finance.cli.main import app

TINY = ProofBenchConfig(
    entries_per_run=30,
    runs_per_mode=1,
    workers=2,
    accounts=8,
    range_entries=300,
    seal_interval_s=0.1,
)


def test_the_proofs_bench_measures_every_figure(pg_server_uri: str, tmp_path: Path) -> None:
    with bench_database(tmp_path, pg_server_uri, pool_max=4) as bench:
        result = run_proof_bench(bench, tmp_path, TINY)
    figures = result.to_json()
    assert [run["name"] for run in figures["results"]] == ["sealer_off_1", "sealer_on_1"]
    assert all(run["entries_per_s"] > 0 for run in figures["results"])
    # Every entry posted while the sealer ran got a signed checkpoint, and its lag was measured.
    assert figures["checkpoint_lag_s"]["entries"] == TINY.entries_per_run
    assert 0 < figures["checkpoint_lag_s"]["max"] < 30
    assert figures["export"]["package_bytes"] > 300 * 300  # every entry is in the package
    assert figures["verify"]["entries_per_s"] > 0


def test_finance_bench_needs_a_benchmark_name() -> None:
    result = CliRunner().invoke(app, ["bench"])
    assert result.exit_code != 0
    assert "proofs" in result.output
