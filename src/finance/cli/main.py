"""The `finance` command: serve, migrate, tokens, tenants, accounts, post, balance, check, signer,
checkpoint(s), export(s), verify, verify-receipt, bench, torture.

Errors are one line on stderr and a non-zero exit code (1: refused or failed, 2: bad usage or
configuration), never a traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import psycopg
import structlog
import typer
from psycopg.errors import ReadOnlySqlTransaction
from psycopg_pool import PoolTimeout

from finance.adapters.postgres.integrity import run_checks
from finance.adapters.postgres.migrate import MigrationError, migrate
from finance.bootstrap import database_url
from finance.cli import (
    accounts,
    bench,
    checkpoints,
    context,
    export,
    invoices,
    journal,
    signer,
    tenants,
    tokens,
    torture,
    verify,
)
from finance.cli.output import CliError, console, emit_json, errors, table
from finance.config import ConfigError, LogFormat
from finance.domain.errors import InvariantViolation, LedgerRejection
from finance.observability import configure_logging
from finance.services.bundle_store import BundleStoreError

app = typer.Typer(
    name="finance",
    help="Finance: a multi-tenant double-entry ledger service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(tokens.app, name="token")
app.add_typer(tenants.app, name="tenants")
app.add_typer(accounts.app, name="accounts")
app.add_typer(invoices.app, name="invoices")
app.add_typer(signer.app, name="signer")
app.command("post")(journal.post)
app.command("balance")(journal.balance)
app.command("verify")(verify.verify)
app.command("verify-receipt")(verify.verify_receipt_command)
app.command("checkpoint")(checkpoints.checkpoint)
app.add_typer(checkpoints.app, name="checkpoints")
app.command("export")(export.export)
app.add_typer(export.app, name="exports")
app.add_typer(bench.app, name="bench")
app.command("torture")(torture.torture)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (FINANCE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (FINANCE_PORT)")] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this PEM certificate (FINANCE_TLS_CERT)")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="The certificate's PEM private key (FINANCE_TLS_KEY)")
    ] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option(help="Require client certificates signed by this CA (FINANCE_CLIENT_CA)"),
    ] = None,
) -> None:
    """Run the HTTP API. Without FINANCE_DATABASE_URL, on an embedded PostgreSQL."""
    import uvicorn

    from finance.api.app import create_app
    from finance.api.tls import client_identity_protocol, server_context
    from finance.bootstrap import bootstrap
    from finance.config import ServiceEnv, tls_problems

    config = context.settings()
    cert, key, ca = (
        tls_cert or config.tls_cert,
        tls_key or config.tls_key,
        client_ca or config.client_ca,
    )
    problems = tls_problems(cert, key, ca)
    if problems:
        raise ConfigError(problems)
    # Built before the database starts, so that a certificate that cannot be used stops here.
    ssl_context = None if cert is None or key is None else server_context(cert, key, ca)
    configure_logging(config.log_level, config.log_format, stream=sys.stdout)
    container = bootstrap(config)
    if config.database_url is None and config.service_env is not ServiceEnv.DEVELOPMENT:
        errors.print("warning: using the embedded PostgreSQL outside development")
    structlog.get_logger("finance").info(
        "serve.start",
        host=host or config.host,
        port=port or config.port,
        tls="mutual" if ca and ssl_context else "server" if ssl_context else "off",
        database="external" if config.database_url else f"embedded in {config.embedded_pgdata}",
        write_mode=config.write_mode.value,
        service_env=config.service_env.value,
        signer_key_ids=[signer.key_id for _, signer in container.signers],
    )
    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit it unwinds through
    # the cleanup below and the embedded server's exit hook instead of killing the process.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(
            create_app(container),
            host=host or config.host,
            port=port or config.port,
            access_log=False,
            log_level="warning",
            # Only when TLS is on: uvicorn treats any factory as "serve HTTPS".
            ssl_context_factory=None if ssl_context is None else lambda _c, _d: ssl_context,
            # With mutual TLS, each request's log line names the client certificate's CN.
            http=client_identity_protocol() if ssl_context and ca else "auto",
        )
    finally:
        container.close()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(0)


@app.command("migrate")
def migrate_command(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Apply pending database migrations (recorded in schema_version)."""
    config = context.settings()
    url = config.database_url or database_url(config)
    applied = migrate(url)
    names = [f"{m.version:04d}_{m.name}" for m in applied]
    if as_json:
        emit_json({"applied": names})
    elif names:
        console.print("applied " + ", ".join(names))
    else:
        console.print("schema is up to date")


@app.command()
def check(
    tenant: Annotated[
        list[str] | None, typer.Option(help="Only these tenants (default: all)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recompute trial balances, balances versus journal replay and the hash chain.

    Exits 1 at the first problem found, naming it."""
    config = context.settings()
    with context.database(config) as db, db.admin() as conn:
        results = run_checks(conn, tenant)
    problems = [r for r in results if not r.ok]
    if as_json:
        emit_json(
            {
                "ok": not problems,
                "results": [
                    {"tenant_id": r.tenant_id, "check": r.check, "problem": r.problem}
                    for r in results
                ],
            }
        )
    else:
        table(
            "Integrity",
            ["tenant", "check", "result"],
            [(r.tenant_id, r.check, "ok" if r.ok else f"FAILED: {r.problem}") for r in results],
        )
    if problems:
        first = problems[0]
        raise CliError(f"integrity check failed: {first.tenant_id}: {first.check}: {first.problem}")


INTERRUPTED = 130  # the shell's code for a command ended by SIGINT


def main() -> None:
    """Entry point: run the app and turn every expected failure into one line on stderr."""
    # The pool reports each failed connection attempt; the command reports the outcome once.
    logging.getLogger("psycopg").setLevel(logging.CRITICAL)
    log_to_stderr()
    try:
        outcome = app(standalone_mode=False)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        errors.print("error: interrupted")
        sys.exit(INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        message, code = describe_failure(exc)
        if message:
            errors.print(f"error: {message}", highlight=False, soft_wrap=True)
        sys.exit(code)

    # typer turns Ctrl-C inside a command into Exit(130) and, outside standalone mode, returns
    # that code instead of raising it: without this an interrupted command would exit 0.
    if outcome == INTERRUPTED:
        errors.print("error: interrupted")
        sys.exit(INTERRUPTED)


def log_to_stderr() -> None:
    """Commands log (e.g. `migrations.applied` when the embedded server is first set up) to
    stderr: their stdout is for their output, which `--json` promises is JSON alone.
    `serve` switches its logs back to stdout."""
    try:
        config = context.settings()
        level, fmt = config.log_level, config.log_format
    except ConfigError:  # the command reports it, in one line
        level, fmt = "info", LogFormat.JSON
    configure_logging(level, fmt, stream=sys.stderr)


def describe_failure(exc: BaseException) -> tuple[str, int]:
    if isinstance(exc, typer.Abort):
        return "aborted", 1
    if isinstance(exc, typer.TyperException):
        # Usage errors from typer's own click: wrong option, missing argument, bad value.
        if type(exc).__name__ == "NoArgsIsHelpError":
            return "", 0
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        return str(message), int(getattr(exc, "exit_code", 2))
    if isinstance(exc, CliError):
        return str(exc), exc.exit_code
    if isinstance(exc, LedgerRejection):
        return f"{exc.code.value}: {exc.detail}", 1
    if isinstance(exc, BundleStoreError):
        return f"export store: {exc}", 1
    if isinstance(exc, ConfigError):
        return "invalid configuration: " + "; ".join(exc.problems), 2
    if isinstance(exc, MigrationError):
        return str(exc), 1
    if isinstance(exc, ValueError):
        return str(exc), 2
    if isinstance(exc, ReadOnlySqlTransaction):
        return "the ledger is in read-only mode (FINANCE_WRITE_MODE=readonly)", 1
    if isinstance(exc, PoolTimeout | psycopg.OperationalError):
        return f"database unavailable: {str(exc).strip().splitlines()[0]}", 1
    if isinstance(exc, InvariantViolation):
        return f"internal invariant failed (nothing was written): {exc}", 1
    return f"unexpected {type(exc).__name__}: {exc}", 1


if __name__ == "__main__":
    main()
