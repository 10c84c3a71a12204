"""An invoice's documents through HTTP: Mushak-6.3 and 6.7 as JSON and PDF, the generic PDF,
refusals for drafts and other tenants, and a customer named in Bangla."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.helpers import assert_problem, get_json, writing
from tests.e2e.invoice_helpers import BUYER, GOODS, SERVICE, draft_body
from tests.unit.test_invoice_documents import FIGURES_OF_LINES, pdf_text

NUMBER = "DHK/2025-26/000001"
DOCUMENTS = ("documents/mushak-6.3", "documents/mushak-6.3.pdf", "documents/mushak-6.7",
             "documents/mushak-6.7.pdf", "documents/notes/1", "documents/notes/1.pdf",
             "pdf")  # fmt: skip


def created(client: TestClient, auth: dict[str, str], body: dict[str, Any]) -> str:
    response = client.post("/v1/invoices", json=body, headers=writing(auth))
    assert response.status_code == 201, response.text
    return f"/v1/invoices/{response.json()['id']}"


def issued(client: TestClient, auth: dict[str, str], body: dict[str, Any]) -> str:
    url = created(client, auth, body)
    response = client.post(f"{url}/issue", headers=writing(auth))
    assert response.status_code == 200, response.text
    return url


def assert_pdf(response: Any, filename: str) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'inline; filename="{filename}"'
    text = pdf_text(response.content)
    for row in FIGURES_OF_LINES:
        assert row in text
    return text


@pytest.mark.usefixtures("invoice_books")
def test_the_documents_of_an_invoice_issued_then_voided(
    client: TestClient, auth: dict[str, str]
) -> None:
    url = issued(client, auth, draft_body(GOODS, SERVICE, destination="Chattogram port"))
    got = client.get(f"{url}/documents/mushak-6.3", headers=auth)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/json"
    assert "mushak-6.3-DHK-2025-26-000001.json" in got.headers["content-disposition"]
    document = got.json()
    assert (document["form"], document["number"], document["destination"]) == (
        "Mushak-6.3", NUMBER, "Chattogram port",
    )  # fmt: skip
    assert (document["seller"]["bin"], document["buyer"]["bin"]) == (
        "001234567-0101", "009876543-0202",
    )  # fmt: skip
    totals = {name: money["minor"] for name, money in document["totals"].items()}
    assert (totals["value"], totals["sd"], totals["vat"], totals["total"]) == (
        270_500, 54_000, 48_675, 373_175,
    )  # fmt: skip
    assert document["lines"][0]["vat_rate"] == {"percent": "15", "per_unit_minor": None,
                                               "text": "15%"}  # fmt: skip

    signed = client.get(f"{url}/documents/mushak-6.3.pdf?signatory=Rahim Uddin", headers=auth)
    text = assert_pdf(signed, "mushak-6.3-DHK-2025-26-000001.pdf")
    assert "Destination of supply: Chattogram port" in text
    assert "Authorised person: Rahim Uddin" in text
    assert "Seller BIN: 001234567-0101" in text
    assert "Buyer BIN: 009876543-0202" in text
    generic = assert_pdf(client.get(f"{url}/pdf", headers=auth), "invoice-DHK-2025-26-000001.pdf")
    assert "Mushak" not in generic

    assert_problem(client.get(f"{url}/documents/mushak-6.7", headers=auth), 409, "invoice_is_open")
    voided = client.post(f"{url}/void", headers=writing(auth)).json()
    note_number = voided["credit_note_number"]
    note = get_json(client, f"{url}/documents/mushak-6.7", auth)
    assert (note["form"], note["kind"], note["number"]) == ("Mushak-6.7", "credit", note_number)
    assert (note["related_invoice_number"], note["related_invoice_date"]) == (NUMBER, "2025-09-01")
    assert note["totals"]["total"] == {"minor": 373_175, "text": "3731.75"}
    filename = f"mushak-6.7-{note_number.replace('/', '-')}.pdf"
    text = assert_pdf(client.get(f"{url}/documents/mushak-6.7.pdf", headers=auth), filename)
    assert f"Related tax invoice No.: {NUMBER}" in text
    # The tax invoice stays what was issued.
    assert get_json(client, f"{url}/documents/mushak-6.3", auth)["number"] == NUMBER


@pytest.mark.usefixtures("invoice_books")
def test_the_documents_of_credit_and_debit_notes(client: TestClient, auth: dict[str, str]) -> None:
    url = issued(client, auth, draft_body(GOODS))
    returned = {**GOODS, "quantity": "1", "discount_percent": None, "description": "Returned"}
    for kind, reason in (("credit", "one returned"), ("debit", "freight")):
        body = {"reason": reason, "lines": [returned]}
        response = client.post(f"{url}/{kind}-notes", json=body, headers=writing(auth))
        assert response.status_code == 201, response.text
    numbers = [n["number"] for n in get_json(client, url, auth)["notes"]]
    credit = get_json(client, f"{url}/documents/notes/1", auth)
    assert (credit["form"], credit["kind"], credit["number"]) == (
        "Mushak-6.7",
        "credit",
        numbers[0],
    )
    assert credit["totals"]["total"] == {"minor": 138_000, "text": "1380.00"}
    debit = client.get(f"{url}/documents/notes/2.pdf", headers=auth)
    assert debit.status_code == 200, debit.text
    assert debit.headers["content-type"] == "application/pdf"
    text = pdf_text(debit.content)
    assert "Form Mushak-6.8" in text
    assert f"Debit Note No.: {numbers[1]}" in text
    assert f"Related tax invoice No.: {NUMBER}" in text
    assert "Reason: freight" in text
    assert "1 Returned pcs 1 1000.00 1000.00 0.00 1000.00 20% 200.00 15% 180.00 1380.00" in text
    assert "Amounts added in BDT." in text
    assert_problem(client.get(f"{url}/documents/notes/3", headers=auth), 404, "invoice_not_found")
    assert_problem(client.get(f"{url}/documents/notes/0.pdf", headers=auth), 422,
                   "validation_failed")  # fmt: skip


@pytest.mark.usefixtures("invoice_books")
def test_a_draft_or_discarded_invoice_has_no_documents(
    client: TestClient, auth: dict[str, str]
) -> None:
    url = created(client, auth, draft_body(SERVICE))
    for path in DOCUMENTS:
        assert_problem(client.get(f"{url}/{path}", headers=auth), 409, "invoice_is_draft")
    client.post(f"{url}/discard", headers=writing(auth))
    assert_problem(client.get(f"{url}/pdf", headers=auth), 409, "invoice_is_discarded")


@pytest.mark.usefixtures("invoice_books")
def test_another_tenants_invoice_is_404(
    client: TestClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    url = issued(client, auth, draft_body(SERVICE))
    for path in DOCUMENTS:
        assert_problem(client.get(f"{url}/{path}", headers=other_auth), 404, "invoice_not_found")
    assert_problem(
        client.get(f"{url}/documents/mushak-6.3", params={"signatory": "x" * 201}, headers=auth),
        422,
        "validation_failed",
    )


@pytest.mark.usefixtures("invoice_books")
def test_a_customer_named_in_bangla_gets_a_pdf(client: TestClient, auth: dict[str, str]) -> None:
    customer = {**BUYER, "name": "রহিম ট্রেডার্স", "address": "আগ্রাবাদ, Chattogram"}
    url = issued(client, auth, draft_body(GOODS, SERVICE, customer=customer))
    assert get_json(client, f"{url}/documents/mushak-6.3", auth)["buyer"]["name"] == "রহিম ট্রেডার্স"
    text = assert_pdf(
        client.get(f"{url}/documents/mushak-6.3.pdf", headers=auth),
        "mushak-6.3-DHK-2025-26-000001.pdf",
    )
    assert f"Buyer name: {'?' * 4} {'?' * 9}" in text
    assert "Buyer address: ????????, Chattogram" in text


def test_the_openapi_declares_the_pdfs(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("documents/mushak-6.3.pdf", "documents/mushak-6.7.pdf", "documents/notes/"
                 "{position}.pdf", "pdf"):  # fmt: skip
        content = paths[f"/v1/invoices/{{invoice_id}}/{path}"]["get"]["responses"]["200"]["content"]
        assert list(content) == ["application/pdf"]
    json_content = paths["/v1/invoices/{invoice_id}/documents/mushak-6.3"]["get"]["responses"]
    assert "application/json" in json_content["200"]["content"]
