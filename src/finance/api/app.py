"""The FastAPI application: routers, problem handlers, guards, request logs and metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from finance import __version__
from finance.api import problems
from finance.api.guards import RequestGuard
from finance.api.routers import accounts, health, journal
from finance.api.schemas import Problem
from finance.bootstrap import Container
from finance.config import WriteMode
from finance.observability import REQUEST_SECONDS, REQUESTS

log = structlog.get_logger("finance.http")

_PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}}
    for status in (400, 401, 403, 404, 409, 413, 422, 503)
}


def create_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="Finance",
        version=__version__,
        summary="Multi-tenant double-entry ledger with verifiable hash chain",
        responses=_PROBLEM_RESPONSES,
    )
    app.state.container = container
    problems.install(app)
    app.include_router(health.router)
    app.include_router(accounts.router)
    app.include_router(journal.router)
    app.middleware("http")(_log_requests)
    app.add_middleware(
        RequestGuard,
        read_only=container.settings.write_mode is WriteMode.READONLY,
    )
    return app


async def _log_requests(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """One log line per request; never the Authorization header or the body."""
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    started = time.perf_counter()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await call_next(request)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    elapsed = time.perf_counter() - started
    route = request.scope.get("route")
    route_path = getattr(route, "path", "unmatched")
    REQUESTS.labels(request.method, route_path, str(response.status_code)).inc()
    REQUEST_SECONDS.labels(request.method, route_path).observe(elapsed)
    response.headers["X-Request-Id"] = request_id
    log.info(
        "request",
        request_id=request_id,
        method=request.method,
        route=route_path,
        status=response.status_code,
        duration_ms=round(elapsed * 1000, 2),
        tenant=getattr(request.state, "tenant_id", None),
    )
    return response
