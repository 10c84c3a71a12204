"""The FastAPI application: routers, problem handlers, guards, request logs and metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.datastructures import MutableHeaders

from finance import __version__, limits
from finance.api import openapi, problems
from finance.api.guards import RequestGuard
from finance.api.ratelimit import RateLimiter
from finance.api.routers import (
    accounts,
    health,
    invoice_documents,
    invoices,
    journal,
    proofs,
    reports,
)
from finance.bootstrap import Container
from finance.config import WriteMode
from finance.observability import REQUEST_SECONDS, REQUESTS

log = structlog.get_logger("finance.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{limits.REQUEST_ID_CHARS_MAX}}}")


def create_app(container: Container) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        """The background sealer runs while the app serves."""
        if container.sealer is not None:
            container.sealer.start()
        try:
            yield
        finally:
            if container.sealer is not None:
                container.sealer.stop()

    app = FastAPI(
        title="Finance",
        version=__version__,
        summary="Multi-tenant double-entry ledger with verifiable hash chain",
        lifespan=lifespan,
    )
    app.state.container = container
    # Per process: each worker process of a future multi-worker serve has its own buckets.
    app.state.rate_limiter = RateLimiter.create(
        container.settings.rate_limit_per_second,
        container.settings.rate_limit_burst,
        clock=time.monotonic,
    )
    problems.install(app)
    openapi.install(app)  # every operation declares the problem responses it can give
    app.include_router(health.router)
    app.include_router(accounts.router)
    app.include_router(journal.router)
    app.include_router(proofs.router)
    app.include_router(invoices.router)
    app.include_router(reports.router)
    app.include_router(invoice_documents.router)
    app.add_middleware(
        RequestGuard,
        read_only=container.settings.write_mode is WriteMode.READONLY,
    )
    # Added last, so outermost: the guard's refusals and unexpected exceptions are logged,
    # counted and carry an X-Request-Id like every other response.
    app.add_middleware(RequestLog)
    return app


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-Id when it is short and plain (it is echoed in a header and
    written to the logs), else a fresh one."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID.fullmatch(candidate) else uuid.uuid4().hex
    return uuid.uuid4().hex


class RequestLog:
    """One log line and one metric sample per HTTP request, and an X-Request-Id on every
    response. Never logs the Authorization header or the body. Under mutual TLS the line
    names the caller's client certificate (`client_cn`, finance.api.tls).

    An exception that escapes the application is logged here, with the request id, and
    answered with the 500 problem, so that it is counted like any other response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        # Created here so that what the routers record in it (the tenant) is seen here too.
        state = scope.setdefault("state", {})
        status = 500
        responded = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                log.exception(
                    "request.failed",
                    request_id=request_id,
                    method=scope["method"],
                    path=scope["path"],
                    error=type(exc).__name__,
                )
                if responded:  # too late for a problem document: the server drops the stream
                    raise
                await problems.internal_error()(scope, receive, send_with_id)
            finally:
                self._observe(scope, state, request_id, status, time.perf_counter() - started)

    @staticmethod
    def _observe(
        scope: Scope, state: dict[str, Any], request_id: str, status: int, elapsed_s: float
    ) -> None:
        route_path = getattr(scope.get("route"), "path", "unmatched")
        REQUESTS.labels(scope["method"], route_path, str(status)).inc()
        REQUEST_SECONDS.labels(scope["method"], route_path).observe(elapsed_s)
        client_cn = state.get("client_cn")
        log.info(
            "request",
            request_id=request_id,
            method=scope["method"],
            route=route_path,
            status=status,
            duration_ms=round(elapsed_s * 1000, 2),
            tenant=state.get("tenant_id"),
            **({} if client_cn is None else {"client_cn": client_cn}),
        )
