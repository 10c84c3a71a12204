"""The OpenAPI post-processing rules (api/openapi.py), on small documents of the shape FastAPI
writes; tests/e2e/test_api_fuzz.py holds the served document to what the API really sends."""

from __future__ import annotations

from typing import Any

from finance.api.openapi import PROBLEM_REF, problem_statuses, with_problem_responses

FASTAPI_422 = {
    "description": "Validation Error",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
    },
}
OK = {"200": {"description": "Successful Response", "content": {"application/json": {}}}}


def document(path: str, method: str, operation: dict[str, Any]) -> dict[str, Any]:
    return {
        "paths": {path: {method: operation}},
        "components": {"schemas": {"HTTPValidationError": {}, "ValidationError": {}}},
    }


def responses_of(processed: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    found: dict[str, Any] = processed["paths"][path][method]["responses"]
    return found


def test_a_read_without_parameters_loses_fastapis_422_and_gains_the_guards_problems() -> None:
    processed = with_problem_responses(
        document("/v1/checkpoints/latest", "get", {"responses": {**OK, "422": FASTAPI_422}})
    )
    responses = responses_of(processed, "/v1/checkpoints/latest", "get")
    assert list(responses) == ["200", "400", "401", "403", "404", "429", "500", "503"]
    for status in list(responses)[1:]:
        assert responses[status]["content"] == {
            "application/problem+json": {"schema": {"$ref": PROBLEM_REF}}
        }
    schemas = processed["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"type", "title", "status", "code", "detail"} <= set(schemas["Problem"]["required"])


def test_a_status_a_route_declares_itself_stays_and_becomes_a_problem() -> None:
    """A route's own refusal (a 429 of a rate limiter, say) keeps its description and
    headers, and is sent as a problem like every other."""
    limited = {"description": "Slow down", "headers": {"Retry-After": {"schema": {}}}}
    processed = with_problem_responses(
        document("/v1/journal", "get", {"responses": {**OK, "429": limited}})
    )
    declared = responses_of(processed, "/v1/journal", "get")["429"]
    assert declared["description"] == "Slow down"
    assert declared["headers"] == limited["headers"]
    assert list(declared["content"]) == ["application/problem+json"]


def test_readyz_keeps_its_own_503_body() -> None:
    own = {"description": "Not ready, with the reason", "content": {"application/json": {}}}
    processed = with_problem_responses(
        document("/readyz", "get", {"responses": {**OK, "503": own}})
    )
    responses = responses_of(processed, "/readyz", "get")
    assert responses["503"] == own
    assert set(responses) == {"200", "400", "500", "503"}


def test_statuses_follow_where_refusals_come_from() -> None:
    with_body: dict[str, Any] = {"requestBody": {}}
    assert problem_statuses("get", "/healthz", {}) == {400, 500, 503}
    assert problem_statuses("get", "/v1/accounts", {"parameters": [{}]}) == {
        400, 401, 403, 422, 429, 500, 503,
    }  # fmt: skip
    assert problem_statuses("post", "/v1/journal", with_body) == {
        400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 503,
    }  # fmt: skip
    assert 404 in problem_statuses("get", "/v1/journal/{entry_id}", {"parameters": [{}]})
    assert 409 in problem_statuses("get", "/v1/journal/{entry_id}/receipt", {})
