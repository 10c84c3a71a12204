"""`finance invoices`: create, issue, pay, void, write off and list invoices; the aging and
VAT return reports; rebuild the read model from the events."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from pydantic import ValidationError

from finance.adapters.postgres.integrity import all_tenant_ids
from finance.adapters.postgres.ledger_store import PostgresLedgerTx
from finance.api.invoice_schemas import InvoiceDraftIn, InvoiceOut, summary_of
from finance.api.report_schemas import AgingOut, VatReturnOut, rows_csv
from finance.cli import context
from finance.cli.output import CliError, console, emit_json, table
from finance.domain.invoicing.invoice import Invoice
from finance.domain.money import format_minor
from finance.services import invoicing
from finance.services.ids import new_entry_id
from finance.services.ports import InvoiceFilter, LedgerTransaction

app = typer.Typer(help="Invoices, their reports, and the read model.")

Tenant = Annotated[str, typer.Option(help="Tenant id")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]
AsCsv = Annotated[bool, typer.Option("--csv", help="Print CSV")]
InvoiceId = Annotated[UUID, typer.Argument(help="Invoice id")]
Version = Annotated[int | None, typer.Option(help="Refuse if the invoice is not at this version")]


def _now() -> datetime:
    return datetime.now(UTC)


def _show(invoice: Invoice, as_json: bool) -> None:
    out = InvoiceOut.of(invoice)
    if as_json:
        emit_json(out.model_dump(mode="json"))
        return
    total = format_minor(out.total_minor, out.currency)
    owed = format_minor(out.outstanding_minor, out.currency)
    console.print(
        f"invoice {out.id} v{out.version}: {out.status.value}, {out.payment_status.value},"
        f" number {out.number or '-'}, total {total} {out.currency}, outstanding {owed}"
    )


def _run(tenant: str, work: Any) -> Any:
    return context.in_tenant(context.settings(), tenant, work)


@app.command("create")
def create(
    tenant: Tenant,
    file: Annotated[
        Path, typer.Argument(help="The draft as JSON (POST /v1/invoices's body), - for stdin")
    ],
    as_json: AsJson = False,
) -> None:
    """Create a draft invoice."""
    text = sys.stdin.read() if str(file) == "-" else _read(file)
    try:
        body = InvoiceDraftIn.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise CliError(f"{file}: {where}: {first['msg']}", 2) from None
    header, lines, invoice_id = body.to_header(), body.to_lines(), new_entry_id()
    invoice = _run(tenant, lambda tx: invoicing.create_draft(tx, invoice_id, header, lines, _now()))
    _show(invoice, as_json)


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {file}: {exc}", 2) from None


@app.command("show")
def show(tenant: Tenant, invoice_id: InvoiceId, as_json: AsJson = False) -> None:
    """One invoice, from its events."""
    _show(_run(tenant, lambda tx: invoicing.load(tx, invoice_id, None)), as_json)


def _step(tenant: str, invoice_id: UUID, step: Any, version: int | None, as_json: bool) -> None:
    """A state change with no other input: issue, void, write-off."""
    _show(_run(tenant, lambda tx: step(tx, invoice_id, _now(), expected_version=version)), as_json)


@app.command("issue")
def issue(
    tenant: Tenant, invoice_id: InvoiceId, version: Version = None, as_json: AsJson = False
) -> None:
    """Number the invoice, freeze its figures and post its receivable."""
    _step(tenant, invoice_id, invoicing.issue, version, as_json)


@app.command("void")
def void(
    tenant: Tenant, invoice_id: InvoiceId, version: Version = None, as_json: AsJson = False
) -> None:
    """Reverse an issued invoice and issue its credit note."""
    _step(tenant, invoice_id, invoicing.void, version, as_json)


@app.command("write-off")
def write_off(
    tenant: Tenant, invoice_id: InvoiceId, version: Version = None, as_json: AsJson = False
) -> None:
    """Write the outstanding amount off as bad debt."""
    _step(tenant, invoice_id, invoicing.write_off, version, as_json)


@app.command("pay")
def pay(
    tenant: Tenant,
    invoice_id: InvoiceId,
    amount_minor: Annotated[int, typer.Option(min=1, help="Amount received, in minor units")],
    payment_id: Annotated[str, typer.Option(help="The payment's id (recorded once)")],
    received_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
    as_json: AsJson = False,
) -> None:
    """Record a payment against an invoice."""
    day = _day(received_on) or _now().date()

    def work(tx: LedgerTransaction) -> Invoice:
        return invoicing.record_payment(
            tx, invoice_id, payment_id=payment_id, amount_minor=amount_minor,
            received_on=day, now=_now(),
        )  # fmt: skip

    _show(_run(tenant, work), as_json)


@app.command("list")
def list_invoices(
    tenant: Tenant,
    status: Annotated[
        str | None, typer.Option(help="draft, open, paid, void, uncollectible, discarded")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: AsJson = False,
) -> None:
    """Invoices from the read model, oldest first."""
    flt = InvoiceFilter(status=status)
    rows = [
        summary_of(r) for r in _run(tenant, lambda tx: tx.invoices.list_invoices(flt, None, limit))
    ]
    if as_json:
        emit_json([row.model_dump(mode="json") for row in rows])
        return
    table(
        "Invoices",
        ["id", "number", "status", "payment", "customer", "total", "outstanding"],
        [(r.id, r.number, r.status.value, r.payment_status.value, r.customer_name,
          format_minor(r.total_minor, r.currency), format_minor(r.outstanding_minor, r.currency))
         for r in rows],
        width=160,
    )  # fmt: skip


@app.command("aging")
def aging(
    tenant: Tenant,
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Receivables aging per customer: current, 1-30, 31-60, 61-90, over 90 days."""
    day = _day(as_of) or _now().date()
    report = AgingOut.of(day, _run(tenant, lambda tx: invoicing.aging_report(tx, day)))
    if as_csv:
        sys.stdout.write(rows_csv(list(report.data)))
    elif as_json:
        emit_json(report.model_dump(mode="json"))
    else:
        table(
            f"Receivables aging on {day.isoformat()}",
            ["customer", "currency", "current", "1-30", "31-60", "61-90", "over 90", "total"],
            [(r.customer, r.currency, *(format_minor(v, r.currency) for v in (
                r.current_minor, r.days_1_30_minor, r.days_31_60_minor, r.days_61_90_minor,
                r.over_90_minor, r.total_minor))) for r in report.data],
            width=160,
        )  # fmt: skip


@app.command("vat-return")
def vat_return(
    tenant: Tenant,
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD")],
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Output VAT and SD by rate for a period, with credit note adjustments (Mushak-9.1)."""
    first, last = _required_day(start), _required_day(end)
    found = _run(tenant, lambda tx: invoicing.vat_return_report(tx, first, last))
    report = VatReturnOut.of(found)
    if as_csv:
        sys.stdout.write(rows_csv(list(report.data)))
    elif as_json:
        emit_json(report.model_dump(mode="json"))
    else:
        table(
            f"VAT return {first.isoformat()} .. {last.isoformat()}",
            ["kind", "currency", "supply", "VAT", "SD", "lines", "value", "SD amt", "VAT amt"],
            [(r.kind, r.currency, r.supply.value, r.vat_rate, r.sd_rate, r.lines,
              format_minor(r.value_minor, r.currency), format_minor(r.sd_minor, r.currency),
              format_minor(r.vat_minor, r.currency)) for r in report.data],
            width=160,
        )  # fmt: skip
        for net in report.net:
            console.print(
                f"{net.currency}: SD payable {format_minor(net.sd_payable_minor, net.currency)},"
                f" VAT payable {format_minor(net.vat_payable_minor, net.currency)}"
            )


@app.command("rebuild")
def rebuild(
    tenant: Annotated[
        list[str] | None, typer.Option(help="Only these tenants (default: all)")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Replay every invoice's events into a fresh read model, in one transaction."""
    config = context.settings()
    with context.database(config) as db, db.admin() as conn, conn.transaction():
        tenants = tenant if tenant else all_tenant_ids(conn)
        conn.execute("DELETE FROM invoices WHERE tenant_id = ANY(%s)", (tenants,))
        counts = {t: invoicing.rebuild_read_model(PostgresLedgerTx(conn, t)) for t in tenants}
    if as_json:
        emit_json({"rebuilt": counts})
    else:
        console.print(f"rebuilt {sum(counts.values())} invoices of {len(counts)} tenants")


def _required_day(text: str) -> date:
    day = _day(text)
    if day is None:  # pragma: no cover - typer makes the option required
        raise CliError("a date is required", 2)
    return day


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r} is not a date (YYYY-MM-DD)", 2) from None
