"""`finance signer public-key`: the public keys that sign checkpoints, for auditors to pin."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from finance.adapters.signers.select import open_signers, trust_file
from finance.cli import context
from finance.cli.output import emit_json
from finance.proofs.signing import public_key_pem

app = typer.Typer(help="The checkpoint signers (FINANCE_KMS_KEY_ID, FINANCE_PKCS11_*, ...).")


@app.command("public-key")
def public_key(
    as_json: Annotated[
        bool,
        typer.Option("--json", help='A trust file: {"keys": [{"key_id", "alg", "public_key"}]}'),
    ] = False,
) -> None:
    """Print the public key of every configured signer as PEM, or as a trust file with --json.

    The signers are opened and tried as `finance serve` does (a local key file is created on
    first use), so a misconfigured key fails here too."""
    signers = open_signers(context.settings())
    if as_json:
        emit_json(trust_file(signers))
    else:
        # Plain PEM blocks, one per key, so the output can be saved as the auditor's key file.
        sys.stdout.write("".join(public_key_pem(s.public_key_spki()) for s in signers))
