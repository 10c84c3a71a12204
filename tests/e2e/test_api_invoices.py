"""Invoices through HTTP: settings and tax codes, a draft edited then issued, payments, void,
write-off, the read model's list, versions and idempotent retries, errors as problems."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.helpers import assert_problem, get_json, key, writing
from tests.e2e.invoice_helpers import BUYER, GOODS, SERVICE, draft_body


def balance(client: TestClient, auth: dict[str, str], account: str) -> int:
    return int(get_json(client, f"/v1/accounts/{account}/balance", auth)["balance"])


def test_an_invoice_through_its_life(
    client: TestClient, auth: dict[str, str], invoice_books: dict[str, str]
) -> None:
    created = client.post("/v1/invoices", json=draft_body(GOODS), headers=writing(auth))
    assert created.status_code == 201, created.text
    invoice = created.json()
    assert (invoice["status"], invoice["version"], invoice["number"]) == ("draft", 2, None)
    url = f"/v1/invoices/{invoice['id']}"
    got = client.get(url, headers=auth)
    assert got.headers["etag"] == '"2"'
    edited = client.put(
        url, json=draft_body(GOODS, SERVICE), headers={**writing(auth), "If-Match": '"2"'}
    )
    assert edited.status_code == 200, edited.text
    version = edited.json()["version"]
    malformed = client.post(f"{url}/issue", headers={**writing(auth), "If-Match": '"two"'})
    assert_problem(malformed, 422, "validation_failed")
    stale = client.post(f"{url}/issue", headers={**writing(auth), "If-Match": '"2"'})
    assert_problem(stale, 409, "invoice_version_conflict")
    issued = client.post(f"{url}/issue", headers={**writing(auth), "If-Match": f'"{version}"'})
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert (body["status"], body["number"], body["fiscal_year"]) == (
        "open",
        "DHK/2025-26/000001",
        "2025-26",
    )
    assert (body["value_minor"], body["sd_minor"], body["vat_minor"], body["total_minor"]) == (
        270_500, 54_000, 48_675, 373_175,
    )  # fmt: skip
    first = body["lines"][0]
    assert first["sd"] == {"percent": "20", "per_unit_minor": None}
    assert first["vat"] == {"percent": "15", "per_unit_minor": None}
    assert first["vat_minor"] == 48_600
    assert balance(client, auth, invoice_books["receivable"]) == 373_175
    again = client.post(f"{url}/issue", headers=writing(auth))
    assert_problem(again, 409, "invoice_is_open")

    payment_key = key()
    pay = {"amount_minor": 100_000, "received_on": "2025-09-10"}
    paid = client.post(f"{url}/payments", json=pay, headers=writing(auth, payment_key))
    assert paid.json()["payment_status"] == "partially_paid"
    replay = client.post(f"{url}/payments", json=pay, headers=writing(auth, payment_key))
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.content == paid.content
    assert balance(client, auth, invoice_books["cash"]) == 100_000  # once, not twice

    voided = client.post(f"{url}/void", headers=writing(auth))
    assert voided.json()["status"] == "void"
    # Numbered in the financial year of the day it is issued.
    assert re.fullmatch(r"CN/DHK/[0-9]{4}-[0-9]{2}/000001", voided.json()["credit_note_number"])
    assert balance(client, auth, invoice_books["receivable"]) == 0
    assert balance(client, auth, invoice_books["customer_credit"]) == 100_000
    assert_problem(
        client.post(f"{url}/payments", json=pay, headers=writing(auth)), 409, "invoice_is_void"
    )


def test_write_off_and_the_list(
    client: TestClient, auth: dict[str, str], invoice_books: dict[str, str]
) -> None:
    ids = []
    for _ in range(3):
        created = client.post(
            "/v1/invoices", json=draft_body(SERVICE), headers=writing(auth)
        ).json()
        ids.append(created["id"])
    client.post(f"/v1/invoices/{ids[0]}/issue", headers=writing(auth))
    written = client.post(f"/v1/invoices/{ids[0]}/write-off", headers=writing(auth))
    assert written.json()["status"] == "uncollectible"
    assert balance(client, auth, invoice_books["bad_debt"]) == 575
    client.post(f"/v1/invoices/{ids[1]}/discard", headers=writing(auth))
    listed = get_json(client, "/v1/invoices", auth)
    assert [row["id"] for row in listed["data"]] == ids
    assert [row["status"] for row in listed["data"]] == ["uncollectible", "discarded", "draft"]
    drafts = get_json(client, "/v1/invoices", auth, status="draft")
    assert [row["id"] for row in drafts["data"]] == [ids[2]]
    first_page = get_json(client, "/v1/invoices", auth, limit=2)
    rest = get_json(client, "/v1/invoices", auth, cursor=first_page["next_cursor"])
    assert [r["id"] for r in first_page["data"] + rest["data"]] == ids


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"customer": {**BUYER, "bin": "12345"}}, 422, "invalid_bin"),
        ({"customer": {**BUYER, "tin": "1234"}}, 422, "invalid_tin"),
        ({"lines": [{**SERVICE, "quantity": 1.5}]}, 422, "validation_failed"),
        ({"lines": [{**SERVICE, "tax_code": "NOPE"}]}, 404, "tax_code_not_found"),
        ({"lines": [{**SERVICE, "discount_minor": 10_000}]}, 422, "invalid_invoice_line"),
        ({"location": "dhk"}, 422, "validation_failed"),
        ({"currency": "XXX"}, 422, "unknown_currency"),
    ],
)
def test_bad_drafts_are_problems(
    client: TestClient,
    auth: dict[str, str],
    invoice_books: dict[str, str],
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = client.post(
        "/v1/invoices", json={**draft_body(SERVICE), **change}, headers=writing(auth)
    )
    assert_problem(response, status, code)


def test_a_legacy_buyer_bin_is_refused_when_issuing(
    client: TestClient, auth: dict[str, str], invoice_books: dict[str, str]
) -> None:
    body = draft_body(SERVICE, customer={**BUYER, "bin": "123456789"})
    created = client.post("/v1/invoices", json=body, headers=writing(auth)).json()
    assert created["customer"]["bin_legacy"] is True
    assert_problem(
        client.post(f"/v1/invoices/{created['id']}/issue", headers=writing(auth)),
        422,
        "legacy_bin_refused",
    )


def test_another_tenant_gets_404(
    client: TestClient,
    auth: dict[str, str],
    invoice_books: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    created = client.post("/v1/invoices", json=draft_body(SERVICE), headers=writing(auth)).json()
    url = f"/v1/invoices/{created['id']}"
    assert_problem(client.get(url, headers=other_auth), 404, "invoice_not_found")
    assert_problem(
        client.post(f"{url}/issue", headers=writing(other_auth)), 404, "invoice_not_found"
    )
    assert get_json(client, "/v1/invoices", other_auth)["data"] == []
    assert_problem(client.get("/v1/tax-codes/VAT15", headers=other_auth), 404, "tax_code_not_found")


def test_a_viewer_cannot_write(
    client: TestClient, viewer_auth: dict[str, str], invoice_books: dict[str, str]
) -> None:
    response = client.post("/v1/invoices", json=draft_body(SERVICE), headers=writing(viewer_auth))
    assert_problem(response, 403, "insufficient_role")


RETURNED = {**GOODS, "quantity": "1", "discount_percent": None, "description": "Returned"}


def test_credit_and_debit_notes(
    client: TestClient, auth: dict[str, str], invoice_books: dict[str, str]
) -> None:
    created = client.post("/v1/invoices", json=draft_body(GOODS), headers=writing(auth)).json()
    url = f"/v1/invoices/{created['id']}"
    client.post(f"{url}/issue", headers=writing(auth))
    note = {"reason": "one returned", "lines": [RETURNED]}
    credited = client.post(f"{url}/credit-notes", json=note, headers=writing(auth))
    assert credited.status_code == 201, credited.text
    body = credited.json()
    assert (body["credited_minor"], body["due_minor"], body["outstanding_minor"]) == (
        138_000,
        234_600,
        234_600,
    )
    assert re.fullmatch(r"CN/DHK/[0-9]{4}-[0-9]{2}/[0-9]{6}", body["notes"][0]["number"])
    assert body["notes"][0]["vat_minor"] == 18_000
    debited = client.post(
        f"{url}/debit-notes", json={**note, "reason": "freight"}, headers=writing(auth)
    )
    assert debited.json()["due_minor"] == 372_600
    assert debited.json()["notes"][1]["number"].startswith("DN/DHK/")
    assert balance(client, auth, invoice_books["receivable"]) == 372_600
    assert_problem(client.post(f"{url}/void", headers=writing(auth)), 422, "invalid_invoice")
    too_much = {"reason": "x", "lines": [{**RETURNED, "quantity": "4"}]}
    assert_problem(
        client.post(f"{url}/credit-notes", json=too_much, headers=writing(auth)),
        422,
        "invalid_invoice",
    )
    draft = client.post("/v1/invoices", json=draft_body(SERVICE), headers=writing(auth)).json()
    assert_problem(
        client.post(f"/v1/invoices/{draft['id']}/credit-notes", json=note, headers=writing(auth)),
        409,
        "invoice_is_draft",
    )


def test_a_replacement_names_a_void_invoice(
    client: TestClient, auth: dict[str, str], invoice_books: dict[str, str]
) -> None:
    first = client.post("/v1/invoices", json=draft_body(SERVICE), headers=writing(auth)).json()
    client.post(f"/v1/invoices/{first['id']}/issue", headers=writing(auth))
    replacing = draft_body(SERVICE, replaces=first["id"])
    assert_problem(
        client.post("/v1/invoices", json=replacing, headers=writing(auth)), 422, "invalid_invoice"
    )
    client.post(f"/v1/invoices/{first['id']}/void", headers=writing(auth))
    created = client.post("/v1/invoices", json=replacing, headers=writing(auth))
    assert created.status_code == 201, created.text
    assert created.json()["replaces"] == first["id"]
    unknown = draft_body(SERVICE, replaces="00000000-0000-7000-8000-000000000000")
    assert_problem(
        client.post("/v1/invoices", json=unknown, headers=writing(auth)), 404, "invoice_not_found"
    )
