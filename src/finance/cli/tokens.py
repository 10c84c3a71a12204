"""`finance token issue`: mint a token with the local issuer key (the embedded default)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from finance.auth.tokens import Role
from finance.bootstrap import local_issuer
from finance.cli import context
from finance.cli.output import console, emit_json
from finance.cli.tenants import ensure_tenant

app = typer.Typer(help="Bearer tokens for the API.")


@app.command("issue")
def issue(
    tenant: Annotated[str, typer.Option(help="Tenant the token acts for")],
    role: Annotated[list[Role], typer.Option(help="Role(s): viewer, accountant, admin")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds", min=1)] = 3600,
    subject: Annotated[str, typer.Option(help="Who the token is for (sub claim)")] = "cli",
    create_tenant: Annotated[
        bool, typer.Option(help="Create the tenant's ledger if it does not exist yet")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print a token signed by the local issuer key, which `finance serve` trusts when no
    external keys (FINANCE_JWT_PUBLIC_KEYS, _JWKS_FILE, _JWKS_URL) are configured."""
    config = context.settings()
    token = local_issuer(config).issue(
        tenant_id=tenant, roles=role, subject=subject, ttl_s=ttl, now=datetime.now(UTC)
    )
    if create_tenant:
        context.in_tenant(config, tenant, lambda tx: ensure_tenant(tx, tenant))
    if as_json:
        emit_json({"token": token, "tenant_id": tenant, "roles": [r.value for r in role]})
    else:
        console.print(token, soft_wrap=True, highlight=False)
