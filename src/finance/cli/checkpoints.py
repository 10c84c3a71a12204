"""`finance checkpoint` (seal and sign now) and `finance checkpoints list`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from finance import limits
from finance.api.schemas import CheckpointOut, checkpoint_status
from finance.cli import context
from finance.cli.output import CliError, console, emit_json, table
from finance.proofs.strict_json import b64encode

app = typer.Typer(help="Signed checkpoints of a tenant's ledger.")

Tenant = Annotated[str, typer.Option(help="Tenant id")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]


def checkpoint(
    tenant: Tenant,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the signed checkpoint (RFC 8785 bytes)")
    ] = False,
) -> None:
    """Seal the tenant's ledger now and sign the checkpoint (as POST /v1/checkpoints).

    Exits 1 if the ledger is empty or the signer is unavailable (the checkpoint is then issued
    and queued: the service signs it when the signer is back)."""
    config = context.settings()
    with context.database(config) as db:
        proofs = context.proofs(config, db)
        stored = proofs.checkpoint_now(tenant)
        reason = proofs.status.state().reason
    if not stored.is_signed:
        raise CliError(f"checkpoint {stored.seq} is issued but not signed: {reason}")
    if as_json:
        sys.stdout.write(stored.envelope().to_bytes().decode("utf-8") + "\n")
        return
    body = stored.body
    keys = ", ".join(s.key_id for s in stored.signatures or ())
    console.print(f"checkpoint {body.seq} of {body.origin}: {body.tree_size} entries")
    console.print(f"root {b64encode(body.root_hash)}")
    console.print(f"issued {body.issued_at.isoformat()}, signed by {keys}")


@app.command("list")
def list_checkpoints(
    tenant: Tenant,
    limit: Annotated[
        int, typer.Option(min=1, max=limits.PAGE_SIZE_MAX, help="How many, newest first")
    ] = 20,
    as_json: AsJson = False,
) -> None:
    """The newest checkpoints, signed or pending."""
    config = context.settings()
    with context.database(config) as db:
        found = context.proofs(config, db).list_checkpoints(tenant, None, limit)
    if as_json:
        emit_json([CheckpointOut.of(c).model_dump(mode="json") for c in found])
        return
    table(
        f"Checkpoints of {tenant}",
        ["seq", "entries", "root", "issued at", "status"],
        [
            (
                c.seq,
                c.tree_size,
                b64encode(c.body.root_hash),
                c.body.issued_at.isoformat(),
                checkpoint_status(c),
            )
            for c in found
        ],
    )
