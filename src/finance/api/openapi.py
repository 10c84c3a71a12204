"""The OpenAPI document, made truthful about errors.

FastAPI describes a route's own responses well, but not the refusals that come from outside
the route: the request guards (400, 413, 415), the token and role checks (401, 403), the
validation handler (422) and the database handlers (500, 503). And it files a response
`model` under `application/json` whatever media type is named, while every error of this API
is `application/problem+json`. A client generator or a fuzzer that trusts the document would
then expect JSON errors that never come, or miss statuses that do.

So the document is post-processed once, when first asked for: every operation declares the
problem statuses it can answer with, each as `application/problem+json` with the `Problem`
schema, and nothing else. The rules mirror where the refusals come from; the schema fuzz test
(tests/e2e/test_api_fuzz.py) fails on any status or body the document does not declare.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from finance.api.guards import WRITE_METHODS
from finance.api.problems import PROBLEM_JSON
from finance.api.schemas import PROBLEM_TITLES, Problem

PROBLEM_REF = "#/components/schemas/Problem"
# FastAPI's own 422 body, which this API never sends (its validation errors are problems).
_UNUSED_COMPONENTS = ("HTTPValidationError", "ValidationError")
# Error responses that are not problems: a load balancer reads /readyz's 503 body, which says
# why the instance is not ready (api/routers/health.py).
_OWN_ERROR_BODIES = frozenset({("get", "/readyz", 503)})

# Every request: a NUL in the query string (guards), an unexpected failure, the database down.
_EVERY_REQUEST = (400, 500, 503)
# Every /v1/ operation needs a token (401) naming a tenant with a ledger and a role (403), and
# is rate limited per caller (429, api/ratelimit.py).
_AUTHENTICATED = (401, 403, 429)
# Writes: the body guards (413, 415), idempotency key reuse (409), the posting freeze (503).
_WRITES = (409, 413, 415)
# Reads that name something besides a path id and answer 404 when it does not exist.
_NOT_FOUND_WITHOUT_PATH_ID = frozenset(
    {
        ("get", "/v1/checkpoints/latest"),
        ("get", "/v1/checkpoints/consistency"),
        ("get", "/v1/invoicing/settings"),
    }
)
# Reads that answer 409 while the proofs they ask for are not ready (docs/api.md).
_CONFLICT_ON_READ = frozenset({("get", "/v1/journal/{entry_id}/receipt")})


def install(app: FastAPI) -> None:
    """Serve the post-processed document at /openapi.json (built once, then cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_problem_responses(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_problem_responses(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with each operation's error responses replaced by the ones it can give."""
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            operation["responses"] = _responses(method, path, operation)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema())
    for name in _UNUSED_COMPONENTS:
        schemas.pop(name, None)
    return document


def _responses(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """The operation's success responses, the error responses its route declared itself
    (kept as problems unless they are `_OWN_ERROR_BODIES`), and the problems it can give."""
    given: dict[str, Any] = operation.get("responses", {})
    declared = {
        int(status) for status, response in given.items() if _is_own_error(status, response)
    }
    responses = {status: body for status, body in given.items() if not _is_error(status)}
    for status in sorted(declared | problem_statuses(method, path, operation)):
        own = given.get(str(status))
        keep = (method, path, status) in _OWN_ERROR_BODIES and own is not None
        responses[str(status)] = own if keep else _problem_response(status, own)
    return dict(sorted(responses.items()))


def problem_statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """The problem statuses an operation can answer with, from where refusals come from."""
    statuses = set(_EVERY_REQUEST)
    if not path.startswith("/v1/"):
        return statuses
    statuses.update(_AUTHENTICATED)
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if method.upper() in WRITE_METHODS:
        statuses.update(_WRITES)
        statuses.add(404)  # an account of a line, an entry to reverse, an account to close
    if "{" in path or (method, path) in _NOT_FOUND_WITHOUT_PATH_ID:
        statuses.add(404)
    if (method, path) in _CONFLICT_ON_READ:
        statuses.add(409)
    return statuses


def _is_error(status: str) -> bool:
    return not status.isdigit() or int(status) >= 400


def _is_own_error(status: str, response: dict[str, Any]) -> bool:
    """An error response the route declared itself: not FastAPI's default 422, which it adds
    to any operation with a dependency, whether or not it has parameters."""
    fastapi_default = "HTTPValidationError" in str(response.get("content"))
    return status.isdigit() and int(status) >= 400 and not fastapi_default


def _problem_response(status: int, declared: dict[str, Any] | None) -> dict[str, Any]:
    description = (declared or {}).get("description") or PROBLEM_TITLES.get(status, "Error")
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if declared and "headers" in declared:
        response["headers"] = declared["headers"]
    return response
