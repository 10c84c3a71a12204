"""`finance accounts`: open and list accounts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import uuid4

import typer

from finance.api.schemas import AccountOut
from finance.cli import context
from finance.cli.output import console, emit_json, table
from finance.domain.accounts import AccountSpec, AccountType, Side
from finance.domain.money import currency_exponent
from finance.services import ledger, queries

app = typer.Typer(help="Open and list accounts.")

Tenant = Annotated[str, typer.Option(help="Tenant id")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command("create")
def create(
    tenant: Tenant,
    code: Annotated[str, typer.Option(help="Unique code, e.g. assets:cash")],
    name: Annotated[str, typer.Option(help="Display name")],
    type: Annotated[AccountType, typer.Option(help="asset, liability, equity, revenue, expense")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code, e.g. USD")],
    no_overdraft: Annotated[
        bool, typer.Option(help="Refuse postings that take the balance below zero")
    ] = False,
    as_json: AsJson = False,
) -> None:
    currency = currency.upper()
    currency_exponent(currency)
    spec = AccountSpec(
        code=code,
        name=name,
        type=type,
        currency=currency,
        debits_must_not_exceed_credits=no_overdraft and type.normal_side is Side.CREDIT,
        credits_must_not_exceed_debits=no_overdraft and type.normal_side is Side.DEBIT,
    )
    account = context.in_tenant(
        context.settings(),
        tenant,
        lambda tx: ledger.open_account(tx, spec, uuid4(), datetime.now(UTC)),
    )
    if as_json:
        emit_json(AccountOut.of(account).model_dump(mode="json"))
    else:
        console.print(f"opened {account.type.value} account {account.code} ({account.id})")


@app.command("list")
def list_accounts(tenant: Tenant, as_json: AsJson = False) -> None:
    accounts = context.in_tenant(context.settings(), tenant, queries.all_accounts)
    if as_json:
        emit_json([AccountOut.of(a).model_dump(mode="json") for a in accounts])
        return
    table(
        f"Accounts of {tenant}",
        ["code", "name", "type", "currency", "closed", "id"],
        [
            (a.code, a.name, a.type.value, a.currency, "yes" if a.closed else "", a.id)
            for a in accounts
        ],
    )
