"""Dependencies shared by the routers: the container, the caller, idempotent writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.responses import Response

from finance.api.problems import InsufficientRole
from finance.api.ratelimit import RateLimiter
from finance.api.schemas import entry_response
from finance.auth.tokens import Principal, Role, TokenError
from finance.bootstrap import Container
from finance.domain.entries import PostedEntry
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services.idempotency import (
    IdempotentRequest,
    IdempotentResult,
    request_fingerprint,
    run_idempotent,
    run_idempotent_posting,
)
from finance.services.ports import LedgerTransaction


def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


ContainerDep = Annotated[Container, Depends(container)]


def principal(
    request: Request,
    app: ContainerDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The verified caller, charged to its rate limit (finance.api.ratelimit) before anything
    else runs: a 429 reads and writes nothing. A refused token is charged to the client's
    address instead, so that a storm of 401s turns into 429s."""
    limiter: RateLimiter = request.app.state.rate_limiter
    try:
        caller = _verified(app, authorization)
    except TokenError:
        limiter.charge_address(request.client.host if request.client else "unknown")
        raise
    request.state.tenant_id = caller.tenant_id
    limiter.charge_caller(caller.tenant_id, caller.subject)
    return caller


def _verified(app: Container, authorization: str | None) -> Principal:
    if not authorization:
        raise TokenError("token_missing", "an Authorization: Bearer <token> header is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("token_malformed", "the Authorization header must be 'Bearer <token>'")
    return app.verifier.verify(token.strip())


class RoleGuard:
    """`Depends(RoleGuard(Role.ACCOUNTANT))`: the caller, if their roles include `role`."""

    def __init__(self, role: Role) -> None:
        self.role = role

    def __call__(self, caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if not caller.has(self.role):
            raise InsufficientRole(self.role.value)
        return caller


Viewer = Annotated[Principal, Depends(RoleGuard(Role.VIEWER))]
Accountant = Annotated[Principal, Depends(RoleGuard(Role.ACCOUNTANT))]
Admin = Annotated[Principal, Depends(RoleGuard(Role.ADMIN))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Client-chosen key; a retry with the same key and body replays the result",
    ),
]


def idempotent_write(
    request: Request,
    app: Container,
    caller: Principal,
    key: str | None,
    body: Any,
    operation: Callable[[LedgerTransaction], tuple[int, bytes]],
) -> Response:
    """A write whose key keeps the status and body `operation` returns."""
    result = run_idempotent(app.store, caller.tenant_id, _request(request, key, body), operation)
    return _response(result)


def idempotent_posting(
    request: Request,
    app: Container,
    caller: Principal,
    key: str | None,
    body: Any,
    post: Callable[[LedgerTransaction, UUID], PostedEntry],
) -> Response:
    """A write that posts one entry (under the id it is given): its key keeps the entry's id,
    and the response, first or replayed, is the entry's (`entry_response`)."""
    result = run_idempotent_posting(
        app.store, caller.tenant_id, _request(request, key, body), post, entry_response
    )
    return _response(result)


def _request(request: Request, key: str | None, body: Any) -> IdempotentRequest:
    if key is None:
        raise LedgerRejection(
            RejectCode.IDEMPOTENCY_KEY_MISSING, "writes need an Idempotency-Key header"
        )
    return IdempotentRequest(key, request_fingerprint(request.method, request.url.path, body))


def _response(result: IdempotentResult) -> Response:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return Response(
        content=result.body,
        status_code=result.status_code,
        media_type="application/json",
        headers=headers,
    )
