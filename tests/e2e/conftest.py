"""End-to-end fixtures.

The in-process API logs through structlog, which the tests do not configure, so its
development default applies: a logged exception is rendered by rich with every frame's
locals, which takes seconds and a megabyte of output per 500. The served application
configures JSON lines with plain tracebacks (`finance.observability.configure_logging`);
the same rendering is used here so that a server error costs milliseconds. What is logged,
and every HTTP response, is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

# Fixtures of the invoice tests, shared by the API and CLI ones.
from tests.e2e.invoice_helpers import invoice_books, other_auth, viewer_auth  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def json_logs() -> Iterator[None]:
    previous = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    yield
    structlog.configure(**previous)
