"""Microseconds per entry spent canonicalizing and hashing journal entry bodies.

A quick measurement, not a benchmark: builds N realistic entry bodies with `entry_body` (two to
six postings, a memo on most, metadata on some, now and then a non-ASCII memo) and times, in
separate passes over the same bodies,

* `chain_hash(prev, body)`, what posting and the integrity check pay per entry,
* `canonical_bytes(body)` alone, and
* `rfc8785.dumps(body)`, the pure-Python reference, for comparison.

Each pass is repeated and the medians are printed, of wall-clock time and of this process's CPU
time (on a shared machine the CPU time is the steadier of the two). Usage:

    .venv/bin/python scripts/canonical_json_speed.py [--entries 10000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import rfc8785

from finance.proofs.chain import canonical_bytes, chain_hash, entry_body

MEMOS = ["", "Invoice 2026-0042", "Refund for order #81723", "Café crème", "Überweisung März"]


def realistic_bodies(count: int, seed: int = 8785) -> list[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - repeatable sample data, not a secret
    accounts = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(50)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    bodies = []
    for sequence in range(count):
        lines = rng.randint(1, 3)
        amounts = [rng.randint(1, 10**9) for _ in range(lines)]
        postings = [(rng.choice(accounts), "debit", a, "USD") for a in amounts] + [
            (rng.choice(accounts), "credit", a, "USD") for a in amounts
        ]
        metadata = {"channel": "web", "order": str(rng.randint(1, 10**6))} if sequence % 3 else {}
        bodies.append(
            entry_body(
                ledger_id="acme",
                sequence=sequence,
                entry_uuid=uuid.UUID(int=rng.getrandbits(128)),
                posted_at=start + timedelta(microseconds=rng.getrandbits(40)),
                effective_date=date(2026, 1, 1) + timedelta(days=sequence % 365),
                entry_type="SALE",
                memo=rng.choice(MEMOS) or None,
                source="shop",
                source_id=f"order-{sequence}",
                reversal_of=None,
                postings=postings,
                metadata=metadata,
            )
        )
    return bodies


def median_us_per_item(run: Callable[[], None], count: int, repeats: int) -> tuple[float, float]:
    """Median microseconds per item, (wall clock, CPU)."""
    wall, cpu = [], []
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - wall_start)
        cpu.append(time.process_time() - cpu_start)
    return statistics.median(wall) / count * 1e6, statistics.median(cpu) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    bodies = realistic_bodies(args.entries)
    prev = hashlib.sha256(b"genesis").digest()

    def hash_all() -> None:
        for body in bodies:
            chain_hash(prev, body)

    def canonicalize_all() -> None:
        for body in bodies:
            canonical_bytes(body)

    def reference_all() -> None:
        for body in bodies:
            rfc8785.dumps(body)

    mismatches = sum(canonical_bytes(b) != rfc8785.dumps(b) for b in bodies)
    print(f"{args.entries} bodies, median of {args.repeats} runs; mismatches: {mismatches}")
    for name, run in [
        ("chain_hash", hash_all),
        ("canonical_bytes", canonicalize_all),
        ("rfc8785.dumps", reference_all),
    ]:
        wall_us, cpu_us = median_us_per_item(run, args.entries, args.repeats)
        print(f"{name:16} {wall_us:7.2f} µs/entry wall clock, {cpu_us:7.2f} µs/entry CPU")


if __name__ == "__main__":
    main()
