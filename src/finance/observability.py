"""Structured logs (structlog, JSON lines) and Prometheus metrics.

`finance serve` logs to stdout, as services do; every other command logs to stderr, so that
its stdout holds only what it prints (a table, a token, `--json` output).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from prometheus_client import Counter, Histogram

from finance.config import LogFormat

REQUESTS = Counter(
    "finance_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "finance_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)


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
