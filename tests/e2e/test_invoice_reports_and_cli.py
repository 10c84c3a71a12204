"""The aging and VAT return reports through the API (JSON and CSV) and the CLI, and the CLI's
invoice commands, including a rebuild of the read model that changes nothing."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.e2e.helpers import (
    assert_problem,
    environment,
    get_json,
    ok,
    one_error_line,
    run,
    writing,
)
from tests.e2e.invoice_helpers import GOODS, SERVICE, draft_body


def issued(
    client: TestClient, auth: dict[str, str], *lines: dict[str, object], customer: str = "Buyer Ltd"
) -> str:
    body = draft_body(*lines)
    body["customer"] = {"name": customer, "address": "Dhaka"}
    created = client.post("/v1/invoices", json=body, headers=writing(auth)).json()
    response = client.post(f"/v1/invoices/{created['id']}/issue", headers=writing(auth))
    assert response.status_code == 200, response.text
    return str(created["id"])


def test_reports_through_the_api(
    client: TestClient, auth: dict[str, str], invoice_books: dict[str, str]
) -> None:
    first = issued(client, auth, GOODS, customer="A")
    issued(client, auth, SERVICE, customer="B")
    voided = issued(client, auth, GOODS, customer="C")
    client.post(f"/v1/invoices/{voided}/void", headers=writing(auth))
    client.post(
        f"/v1/invoices/{first}/payments",
        json={"amount_minor": 72_600, "received_on": "2025-09-05"},
        headers=writing(auth),
    )

    aging = get_json(client, "/v1/reports/aging", auth, as_of="2025-11-15")
    assert [(r["customer"], r["days_31_60_minor"], r["total_minor"]) for r in aging["data"]] == [
        ("A", 300_000, 300_000),
        ("B", 575, 575),
    ]
    text = client.get(
        "/v1/reports/aging", headers=auth, params={"as_of": "2025-11-15", "format": "csv"}
    )
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert [(r["customer"], r["total_minor"]) for r in rows] == [("A", "300000"), ("B", "575")]

    vat = get_json(client, "/v1/reports/vat", auth, **{"from": "2025-09-01", "to": "2025-09-30"})
    assert vat["invoices_issued"] == 3
    output = {(r["kind"], r["sd_rate"]): r for r in vat["data"]}
    assert output[("output", "20%")]["vat_minor"] == 97_200
    assert output[("output", "none")]["vat_minor"] == 75
    # The void's credit note is dated today, outside September 2025.
    assert vat["credit_notes_issued"] == 0
    assert_problem(
        client.get(
            "/v1/reports/vat", headers=auth, params={"from": "2025-09-30", "to": "2025-09-01"}
        ),
        422,
        "validation_failed",
    )
    assert_problem(
        client.get("/v1/reports/vat", headers=auth, params={"from": "2025-09-01"}),
        422,
        "validation_failed",
    )


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return environment(tmp_path, database_url)


def test_invoice_commands_and_rebuild(
    client: TestClient,
    auth: dict[str, str],
    invoice_books: dict[str, str],
    tenant: str,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    draft = tmp_path / "draft.json"
    draft.write_text(json.dumps(draft_body(GOODS, SERVICE)))
    created = ok(cli_env, "invoices", "create", "--tenant", tenant, str(draft), "--json").json()
    invoice = created["id"]
    issued_json = ok(
        cli_env,
        "invoices",
        "issue",
        "--tenant",
        tenant,
        invoice,
        "--version",
        str(created["version"]),
        "--json",
    ).json()
    assert (issued_json["number"], issued_json["total_minor"]) == ("DHK/2025-26/000001", 373_175)
    paid = ok(cli_env, "invoices", "pay", "--tenant", tenant, invoice, "--amount-minor", "373175",
              "--payment-id", "bank-1", "--received-on", "2025-09-03", "--json").json()  # fmt: skip
    assert paid["status"] == "paid"
    again = run(cli_env, "invoices", "void", "--tenant", tenant, invoice)
    one_error_line(again, 1, "error: invoice_is_paid:")
    listed = ok(cli_env, "invoices", "list", "--tenant", tenant, "--json").json()
    assert [row["status"] for row in listed] == ["paid"]
    vat_csv = ok(
        cli_env,
        "invoices",
        "vat-return",
        "--tenant",
        tenant,
        "--from",
        "2025-09-01",
        "--to",
        "2025-09-30",
        "--csv",
    ).out
    assert [r["vat_minor"] for r in csv.DictReader(io.StringIO(vat_csv))] == ["48600", "75"]
    ok(cli_env, "invoices", "aging", "--tenant", tenant, "--as-of", "2025-10-01")

    before = get_json(client, "/v1/invoices", auth)
    rebuilt = ok(cli_env, "invoices", "rebuild", "--tenant", tenant, "--json").json()
    assert rebuilt == {"rebuilt": {tenant: 1}}
    assert get_json(client, "/v1/invoices", auth) == before


def test_cli_errors_are_one_line(cli_env: dict[str, str], tenant: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"customer": {}}))
    one_error_line(run(cli_env, "invoices", "create", "--tenant", tenant, str(bad)), 2, "error:")
    one_error_line(
        run(cli_env, "invoices", "aging", "--tenant", tenant, "--as-of", "2025-13-01"), 2, "error:"
    )
    missing = run(
        cli_env, "invoices", "show", "--tenant", tenant, "00000000-0000-0000-0000-000000000000"
    )
    one_error_line(missing, 1, "error: invoice_not_found:")
