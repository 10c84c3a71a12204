"""Invoices through HTTP: a tenant's accounts, invoicing settings and tax codes set up by the
API, and draft bodies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.auth.tokens import Role, TokenIssuer
from tests.conftest import bearer
from tests.e2e.helpers import open_account, writing
from tests.integration.helpers import new_tenant

SELLER = {"name": "Seller Ltd", "address": "Gulshan, Dhaka", "bin": "001234567-0101"}
BUYER = {"name": "Buyer Ltd", "address": "Agrabad, Chattogram", "bin": "0098765430202"}
GOODS = {
    "description": "Goods",
    "unit": "pcs",
    "quantity": "3",
    "unit_price_minor": 100_000,
    "tax_code": "VAT15-SD20",
    "discount_percent": "10",
}
SERVICE = {
    "description": "Service",
    "unit": "hour",
    "quantity": "1.5",
    "unit_price_minor": 333,
    "tax_code": "VAT15",
}


def draft_body(*lines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "customer": BUYER,
        "seller": SELLER,
        "location": "DHK",
        "currency": "BDT",
        "issue_date": "2025-09-01",
        "lines": list(lines),
        **extra,
    }


@pytest.fixture
def invoice_books(client: TestClient, auth: dict[str, str]) -> dict[str, str]:
    return setup_invoicing(client, auth)


def setup_invoicing(client: TestClient, auth: dict[str, str], prefix: str = "") -> dict[str, str]:
    """Invoice accounts (BDT, codes after `prefix`), settings and two tax codes, by the API."""
    kinds = {
        "receivable": "asset",
        "revenue": "revenue",
        "vat_payable": "liability",
        "sd_payable": "liability",
        "customer_credit": "liability",
        "bad_debt": "expense",
        "cash": "asset",
    }
    ids = {
        name: open_account(client, auth, prefix + name.replace("_", "-"), kind, "BDT")
        for name, kind in kinds.items()
    }
    settings = {f"{name}_account_id": account for name, account in ids.items()}
    response = client.put("/v1/invoicing/settings", json=settings, headers=writing(auth))
    assert response.status_code == 200, response.text
    for code, vat, sd in (("VAT15-SD20", "15", "20"), ("VAT15", "15", None)):
        rate: dict[str, Any] = {"valid_from": "2019-07-01", "vat": {"percent": vat}}
        if sd:
            rate["sd"] = {"percent": sd}
        body = {"name": code, "supply": "taxable", "rates": [rate]}
        response = client.put(f"/v1/tax-codes/{code}", json=body, headers=writing(auth))
        assert response.status_code == 200, response.text
    return ids


@pytest.fixture
def other_auth(store: PostgresLedgerStore, issuer: TokenIssuer) -> dict[str, str]:
    return bearer(issuer, new_tenant(store), Role.ADMIN)


@pytest.fixture
def viewer_auth(issuer: TokenIssuer, tenant: str) -> dict[str, str]:
    return bearer(issuer, tenant, Role.VIEWER)


def issued_invoice(client: TestClient, auth: dict[str, str], **extra: Any) -> dict[str, Any]:
    """An open invoice (GOODS, 3,726.00 BDT)."""
    created = client.post("/v1/invoices", json=draft_body(GOODS, **extra), headers=writing(auth))
    assert created.status_code == 201, created.text
    issued = client.post(f"/v1/invoices/{created.json()['id']}/issue", headers=writing(auth))
    assert issued.status_code == 200, issued.text
    found: dict[str, Any] = issued.json()
    return found
