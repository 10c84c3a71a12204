"""`finance tenants`: create and list tenant ledgers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from finance.adapters.postgres.integrity import all_tenant_ids
from finance.cli import context
from finance.cli.output import console, emit_json
from finance.domain.errors import LedgerRejection, RejectCode
from finance.services import ledger
from finance.services.ports import LedgerTransaction

app = typer.Typer(help="Create and list tenants (each has its own ledger and hash chain).")


def ensure_tenant(tx: LedgerTransaction, name: str) -> bool:
    """Create the tenant unless it exists; True when it was created now."""
    if tx.tenant_exists():
        return False
    ledger.create_tenant(tx, name, datetime.now(UTC))
    return True


@app.command("create")
def create(
    tenant: Annotated[str, typer.Argument(help="Tenant id: lowercase letters, digits, - and _")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the id)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    config = context.settings()
    created = context.in_tenant(config, tenant, lambda tx: ensure_tenant(tx, name or tenant))
    if not created:
        raise LedgerRejection(RejectCode.TENANT_EXISTS, f"tenant {tenant} already exists")
    if as_json:
        emit_json({"tenant_id": tenant, "created": True})
    else:
        console.print(f"created tenant {tenant}")


@app.command("list")
def list_tenants(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    config = context.settings()
    with context.database(config) as db, db.admin() as conn:
        tenants = all_tenant_ids(conn)
    if as_json:
        emit_json(tenants)
    else:
        for tenant in tenants:
            console.print(tenant)
