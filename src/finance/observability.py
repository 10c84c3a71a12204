"""Structured logs (structlog, JSON lines) and Prometheus metrics.

`finance serve` logs to stdout, as services do; every other command logs to stderr, so that
its stdout holds only what it prints (a table, a token, `--json` output).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from prometheus_client import Counter, Gauge, Histogram

from finance.config import LogFormat

REQUESTS = Counter(
    "finance_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "finance_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)
# Requests refused with 429, by bucket family: "token" (a verified caller) or "address" (a
# client whose token was missing or refused).
RATE_LIMITED = Counter(
    "finance_http_rate_limited_total", "Requests refused by the rate limit", ["kind"]
)

CHECKPOINTS_ISSUED = Counter(
    "finance_checkpoints_issued_total", "Checkpoints sealed and stored (signed or not yet)"
)
CHECKPOINTS_SIGNED = Counter("finance_checkpoints_signed_total", "Checkpoints signed")
CHECKPOINT_SIGNING_FAILURES = Counter(
    "finance_checkpoint_signing_failures_total", "Failed attempts to sign a checkpoint"
)
CHECKPOINTS_UNSIGNED = Gauge(
    "finance_checkpoints_unsigned", "Checkpoints waiting for the signer, all tenants"
)
CHECKPOINT_UNSIGNED_AGE = Gauge(
    "finance_checkpoint_unsigned_oldest_seconds", "Age of the oldest checkpoint not yet signed"
)
# From the posting of the newest entry a checkpoint covers to its issue (stage="issued") and to
# its signature (stage="signed"): how long an entry waits before it is provable.
CHECKPOINT_LAG = Histogram(
    "finance_checkpoint_lag_seconds",
    "Checkpoint lag after commit",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)


class PrometheusProofMetrics:
    """The `ProofMetrics` port of `finance.services.proofs`, on the process's registry."""

    def checkpoint_issued(self, lag_s: float) -> None:
        CHECKPOINTS_ISSUED.inc()
        CHECKPOINT_LAG.labels("issued").observe(lag_s)

    def checkpoint_signed(self, lag_s: float) -> None:
        CHECKPOINTS_SIGNED.inc()
        CHECKPOINT_LAG.labels("signed").observe(lag_s)

    def signing_failed(self) -> None:
        CHECKPOINT_SIGNING_FAILURES.inc()

    def unsigned_backlog(self, count: int, oldest_age_s: float) -> None:
        CHECKPOINTS_UNSIGNED.set(count)
        CHECKPOINT_UNSIGNED_AGE.set(oldest_age_s)


def configure_logging(level: str, fmt: LogFormat, *, stream: TextIO | None = None) -> None:
    """Render structlog events at `level` and above as `fmt` lines on `stream` (stdout)."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt is LogFormat.JSON
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=True,
    )
