"""RFC 9457 problem details: the one place where refusals become HTTP responses.

Every error the API returns is `application/problem+json` with a stable `code` (also encoded
in `type`), a `title`, the HTTP `status` and a human `detail`. Unexpected exceptions become a
bare 500 problem whose detail reveals nothing; the request log middleware
(`finance.api.app.RequestLog`) logs them with the request id. The status of each reject code
and the document's shape live in `finance.api.schemas`, shared with the CLI, because a batch
returns its refused entries' problems inside its response.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from psycopg import DataError, OperationalError
from psycopg.errors import ReadOnlySqlTransaction
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from finance import limits
from finance.api.ratelimit import RateLimited
from finance.api.schemas import problem_document, status_for
from finance.auth.tokens import TokenError
from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.observability import RATE_LIMITED

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class InsufficientRole(Exception):
    """The caller is authenticated but lacks the role an operation needs (403)."""

    def __init__(self, role: str) -> None:
        super().__init__(f"this operation needs the {role} role")
        self.role = role


class InvalidCursor(Exception):
    """A pagination cursor that this API did not produce (400)."""


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body = problem_document(status, code, detail, extra)
    return Response(
        content=json.dumps(body, separators=(",", ":")).encode(),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def read_only_problem() -> Response:
    return problem(
        503,
        "ledger_read_only",
        "the ledger is in read-only mode (FINANCE_WRITE_MODE=readonly); reads still work",
        headers={"Retry-After": str(limits.READ_ONLY_RETRY_AFTER_S)},
    )


def internal_error() -> Response:
    """The 500 of an unexpected exception: it reveals nothing; the log has the details."""
    return problem(500, "internal_error", "an unexpected error occurred; nothing was written")


# Refusals that go away by themselves: the sealer will sign the checkpoint that covers it.
_RETRY_AFTER_S: dict[str, int] = {
    RejectCode.ENTRY_NOT_SEALED: limits.CHECKPOINT_RETRY_AFTER_S,
    RejectCode.CHECKPOINT_NOT_SIGNED: limits.CHECKPOINT_RETRY_AFTER_S,
}


def rejection_response(exc: LedgerRejection) -> Response:
    retry_after = _RETRY_AFTER_S.get(exc.code)
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return problem(
        status_for(exc.code),
        exc.code.value,
        exc.detail,
        headers=headers,
        extra=exc.context or None,
    )


def install(app: FastAPI) -> None:
    """Register handlers so that nothing leaves the API except as a problem document."""
    app.add_exception_handler(LedgerRejection, _on_rejection)  # type: ignore[arg-type]
    app.add_exception_handler(TokenError, _on_token_error)  # type: ignore[arg-type]
    app.add_exception_handler(InsufficientRole, _on_forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(RateLimited, _on_rate_limited)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidCursor, _on_bad_cursor)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _on_database_down)
    app.add_exception_handler(OperationalError, _on_database_down)
    app.add_exception_handler(DataError, _on_data_error)  # type: ignore[arg-type]
    app.add_exception_handler(ReadOnlySqlTransaction, _on_read_only)
    app.add_exception_handler(InvariantViolation, _on_invariant)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)


async def _on_rejection(_: Request, exc: LedgerRejection) -> Response:
    return rejection_response(exc)


async def _on_token_error(_: Request, exc: TokenError) -> Response:
    return problem(401, exc.code, exc.detail, headers={"WWW-Authenticate": "Bearer"})


async def _on_forbidden(_: Request, exc: InsufficientRole) -> Response:
    return problem(403, "insufficient_role", str(exc))


async def _on_rate_limited(_: Request, exc: RateLimited) -> Response:
    RATE_LIMITED.labels(exc.kind).inc()
    return problem(
        429,
        "rate_limited",
        f"too many requests from this {'caller' if exc.kind == 'token' else 'address'};"
        f" retry after {exc.retry_after_s} s (nothing was done)",
        headers={"Retry-After": str(exc.retry_after_s)},
    )


async def _on_bad_cursor(_: Request, exc: InvalidCursor) -> Response:
    return problem(400, "invalid_cursor", "the cursor is not one this API returned")


async def _on_validation(_: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return problem(400, "malformed_json", "the request body is not valid JSON")
    first = errors[0] if errors else {}
    location = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "invalid request"))
    code = _validation_code(errors)
    return problem(
        422,
        code,
        f"{location}: {message}" if location else message,
        extra={"errors": [_public_error(error) for error in errors[:20]]},
    )


def _validation_code(errors: Any) -> str:
    """Amount errors get their own code, so a client can tell them from other shape errors."""
    for error in errors:
        location = error.get("loc", ())
        if location and location[-1] == "amount":
            return RejectCode.INVALID_AMOUNT.value
    return RejectCode.VALIDATION_FAILED.value


def _public_error(error: Any) -> dict[str, Any]:
    return {
        "location": [str(part) for part in error.get("loc", ())],
        "message": str(error.get("msg", "")),
    }


async def _on_http(_: Request, exc: StarletteHTTPException) -> Response:
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
    code = codes.get(exc.status_code, "http_error")
    return problem(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _on_database_down(_: Request, exc: Exception) -> Response:
    log.error("database.unavailable", error=type(exc).__name__, message=str(exc))
    return problem(
        503, "database_unavailable", "the database is unavailable; retry with the same key"
    )


async def _on_read_only(_: Request, exc: Exception) -> Response:
    """The database refused a write as read-only: the posting freeze held by the database
    (default_transaction_read_only), or a standby after a failover. Reads carry on."""
    log.warning("database.read_only", error=type(exc).__name__)
    return read_only_problem()


async def _on_data_error(request: Request, exc: DataError) -> Response:
    """The last line of defence for a parameter the database refuses as data (SQLSTATE class
    22: a NUL byte, an out-of-range number...). Validation should have refused it first, so
    the warning asks for a check closer to the edge; the client gets a 400, not a 500."""
    log.warning(
        "request.invalid_parameter",
        path=request.url.path,
        error=type(exc).__name__,
        sqlstate=exc.sqlstate,
    )
    return problem(400, "invalid_parameter", "a request parameter cannot be stored or compared")


async def _on_invariant(request: Request, exc: InvariantViolation) -> Response:
    log.critical("invariant.violated", path=request.url.path, error=str(exc))
    return problem(500, "internal_error", "an internal invariant failed; nothing was written")


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    """A backstop only: the request log middleware (finance.api.app) catches unexpected
    exceptions first, so that the 500 is logged with its request id and counted."""
    log.exception("request.failed", path=request.url.path, error=type(exc).__name__)
    return internal_error()
