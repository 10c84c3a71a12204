"""Schema fuzzing: schemathesis generates requests for every operation of /openapi.json and
sends them, with a valid token, to the real application on the real test database.

Every response must be documented (status, media type, body schema), never a 5xx, and every
4xx an RFC 9457 problem. Each operation is fuzzed three ways: valid data (mostly unknown ids,
so mostly 404s and domain refusals), invalid data (which must be refused), and valid data
aimed at the ids of a tenant's real accounts, entry and checkpoint (which reaches the use
cases). `FINANCE_FUZZ_EXAMPLES` examples per operation and way (default 5, so the suite stays
fast); docs/security.md shows a larger run. With `FINANCE_FUZZ_REPORT=FILE`, each test module
instance (one per xdist worker) appends its request and status counts to FILE as a JSON line.

The second half pins what the fuzzer found, one test each, so that a fix cannot regress
silently even in a run whose random examples miss it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.api.routers import (
    accounts,
    health,
    invoice_documents,
    invoices,
    journal,
    proofs,
    reports,
)
from finance.auth.tokens import Role, TokenIssuer
from finance.proofs.strict_json import JSON_INT_MAX
from tests.conftest import bearer, tenant_with_token
from tests.e2e.helpers import (
    PROBLEM_FIELDS,
    PROBLEM_JSON,
    assert_problem,
    get_json,
    open_account,
    pair,
    post_entry,
    writing,
)
from tests.e2e.invoice_helpers import issued_invoice, setup_invoicing

EXAMPLES = int(os.environ.get("FINANCE_FUZZ_EXAMPLES", "5"))
REPORT = os.environ.get("FINANCE_FUZZ_REPORT")

# The operations of the document, from the routers the app includes; a route added to a
# router is fuzzed without a change here, and test_every_documented_operation_is_fuzzed fails
# when a router is added to the app but not to this list.
ROUTERS = (
    accounts.router,
    journal.router,
    proofs.router,
    health.router,
    invoices.router,
    reports.router,
    invoice_documents.router,
)
OPERATIONS = sorted(
    (method, route.path)
    for router in ROUTERS
    for route in router.routes
    if isinstance(route, APIRoute) and route.include_in_schema
    for method in route.methods or ()
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,  # passes on anything but invalid data that was accepted
]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written to .hypothesis/; a failure prints its reproduction
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)

Statuses = Counter[tuple[str, str, int]]


@pytest.fixture(scope="module")
def api_schema(client: TestClient) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", client.app)


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    found: dict[str, Any] = client.get("/openapi.json").json()
    return found


@pytest.fixture(scope="module")
def books(client: TestClient, store: PostgresLedgerStore, issuer: TokenIssuer) -> dict[str, Any]:
    """One tenant for the module, with two accounts, an entry and a (pending) checkpoint:
    the real ids that the third way of fuzzing aims at."""
    tenant, auth = tenant_with_token(store, issuer)
    cash = open_account(client, auth, "cash", "asset")
    equity = open_account(client, auth, "equity", "equity")
    entry = post_entry(client, auth, pair(cash, equity, 10))
    checkpoint = client.post("/v1/checkpoints", headers=writing(auth))
    assert checkpoint.status_code in (201, 202), checkpoint.text
    setup_invoicing(client, auth, prefix="invoices:")
    invoice = issued_invoice(client, auth)
    ids = {
        "account_id": cash,
        "entry_id": entry["id"],
        "seq": 0,
        "invoice_id": invoice["id"],
        "code": "VAT15",
    }
    # A fresh token per request: a large run outlasts any one token's lifetime.
    return {"token": lambda: bearer(issuer, tenant, Role.ADMIN), "auth": auth, "ids": ids}


@pytest.fixture(scope="module")
def statuses() -> Iterator[Statuses]:
    """(operation, way, status) counts of this module instance; reported when it ends."""
    counts: Statuses = Counter()
    yield counts
    if REPORT:
        summary = {
            "requests": sum(counts.values()),
            "by_status": by_status(counts),
            "operations": len({op for op, _, _ in counts}),
        }
        with Path(REPORT).open("a", encoding="utf-8") as out:
            out.write(json.dumps(summary) + "\n")


def by_status(counts: Statuses) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for (_, _, status), count in counts.items():
        totals[str(status)] += count
    return dict(sorted(totals.items()))


def ways(document: dict[str, Any], method: str, path: str) -> list[str]:
    """How an operation can be fuzzed: invalid data needs something to make invalid besides
    the Idempotency-Key (which the test sets), real ids need a path parameter."""
    operation = document["paths"][path][method.lower()]
    parameters = [p for p in operation.get("parameters", []) if p["in"] != "header"]
    found = ["positive"]
    if parameters or "requestBody" in operation:
        found.append("negative")
    if any(p["in"] == "path" for p in parameters):
        found.append("known-ids")
    return found


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_operation(
    api_schema: schemathesis.BaseSchema,
    document: dict[str, Any],
    books: dict[str, Any],
    statuses: Statuses,
    method: str,
    path: str,
) -> None:
    operation = api_schema[path][method]
    for way in ways(document, method, path):
        fuzz(operation, way, books, statuses)


def fuzz(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    way: str,
    books: dict[str, Any],
    statuses: Statuses,
) -> None:
    """`EXAMPLES` generated requests of one way to one operation, each validated."""
    mode = GenerationMode.NEGATIVE if way == "negative" else GenerationMode.POSITIVE
    fixed = None
    if way == "known-ids":
        path = operation.path
        fixed = {name: value for name, value in books["ids"].items() if f"{{{name}}}" in path}
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: schemathesis.Case[Any]) -> None:
        # A fresh key per request: a reused one would answer 409 for a different body.
        headers = {**books["token"](), "Idempotency-Key": f"fuzz-{uuid.uuid4().hex}"}
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        statuses[(operation.label, way, response.status_code)] += 1
        # The token is valid and names a tenant with a ledger: documented or not, a 401 or
        # 403 would be a bug.
        assert response.status_code not in (401, 403), response.text
        if 400 <= response.status_code < 500:
            assert_problem_document(response.status_code, response.headers, response.json())

    run()


def assert_problem_document(
    status: int, headers: dict[str, list[str]], body: dict[str, Any]
) -> None:
    media_types = [value.split(";")[0].strip() for value in headers.get("content-type", [])]
    assert media_types == [PROBLEM_JSON], headers
    missing = [name for name in PROBLEM_FIELDS if not body.get(name)]
    assert not missing, f"problem lacks {missing}: {body}"
    assert body["status"] == status
    assert body["type"] == f"urn:finance:problem:{body['code']}"


def test_every_documented_operation_is_fuzzed(document: dict[str, Any]) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert documented == set(OPERATIONS)


def test_every_error_response_is_declared_as_a_problem(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or (path, status) == ("/readyz", "503"):
                    continue
                content = response["content"]
                assert list(content) == [PROBLEM_JSON], (method, path, status)
                schema = content[PROBLEM_JSON]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
    problem = document["components"]["schemas"]["Problem"]
    assert set(PROBLEM_FIELDS) <= set(problem["required"])


def test_writes_declare_the_body_guards_refusals(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        if "post" in operations:
            assert {"409", "413", "415"} <= set(operations["post"]["responses"]), path


# What the fuzzer found -------------------------------------------------------------------


@pytest.mark.parametrize(
    "written", ["0", "1700000000", "2024-01-01T00:00:00", "2024-01-01T00:00:00.000Z", "20240101"]
)
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/accounts/{account}/balance", "as_of"),
        ("/v1/journal", "effective_from"),
        ("/v1/journal", "effective_to"),
    ],
)
def test_a_date_in_a_query_is_only_yyyy_mm_dd(
    client: TestClient, books: dict[str, Any], path: str, name: str, written: str
) -> None:
    """as_of=0 used to read the balance at 1970-01-01, and a datetime at midnight counted as
    its date: the fuzzer's invalid dates were accepted."""
    url = path.format(account=books["ids"]["account_id"])
    refused = client.get(url, headers=books["auth"], params={name: written})
    body = assert_problem(refused, 422, "validation_failed")
    assert "YYYY-MM-DD" in body["detail"]
    assert client.get(url, headers=books["auth"], params={name: "2024-01-01"}).status_code == 200


@pytest.mark.parametrize(
    "written",
    [0, 1700006400, 1700006400.0, "2024-01-01T00:00:00", "2024-01-01T00:00:00Z", "+2024-01-01"],
)
def test_an_effective_date_in_a_body_is_only_yyyy_mm_dd(
    client: TestClient, auth: dict[str, str], written: object
) -> None:
    """effective_date 0 used to post an entry dated 1970-01-01, and a float or a datetime
    string was taken as a date."""
    cash = open_account(client, auth, "cash", "asset")
    equity = open_account(client, auth, "equity", "equity")
    body = {"lines": pair(cash, equity, 5), "effective_date": written}
    refused = client.post("/v1/journal", json=body, headers=writing(auth))
    assert "YYYY-MM-DD" in assert_problem(refused, 422, "validation_failed")["detail"]
    entry = post_entry(client, auth, pair(cash, equity, 5), effective_date="2024-02-29")
    reversal = {"effective_date": written}
    refused = client.post(
        f"/v1/journal/{entry['id']}/reverse", json=reversal, headers=writing(auth)
    )
    assert_problem(refused, 422, "validation_failed")
    assert [e["id"] for e in get_json(client, "/v1/journal", auth)["data"]] == [entry["id"]]
    assert entry["effective_date"] == "2024-02-29"


def test_as_of_sequence_is_a_json_safe_integer(client: TestClient, books: dict[str, Any]) -> None:
    """A sequence beyond 2**53-1 used to be echoed back in the balance (2**70 included),
    a number JSON clients cannot read exactly."""
    url = f"/v1/accounts/{books['ids']['account_id']}/balance"
    for beyond in (JSON_INT_MAX + 1, 2**63, 2**70):
        refused = client.get(url, headers=books["auth"], params={"as_of_sequence": beyond})
        assert_problem(refused, 422, "validation_failed")
    at_limit = get_json(client, url, books["auth"], as_of_sequence=JSON_INT_MAX)
    assert at_limit["as_of_sequence"] == JSON_INT_MAX
