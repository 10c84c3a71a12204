"""Tenancy, route by route: tenant A naming tenant B's objects gets exactly what it gets for
objects that do not exist (a 404 problem with the same code and detail, so no existence
oracle), lists never show B's rows, and B's ledger is untouched.

The routes come from the application itself: a /v1/ route without a probe here, or any other
route outside the short list of token-free ones, fails `test_every_route_is_probed`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from starlette.routing import BaseRoute

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.api.app import create_app
from finance.auth.tokens import TokenIssuer
from finance.proofs.strict_json import JSON_INT_MAX
from tests.conftest import make_container, tenant_with_token
from tests.e2e.helpers import (
    assert_problem,
    get_json,
    open_account,
    pair,
    post_entry,
    snapshot,
    writing,
)
from tests.e2e.invoice_helpers import SERVICE, draft_body, issued_invoice, setup_invoicing
from tests.signers import SIGNER_ID, FlakySigner

# Routes that take no token and show no tenant's data.
TOKEN_FREE = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)


@dataclass(frozen=True)
class Books:
    """A tenant's token and ids: two accounts (one with a code the other tenant lacks), two
    entries, two signed checkpoints."""

    tenant: str
    auth: dict[str, str]
    cash: str
    equity: str
    entries: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]]
    invoice: dict[str, Any]
    invoicing: dict[str, str]  # the invoice accounts
    customer: str

    def identifiers(self) -> set[str]:
        """Strings that only this tenant's rows contain."""
        found = {self.tenant, self.cash, self.equity, self.invoice["id"], self.customer}
        found |= set(self.invoicing.values())
        found |= {entry["id"] for entry in self.entries}
        found |= {entry["hash"] for entry in self.entries}
        found |= {checkpoint["root_hash"] for checkpoint in self.checkpoints}
        return found


@pytest.fixture(scope="module")
def api(
    database: Database, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The API with a checkpoint signer, so that tenant B's checkpoints and receipts exist."""
    signer = FlakySigner(tmp_path_factory.mktemp("keys") / "ledger-signer.pem")
    container = make_container(database, issuer, signers=[(SIGNER_ID, signer)])
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client


def new_books(
    api: TestClient, store: PostgresLedgerStore, issuer: TokenIssuer, *, sealed: bool, only: str
) -> Books:
    tenant, auth = tenant_with_token(store, issuer)
    cash = open_account(api, auth, "cash", "asset")
    equity = open_account(api, auth, "equity", "equity")
    open_account(api, auth, only, "asset")
    entries, checkpoints = [], []
    for amount in (7, 11):
        entries.append(post_entry(api, auth, pair(cash, equity, amount), source="s", source_id="1"))
        if sealed:
            assert api.post("/v1/checkpoints", headers=writing(auth)).status_code == 201
            checkpoints = get_json(api, "/v1/checkpoints", auth)["data"]
    invoicing = setup_invoicing(api, auth, prefix="invoices:")
    rate = [{"valid_from": "2019-07-01", "vat": {"percent": "5"}}]
    code = {"name": "Only this tenant's", "supply": "taxable", "rates": rate}
    assert api.put(f"/v1/tax-codes/{only}", json=code, headers=writing(auth)).is_success
    customer = f"Customer of {only}"
    invoice = issued_invoice(api, auth, customer={"name": customer, "address": "Dhaka"})
    return Books(tenant, auth, cash, equity, entries, checkpoints, invoice, invoicing, customer)


@pytest.fixture(scope="module")
def theirs(api: TestClient, store: PostgresLedgerStore, issuer: TokenIssuer) -> Books:
    """Tenant B: what tenant A must never see or touch."""
    return new_books(api, store, issuer, sealed=True, only="only-b")


@pytest.fixture(scope="module")
def mine(api: TestClient, store: PostgresLedgerStore, issuer: TokenIssuer) -> Books:
    """Tenant A, with the same account codes as B, entries but no checkpoint yet."""
    return new_books(api, store, issuer, sealed=False, only="only-a")


@pytest.fixture
def b_before(api: TestClient, theirs: Books) -> Iterator[dict[str, Any]]:
    """B's whole ledger, as B reads it: unchanged by anything A does in a test."""
    before = {**snapshot(api, theirs.auth), "checkpoints": checkpoints_of(api, theirs)}
    yield before
    assert {**snapshot(api, theirs.auth), "checkpoints": checkpoints_of(api, theirs)} == before


def checkpoints_of(api: TestClient, books: Books) -> Any:
    return get_json(api, "/v1/checkpoints", books.auth)


def unknown() -> str:
    return str(uuid.uuid4())


def same_refusal(responses: Sequence[Response], *ids: str) -> dict[str, Any]:
    """Both responses (to their id, to nobody's) are the same 404 problem once the ids they
    name are blanked out."""
    theirs, nobodys = responses
    assert theirs.status_code == 404, theirs.text
    first = assert_problem(theirs, 404, theirs.json()["code"])
    second = assert_problem(nobodys, 404, first["code"])
    assert blank(first, ids) == blank(second, ids)
    return first


def blank(problem: dict[str, Any], ids: tuple[str, ...]) -> str:
    """The problem as text with every id it names (whole words, longest first) blanked."""
    text = str(problem)
    for value in sorted(ids, key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", "<id>", text)
    return text


def assert_none_of(response: Response, books: Books) -> None:
    assert response.status_code < 500, response.text
    leaked = [value for value in books.identifiers() if value in response.text]
    assert not leaked, (response.request.url, leaked)


# One probe per route: A names B's object, then an object that does not exist -------------


@dataclass(frozen=True)
class Tenants:
    """What a probe works with: the API, tenant A (the caller) and tenant B."""

    api: TestClient
    mine: Books
    theirs: Books
    store: PostgresLedgerStore
    issuer: TokenIssuer

    def empty_tenant(self) -> dict[str, str]:
        """An admin token for a new tenant with nothing in its ledger."""
        return tenant_with_token(self.store, self.issuer)[1]


Probe = Callable[[Tenants], None]


def by_account_id(method: str, suffix: str) -> Probe:
    def probe(t: Tenants) -> None:
        absent = unknown()
        responses = [
            t.api.request(method, f"/v1/accounts/{account}{suffix}", headers=writing(t.mine.auth))
            for account in (t.theirs.cash, absent)
        ]
        same_refusal(responses, t.theirs.cash, absent)

    return probe


def by_entry_id(method: str, suffix: str) -> Probe:
    def probe(t: Tenants) -> None:
        absent = unknown()
        entry = t.theirs.entries[0]["id"]
        responses = [
            t.api.request(method, f"/v1/journal/{entry_id}{suffix}", headers=writing(t.mine.auth))
            for entry_id in (entry, absent)
        ]
        same_refusal(responses, entry, absent)

    return probe


def by_invoice_id(method: str, suffix: str, body: dict[str, Any] | None = None) -> Probe:
    def probe(t: Tenants) -> None:
        absent = unknown()
        invoice = t.theirs.invoice["id"]
        responses = [
            t.api.request(
                method,
                f"/v1/invoices/{invoice_id}{suffix}",
                json=body,
                headers=writing(t.mine.auth),
            )
            for invoice_id in (invoice, absent)
        ]
        same_refusal(responses, invoice, absent)

    return probe


NOTE = {"reason": "probe", "lines": [SERVICE]}
DOCUMENTS = (
    "/pdf",
    "/documents/mushak-6.3",
    "/documents/mushak-6.3.pdf",
    "/documents/mushak-6.7",
    "/documents/mushak-6.7.pdf",
)
PAYMENT = {"amount_minor": 100, "received_on": "2025-09-02"}


def list_invoices(t: Tenants) -> None:
    for params in ({}, {"customer": t.theirs.customer}, {"status": "open"}):
        response = t.api.get("/v1/invoices", headers=t.mine.auth, params=params)
        assert {i["id"] for i in response.json()["data"]} <= {t.mine.invoice["id"]}, params
        assert_none_of(response, t.theirs)


def replace_their_invoice(t: Tenants) -> None:
    """A draft naming another tenant's invoice as the one it replaces: as if it did not exist."""
    absent = unknown()
    responses = [
        t.api.post(
            "/v1/invoices", json=draft_body(SERVICE, replaces=i), headers=writing(t.mine.auth)
        )
        for i in (t.theirs.invoice["id"], absent)
    ]
    same_refusal(responses, t.theirs.invoice["id"], absent)


def their_tax_code(t: Tenants) -> None:
    responses = [
        t.api.get(f"/v1/tax-codes/{code}", headers=t.mine.auth) for code in ("only-b", "nope-x")
    ]
    same_refusal(responses, "only-b", "nope-x")


def define_their_tax_code(t: Tenants) -> None:
    """Codes are per tenant: B's code is free for A."""
    rate = [{"valid_from": "2019-07-01", "vat": {"percent": "7.5"}}]
    body = {"name": "Mine", "supply": "taxable", "rates": rate}
    created = t.api.put("/v1/tax-codes/only-b", json=body, headers=writing(t.mine.auth))
    assert created.status_code == 200, created.text
    assert_none_of(created, t.theirs)


def list_tax_codes(t: Tenants) -> None:
    response = t.api.get("/v1/tax-codes", headers=t.mine.auth)
    codes = {c["code"] for c in response.json()["data"]}
    assert "only-a" in codes
    assert "Only this tenant's" not in {
        c["name"] for c in response.json()["data"] if c["code"] == "only-b"
    }
    assert_none_of(response, t.theirs)


def read_settings(t: Tenants) -> None:
    response = t.api.get("/v1/invoicing/settings", headers=t.mine.auth)
    assert set(response.json().values()) >= set(t.mine.invoicing.values())
    assert_none_of(response, t.theirs)


def settings_on_their_accounts(t: Tenants) -> None:
    absent = {name: unknown() for name in t.theirs.invoicing}
    responses = [
        t.api.put(
            "/v1/invoicing/settings",
            json={f"{name}_account_id": account for name, account in accounts.items()},
            headers=writing(t.mine.auth),
        )
        for accounts in (t.theirs.invoicing, absent)
    ]
    same_refusal(responses, *t.theirs.invoicing.values(), *absent.values())


def reports(t: Tenants) -> None:
    for url, params in (
        ("/v1/reports/aging", {"as_of": "2026-01-01"}),
        ("/v1/reports/vat", {"from": "2025-01-01", "to": "2025-12-31"}),
    ):
        for fmt in ("json", "csv"):
            response = t.api.get(url, headers=t.mine.auth, params={**params, "format": fmt})
            assert response.status_code == 200, response.text
            assert_none_of(response, t.theirs)
    vat = get_json(
        t.api, "/v1/reports/vat", t.mine.auth, **{"from": "2025-01-01", "to": "2025-12-31"}
    )
    assert vat["invoices_issued"] == 1  # A's own invoice, not B's


def checkpoint_by_seq(t: Tenants) -> None:
    responses = [
        t.api.get(f"/v1/checkpoints/{seq}", headers=t.mine.auth) for seq in (0, JSON_INT_MAX)
    ]
    same_refusal(responses, "0", str(JSON_INT_MAX))


def latest_checkpoint(t: Tenants) -> None:
    nobody = t.empty_tenant()
    same_refusal(
        [
            t.api.get("/v1/checkpoints/latest", headers=t.mine.auth),
            t.api.get("/v1/checkpoints/latest", headers=nobody),
        ]
    )


def consistency(t: Tenants) -> None:
    responses = [
        t.api.get("/v1/checkpoints/consistency", headers=t.mine.auth, params={"from": a, "to": b})
        for a, b in ((0, 1), (JSON_INT_MAX - 1, JSON_INT_MAX))
    ]
    same_refusal(responses, "0", "1", str(JSON_INT_MAX - 1), str(JSON_INT_MAX))


def list_checkpoints(t: Tenants) -> None:
    response = t.api.get("/v1/checkpoints", headers=t.mine.auth)
    assert response.json()["data"] == []
    assert_none_of(response, t.theirs)


def list_accounts(t: Tenants) -> None:
    response = t.api.get("/v1/accounts", headers=t.mine.auth)
    invoicing = [f"invoices:{name.replace('_', '-')}" for name in t.mine.invoicing]
    expected = sorted(["cash", "equity", "only-a", *invoicing])
    assert [a["code"] for a in response.json()["data"]] == expected
    assert_none_of(response, t.theirs)


def list_entries(t: Tenants) -> None:
    mine_only = [entry["id"] for entry in t.mine.entries]
    everything = t.api.get("/v1/journal", headers=t.mine.auth)
    assert [e["id"] for e in everything.json()["data"]][:2] == mine_only  # then the invoice's
    assert_none_of(everything, t.theirs)
    for params in ({"source": "s"}, {"source_id": "1"}, {"type": "JOURNAL"}):
        response = t.api.get("/v1/journal", headers=t.mine.auth, params=params)
        assert [e["id"] for e in response.json()["data"]] == mine_only, params
        assert_none_of(response, t.theirs)
    for params in ({"account_id": t.theirs.cash}, {"reversal_of": t.theirs.entries[0]["id"]}):
        response = t.api.get("/v1/journal", headers=t.mine.auth, params=params)
        assert response.json()["data"] == [], params


def trial_balance(t: Tenants) -> None:
    response = t.api.get("/v1/trial-balance", headers=t.mine.auth)
    body = response.json()
    assert {a["account_id"] for a in body["accounts"]} <= {t.mine.cash, t.mine.equity} | {
        a["id"] for a in get_json(t.api, "/v1/accounts", t.mine.auth)["data"]
    }
    usd = next(c for c in body["currencies"] if c["currency"] == "USD")
    assert usd["debits_posted"] == 18  # A's 7 + 11, none of B's
    assert_none_of(response, t.theirs)


def open_account_with_their_code(t: Tenants) -> None:
    """Codes are unique per tenant: B's code is free for A (no oracle through 409)."""
    body = {"code": "only-b", "name": "Mine", "type": "asset", "currency": "USD"}
    created = t.api.post("/v1/accounts", json=body, headers=writing(t.mine.auth))
    assert created.status_code == 201, created.text
    assert_none_of(created, t.theirs)


def post_on_their_accounts(t: Tenants) -> None:
    absent = (unknown(), unknown())
    responses = [
        t.api.post("/v1/journal", json={"lines": pair(*ids, 5)}, headers=writing(t.mine.auth))
        for ids in ((t.theirs.cash, t.theirs.equity), absent)
    ]
    same_refusal(responses, t.theirs.cash, t.theirs.equity, *absent)


def batch_on_their_accounts(t: Tenants) -> None:
    absent = (unknown(), unknown())
    results = []
    for debit, credit in ((t.theirs.cash, t.theirs.equity), absent):
        item = {"idempotency_key": f"k-{uuid.uuid4().hex}", "lines": pair(debit, credit, 5)}
        response = t.api.post("/v1/journal/batch", json={"entries": [item]}, headers=t.mine.auth)
        assert response.status_code == 200, response.text
        results.append(response.json()["results"][0])
    assert [r["status"] for r in results] == ["refused", "refused"]
    assert [r["error"]["code"] for r in results] == ["account_not_found"] * 2
    named = (t.theirs.cash, t.theirs.equity, *absent)
    assert blank(results[0]["error"], named) == blank(results[1]["error"], named)


def seal_my_ledger(t: Tenants) -> None:
    """A checkpoint covers the caller's entries only (a fresh tenant, so that A's own
    checkpoint does not change what the other probes see)."""
    auth = t.empty_tenant()
    cash = open_account(t.api, auth, "cash", "asset")
    equity = open_account(t.api, auth, "equity", "equity")
    post_entry(t.api, auth, pair(cash, equity, 3))
    sealed = t.api.post("/v1/checkpoints", headers=writing(auth))
    assert sealed.status_code == 201, sealed.text
    assert sealed.json()["body"]["tree_size"] == 1
    assert_none_of(sealed, t.theirs)


PROBES: dict[tuple[str, str], Probe] = {
    ("GET", "/v1/accounts"): list_accounts,
    ("POST", "/v1/accounts"): open_account_with_their_code,
    ("GET", "/v1/accounts/{account_id}"): by_account_id("GET", ""),
    ("POST", "/v1/accounts/{account_id}/close"): by_account_id("POST", "/close"),
    ("GET", "/v1/accounts/{account_id}/balance"): by_account_id("GET", "/balance"),
    ("GET", "/v1/accounts/{account_id}/entries"): by_account_id("GET", "/entries"),
    ("GET", "/v1/journal"): list_entries,
    ("POST", "/v1/journal"): post_on_their_accounts,
    ("POST", "/v1/journal/batch"): batch_on_their_accounts,
    ("GET", "/v1/journal/{entry_id}"): by_entry_id("GET", ""),
    ("POST", "/v1/journal/{entry_id}/reverse"): by_entry_id("POST", "/reverse"),
    ("GET", "/v1/journal/{entry_id}/receipt"): by_entry_id("GET", "/receipt"),
    ("GET", "/v1/trial-balance"): trial_balance,
    ("GET", "/v1/checkpoints"): list_checkpoints,
    ("POST", "/v1/checkpoints"): seal_my_ledger,
    ("GET", "/v1/checkpoints/latest"): latest_checkpoint,
    ("GET", "/v1/checkpoints/consistency"): consistency,
    ("GET", "/v1/checkpoints/{seq}"): checkpoint_by_seq,
    ("GET", "/v1/invoices"): list_invoices,
    ("POST", "/v1/invoices"): replace_their_invoice,
    ("GET", "/v1/invoices/{invoice_id}"): by_invoice_id("GET", ""),
    ("PUT", "/v1/invoices/{invoice_id}"): by_invoice_id("PUT", "", draft_body(SERVICE)),
    ("POST", "/v1/invoices/{invoice_id}/issue"): by_invoice_id("POST", "/issue"),
    ("POST", "/v1/invoices/{invoice_id}/void"): by_invoice_id("POST", "/void"),
    ("POST", "/v1/invoices/{invoice_id}/write-off"): by_invoice_id("POST", "/write-off"),
    ("POST", "/v1/invoices/{invoice_id}/discard"): by_invoice_id("POST", "/discard"),
    ("POST", "/v1/invoices/{invoice_id}/payments"): by_invoice_id("POST", "/payments", PAYMENT),
    ("POST", "/v1/invoices/{invoice_id}/credit-notes"): by_invoice_id(
        "POST", "/credit-notes", NOTE
    ),
    ("POST", "/v1/invoices/{invoice_id}/debit-notes"): by_invoice_id("POST", "/debit-notes", NOTE),
    **{
        ("GET", f"/v1/invoices/{{invoice_id}}{suffix}"): by_invoice_id("GET", suffix)
        for suffix in DOCUMENTS
    },
    ("GET", "/v1/invoices/{invoice_id}/documents/notes/{position}"): by_invoice_id(
        "GET", "/documents/notes/1"
    ),
    ("GET", "/v1/invoices/{invoice_id}/documents/notes/{position}.pdf"): by_invoice_id(
        "GET", "/documents/notes/1.pdf"
    ),
    ("GET", "/v1/tax-codes"): list_tax_codes,
    ("GET", "/v1/tax-codes/{code}"): their_tax_code,
    ("PUT", "/v1/tax-codes/{code}"): define_their_tax_code,
    ("GET", "/v1/invoicing/settings"): read_settings,
    ("PUT", "/v1/invoicing/settings"): settings_on_their_accounts,
    ("GET", "/v1/reports/aging"): reports,
    ("GET", "/v1/reports/vat"): reports,
}


def served_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, frozenset[str]]]:
    """(path, methods) of every route the app serves. FastAPI wraps each included router in a
    route of its own (`original_router`), so the walk descends into those."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from served_routes(included.routes)
        else:
            methods = getattr(route, "methods", None) or set()
            yield getattr(route, "path", repr(route)), frozenset(methods - {"HEAD"})


def test_every_route_is_probed(api: TestClient) -> None:
    app = api.app
    assert isinstance(app, FastAPI)
    routed: set[tuple[str, str]] = set()
    for path, methods in served_routes(app.routes):
        if path.startswith("/v1/"):
            routed |= {(method, path) for method in methods}
        else:
            assert path in TOKEN_FREE, f"{path}: probe it here or list it as token-free"
    assert routed == set(PROBES), "every /v1/ route needs a tenancy probe"


@pytest.mark.parametrize("route", sorted(PROBES), ids=[f"{m} {p}" for m, p in sorted(PROBES)])
def test_another_tenants_objects_are_not_found_and_not_shown(
    api: TestClient,
    store: PostgresLedgerStore,
    issuer: TokenIssuer,
    mine: Books,
    theirs: Books,
    b_before: dict[str, Any],
    route: tuple[str, str],
) -> None:
    PROBES[route](Tenants(api, mine, theirs, store, issuer))


def test_their_ids_with_my_own_objects_still_find_mine(
    api: TestClient, mine: Books, theirs: Books
) -> None:
    """Control: the probes' 404s come from tenancy, not from probes that cannot succeed."""
    assert get_json(api, f"/v1/accounts/{mine.cash}", mine.auth)["code"] == "cash"
    assert get_json(api, f"/v1/journal/{mine.entries[0]['id']}", mine.auth)["sequence"] == 0
    assert get_json(api, f"/v1/accounts/{theirs.cash}", theirs.auth)["code"] == "cash"
    receipt = api.get(f"/v1/journal/{theirs.entries[0]['id']}/receipt", headers=theirs.auth)
    assert receipt.status_code == 200, receipt.text
    assert get_json(api, "/v1/checkpoints/0", theirs.auth)["body"]["tree_size"] == 1
    assert api.get("/v1/checkpoints/consistency?from=0&to=1", headers=theirs.auth).is_success
