"""Hostile request bodies on every write of the API: a clear 4xx problem, nothing written, and
the service answers the next request as if nothing happened.

Two families. Envelope attacks (too large, declared or streamed; nested 100,000 deep; not
UTF-8; NaN and Infinity, which are no JSON; a key twice; an integer of 5,000 digits; not JSON
at all) are refused by the request guard before any route runs, on every POST route, body or
not. Field attacks put SQL metacharacters, a NUL, a lone surrogate, 10,000 characters and huge
integers (2**63, 10**4000) into every leaf of every write body, in turn: each is either
refused with nothing written, or stored and read back verbatim.

The writes and their fields come from /openapi.json: a new write or a new field of a body fails
`test_every_write_and_field_is_attacked` until it is attacked here. test_api_errors.py holds
the domain refusals of the journal and accounts; test_api_hostile_queries.py the query strings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from finance.api.guards import body_bytes_max
from tests.e2e.helpers import (
    assert_problem,
    get_json,
    key,
    open_account,
    pair,
    post_entry,
    writing,
)
from tests.e2e.invoice_helpers import BUYER, SELLER, draft_body, issued_invoice, setup_invoicing

SQL = "x'); DROP TABLE journal_entries; -- \" \\ %s $1 ; /* */ ` OR 1=1"
HOSTILE_VALUES: list[object] = [
    SQL,
    "nul\x00byte",
    "lone\ud800surrogate",
    "\u202eevil\u202c" + "z" * 10_000,
    2**63,
    10**4000,
]


@dataclass(frozen=True)
class Books:
    auth: dict[str, str]
    cash: str
    equity: str
    entry: str
    invoice: str = "00000000-0000-0000-0000-000000000000"  # an open invoice


@pytest.fixture
def books(client: TestClient, auth: dict[str, str]) -> Books:
    cash = open_account(client, auth, "cash", "asset")
    equity = open_account(client, auth, "equity", "equity")
    entry = post_entry(client, auth, pair(cash, equity, 10))
    setup_invoicing(client, auth, prefix="invoices:")
    invoice = issued_invoice(client, auth)
    return Books(auth, cash, equity, entry["id"], invoice["id"])


def journal_body(b: Books) -> dict[str, Any]:
    return {
        "lines": pair(b.cash, b.equity, 5),
        "memo": "memo",
        "effective_date": "2024-01-02",
        "type": "SALE",
        "source": "shop",
        "source_id": "order-1",
        "metadata": {"key": "value"},
    }


# Every field of an invoice line, with a discount as a percentage (an amount would clash).
INVOICE_LINE = {
    "description": "Goods",
    "unit": "pcs",
    "quantity": "1",
    "unit_price_minor": 1_000,
    "tax_code": "VAT15",
    "discount_minor": 0,
    "discount_percent": "0",
}


# A valid body of every write, with every field of its schema present (None: no body).
BODIES: dict[str, Callable[[Books], dict[str, Any] | None]] = {
    "/v1/accounts": lambda _: {
        "code": "receivables",
        "name": "Receivables",
        "type": "asset",
        "currency": "USD",
        "debits_must_not_exceed_credits": False,
        "credits_must_not_exceed_debits": False,
        "metadata": {"key": "value"},
    },
    "/v1/accounts/{account_id}/close": lambda _: None,
    "/v1/journal": journal_body,
    "/v1/journal/batch": lambda b: {
        "entries": [{**journal_body(b), "idempotency_key": key(), "linked": False}]
    },
    "/v1/journal/{entry_id}/reverse": lambda _: {"memo": "undo", "effective_date": "2024-01-03"},
    "/v1/checkpoints": lambda _: None,
    "/v1/invoices": lambda _: draft_body(
        INVOICE_LINE,
        customer={**BUYER, "tin": "123456789012"},
        seller={**SELLER, "tin": "210987654321"},
        due_date="2025-10-01",
        payment_terms="30 days",
        destination="Dhaka",
        prices_include_tax=False,
        replaces=None,
    ),
    "/v1/invoices/{invoice_id}/issue": lambda _: None,
    "/v1/invoices/{invoice_id}/void": lambda _: None,
    "/v1/invoices/{invoice_id}/write-off": lambda _: None,
    "/v1/invoices/{invoice_id}/discard": lambda _: None,
    "/v1/invoices/{invoice_id}/payments": lambda b: {
        "amount_minor": 1,
        "received_on": "2025-09-02",
        "payment_id": f"p-{uuid.uuid4().hex}",
        "cash_account_id": None,
    },
    "/v1/invoices/{invoice_id}/credit-notes": lambda _: {"reason": "r", "lines": [INVOICE_LINE]},
    "/v1/invoices/{invoice_id}/debit-notes": lambda _: {"reason": "r", "lines": [INVOICE_LINE]},
}


def url_of(path: str, b: Books) -> str:
    return path.format(account_id=b.cash, entry_id=b.entry, invoice_id=b.invoice)


STATE_URLS = {
    "invoices": "/v1/invoices",
    "entries": "/v1/journal",
    "accounts": "/v1/accounts",
    "trial_balance": "/v1/trial-balance",
    "checkpoints": "/v1/checkpoints",
}


def everything(client: TestClient, b: Books, *parts: str) -> dict[str, Any]:
    """What a refused write must leave as it was: the tenant's entries, accounts (open or
    closed), totals and checkpoints, or the `parts` of them a write could change.
    (helpers.snapshot also reads every balance, which the trial balance sums: at a few
    hundred attacks a run, the difference is seconds.)"""
    return {
        name: get_json(client, url, b.auth, limit=500)
        for name, url in STATE_URLS.items()
        if name in (parts or STATE_URLS)
    }


# A field attack can only write an entry or an account.
ROWS = ("entries", "accounts", "invoices")


def still_serving(client: TestClient, b: Books) -> None:
    """After the attack the service answers, and a plain write succeeds."""
    assert client.get("/readyz").status_code == 200
    posted = client.post("/v1/journal", json=journal_body(b), headers=writing(b.auth))
    assert posted.status_code == 201, posted.text


# Where the fields are: "lines[].amount", "metadata{}" (a key) and "metadata{}=" (its value).


def body_fields(body: object, prefix: str = "") -> set[str]:
    if isinstance(body, dict):
        found: set[str] = set()
        for name, value in body.items():
            if name == "metadata":
                found |= {f"{prefix}metadata{{}}", f"{prefix}metadata{{}}="}
            else:
                dot = "." if prefix and not prefix.endswith(".") else ""
                found |= body_fields(value, f"{prefix}{dot}{name}")
        return found
    if isinstance(body, list):
        return body_fields(body[0], f"{prefix}[].")
    return {prefix}


def schema_fields(document: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> set[str]:
    """The leaves of a request body schema, in `body_fields`' notation."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return schema_fields(document, document["components"]["schemas"][name], prefix)
    variants = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if variants:
        return set().union(*(schema_fields(document, s, prefix) for s in variants))
    if isinstance(schema.get("additionalProperties"), dict) and "properties" not in schema:
        return {f"{prefix}{{}}", f"{prefix}{{}}="}
    if schema.get("type") == "object" or "properties" in schema:
        found: set[str] = set()
        for name, prop in schema.get("properties", {}).items():
            found |= schema_fields(document, prop, f"{prefix}.{name}" if prefix else name)
        return found
    if schema.get("type") == "array":
        return schema_fields(document, schema["items"], f"{prefix}[]")
    return {prefix}


def replaced(body: Any, field: str, value: object) -> Any:
    """A copy of `body` with `field` set to `value` (in the first line or entry of a list)."""
    head, _, rest = field.partition(".")
    if head.endswith("[]"):
        items = body[head[:-2]]
        return {**body, head[:-2]: [replaced(items[0], rest, value), *items[1:]]}
    if head.endswith("{}="):
        return {**body, head[:-3]: {"key": value}}
    if head.endswith("{}"):
        return {**body, head[:-2]: {str(value): "value"}}
    if rest:  # a field of a nested object (an invoice's customer)
        return {**body, head: replaced(body[head], rest, value)}
    return {**body, head: value}


def leaves(data: Any) -> Iterator[object]:
    if isinstance(data, dict):
        for name, value in data.items():
            yield name
            yield from leaves(value)
    elif isinstance(data, list):
        for item in data:
            yield from leaves(item)
    else:
        yield data


def created_object(client: TestClient, b: Books, path: str, response: Response) -> Any:
    """The object a successful write created, read back."""
    body = response.json()
    if path == "/v1/journal/batch":
        body = body["results"][0]["entry"]
    kind = path.split("/")[2]  # accounts, journal or invoices
    return get_json(client, f"/v1/{kind}/{body['id']}", b.auth)


def is_refusal(path: str, response: Response) -> bool:
    """A 4xx problem, or a batch whose only entry was refused with a problem."""
    if path == "/v1/journal/batch" and response.status_code == 200:
        [result] = response.json()["results"]
        if result["status"] != "refused":
            return False
        assert {"type", "title", "status", "detail", "code"} <= set(result["error"])
        return True
    if not 400 <= response.status_code < 500:
        return False
    assert_problem(response, response.status_code, response.json()["code"])
    return True


def attacked_fields() -> list[tuple[str, str]]:
    """(write, field) for every leaf of every write body (from the valid bodies above, which
    test_every_write_and_field_is_attacked holds to the schema)."""
    placeholder = Books({}, "00000000-0000-0000-0000-000000000000", "", "")
    return [
        (path, field)
        for path, make in sorted(BODIES.items())
        if (body := make(placeholder)) is not None
        for field in sorted(body_fields(body))
    ]


def test_every_write_and_field_is_attacked(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    writes = {path for path, ops in document["paths"].items() if "post" in ops}
    assert writes == set(BODIES)
    placeholder = Books({}, "", "", "")
    for path, make in BODIES.items():
        request = document["paths"][path]["post"].get("requestBody")
        body = make(placeholder)
        if request is None:
            assert body is None, path
            continue
        assert body is not None, path
        schema = request["content"]["application/json"]["schema"]
        assert body_fields(body) == schema_fields(document, schema), path


@pytest.mark.parametrize(("path", "field"), attacked_fields(), ids=lambda v: str(v))
def test_hostile_value_in_a_field_is_refused_or_stored_verbatim(
    client: TestClient, books: Books, path: str, field: str
) -> None:
    make = BODIES[path]
    before = everything(client, books, *ROWS)
    for value in HOSTILE_VALUES:
        body = replaced(make(books), field, value)
        response = client.post(
            url_of(path, books), content=json.dumps(body), headers=json_write(books)
        )
        assert response.status_code < 500, response.text
        if is_refusal(path, response):
            assert everything(client, books, *ROWS) == before, (field, repr(value)[:40])
            continue
        assert response.status_code in (200, 201), response.text
        sent = str(value) if field.endswith("{}") else value  # a JSON key is text
        assert sent in leaves(created_object(client, books, path, response)), field
        if path == "/v1/journal/{entry_id}/reverse":  # the next attempt needs a new entry
            books = fresh_entry(client, books)
        before = everything(client, books, *ROWS)
    still_serving(client, books)


def fresh_entry(client: TestClient, b: Books) -> Books:
    """An entry not reversed yet, for the next reversal attempt."""
    entry = post_entry(client, b.auth, pair(b.cash, b.equity, 1))
    return Books(b.auth, b.cash, b.equity, entry["id"], b.invoice)


def json_write(b: Books, content_type: str = "application/json") -> dict[str, str]:
    return {**writing(b.auth), "Content-Type": content_type}


# Envelope attacks ------------------------------------------------------------------------


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body streamed in chunks, without a Content-Length: the guard must count."""
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        sent += part
        yield b" " * part


@dataclass(frozen=True)
class Envelope:
    name: str
    content: Callable[[str], bytes | Iterator[bytes]]
    status: int
    code: str
    content_type: str = "application/json"

    def __str__(self) -> str:
        return self.name


ENVELOPES = [
    Envelope(
        "declared-over-the-limit",
        lambda path: b'{"memo": "' + b"x" * body_bytes_max(path) + b'"}',
        413,
        "body_too_large",
    ),
    Envelope(
        "streamed-over-the-limit", lambda p: chunks(body_bytes_max(p) + 1), 413, "body_too_large"
    ),
    Envelope("nested-100000-deep", lambda _: b"[" * 100_000 + b"]" * 100_000, 400, "json_too_deep"),
    Envelope("objects-40000-deep", lambda _: b'{"a":' * 40_000, 400, "json_too_deep"),
    Envelope("invalid-utf8", lambda _: b'{"memo": "\xff\xfe\xc3("}', 400, "malformed_json"),
    Envelope("utf16", lambda _: '{"memo": "x"}'.encode("utf-16"), 400, "malformed_json"),
    Envelope("nan", lambda _: b'{"memo": NaN}', 400, "malformed_json"),
    Envelope("infinity", lambda _: b'{"memo": Infinity}', 400, "malformed_json"),
    Envelope("minus-infinity", lambda _: b'{"memo": -Infinity}', 400, "malformed_json"),
    Envelope("duplicate-key", lambda _: b'{"memo": "a", "memo": "b"}', 400, "malformed_json"),
    Envelope(
        "5000-digit-integer", lambda _: b'{"memo": ' + b"9" * 5000 + b"}", 400, "malformed_json"
    ),
    Envelope("truncated", lambda _: b'{"memo": "', 400, "malformed_json"),
    Envelope("text-plain", lambda _: b'{"memo": "x"}', 415, "unsupported_media_type", "text/plain"),
    Envelope(
        "multipart",
        lambda _: b"--b\r\n\r\n--b--",
        415,
        "unsupported_media_type",
        "multipart/form-data; boundary=b",
    ),
]


@pytest.mark.parametrize("envelope", ENVELOPES, ids=str)
def test_envelope_attack_on_every_write_is_refused_before_any_route_runs(
    client: TestClient, books: Books, envelope: Envelope
) -> None:
    before = everything(client, books)
    for path in sorted(BODIES):
        response = client.post(
            url_of(path, books),
            content=envelope.content(path),
            headers=json_write(books, envelope.content_type),
        )
        assert_problem(response, envelope.status, envelope.code)
    assert everything(client, books) == before
    still_serving(client, books)


def test_the_same_entry_without_the_repeated_key_posts(client: TestClient, books: Books) -> None:
    """Control for the duplicate-key refusal: it is the repetition that is refused."""
    body = json.dumps(journal_body(books))
    posted = client.post("/v1/journal", content=body, headers=json_write(books))
    assert posted.status_code == 201, posted.text
    repeated = body[:-1] + ', "memo": "other"}'
    refused = client.post("/v1/journal", content=repeated, headers=json_write(books))
    assert "twice" in assert_problem(refused, 400, "malformed_json")["detail"]
