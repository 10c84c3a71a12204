"""Invoices on PostgreSQL (migration 0009): the event streams, the read model, the gap-free
counters, the tenant's tax codes and invoicing settings.

Events and tax codes are stored as JSON made by pydantic from the domain's dataclasses (dates
as ISO strings, decimals as strings, ids as strings): exact, and read back into the same
values. The event's class name is its `type`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.domain.invoicing import invoice as inv
from finance.domain.invoicing.fiscal import FiscalYearStart, Series
from finance.domain.invoicing.invoice import Invoice, InvoiceEvent, IssueRules
from finance.domain.invoicing.postings import InvoiceAccounts
from finance.domain.invoicing.settings import InvoiceSettings
from finance.domain.invoicing.tax import TaxCode
from finance.services.ports import InvoiceFilter

_EVENT_TYPES: Final[dict[str, type[Any]]] = {
    cls.__name__: cls
    for cls in (
        inv.InvoiceDrafted,
        inv.HeaderChanged,
        inv.LineAdded,
        inv.LineRemoved,
        inv.InvoiceDiscarded,
        inv.InvoiceIssued,
        inv.PaymentRecorded,
        inv.InvoiceVoided,
        inv.InvoiceWrittenOff,
        inv.NoteIssued,
    )
}
_ADAPTERS: Final = {name: TypeAdapter(cls) for name, cls in _EVENT_TYPES.items()}
_TAX_CODE: Final = TypeAdapter(TaxCode)
_INVOICE: Final = TypeAdapter(Invoice)


def event_to_json(event: InvoiceEvent) -> tuple[str, Any]:
    name = type(event).__name__
    return name, _ADAPTERS[name].dump_python(event, mode="json")


def event_from_json(name: str, data: Any) -> InvoiceEvent:
    adapter = _ADAPTERS.get(name)
    if adapter is None:
        raise InvariantViolation(f"unknown invoice event type {name!r} in the store")
    event: InvoiceEvent = adapter.validate_python(data)
    return event


def invoice_state_json(invoice: Invoice) -> Any:
    return _INVOICE.dump_python(invoice, mode="json")


class PostgresInvoiceRepository:
    def __init__(self, conn: psycopg.Connection[Any], tenant_id: str) -> None:
        self.conn = conn
        self.tenant_id = tenant_id

    def _rows(self, query: str, params: Sequence[object]) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query.encode(), params)
            return cur.fetchall()

    # Settings and tax codes -----------------------------------------------------------------

    def settings(self) -> InvoiceSettings | None:
        rows = self._rows("SELECT * FROM invoice_settings WHERE tenant_id = %s", (self.tenant_id,))
        if not rows:
            return None
        row = rows[0]
        accounts = InvoiceAccounts(
            receivable=row["receivable_account"],
            revenue=row["revenue_account"],
            vat_payable=row["vat_payable_account"],
            sd_payable=row["sd_payable_account"],
            customer_credit=row["customer_credit_account"],
            bad_debt=row["bad_debt_account"],
        )
        return InvoiceSettings(
            accounts=accounts,
            cash=row["cash_account"],
            fiscal_year_start=FiscalYearStart(
                row["fiscal_year_start_month"], row["fiscal_year_start_day"]
            ),
            rules=IssueRules(
                buyer_bin_from_minor=row["buyer_bin_from_minor"],
                seller_bin_required=row["seller_bin_required"],
                payment_days_default=row["payment_days_default"],
            ),
        )

    def save_settings(self, settings: InvoiceSettings, now: datetime) -> None:
        a, rules, start = settings.accounts, settings.rules, settings.fiscal_year_start
        values = (
            self.tenant_id, a.receivable, a.revenue, a.vat_payable, a.sd_payable,
            a.customer_credit, a.bad_debt, settings.cash, start.month, start.day,
            rules.buyer_bin_from_minor, rules.seller_bin_required, rules.payment_days_default,
            now,
        )  # fmt: skip
        columns = (
            "tenant_id, receivable_account, revenue_account, vat_payable_account,"
            " sd_payable_account, customer_credit_account, bad_debt_account, cash_account,"
            " fiscal_year_start_month, fiscal_year_start_day, buyer_bin_from_minor,"
            " seller_bin_required, payment_days_default, updated_at"
        )
        updates = ", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in columns.split(",")[1:])
        self.conn.execute(
            f"INSERT INTO invoice_settings ({columns}) VALUES ({', '.join(['%s'] * 14)})"
            f" ON CONFLICT (tenant_id) DO UPDATE SET {updates}",
            values,
        )

    def tax_codes(self) -> dict[str, TaxCode]:
        rows = self._rows(
            "SELECT definition FROM tax_codes WHERE tenant_id = %s", (self.tenant_id,)
        )
        codes = [_TAX_CODE.validate_python(row["definition"]) for row in rows]
        return {code.code: code for code in codes}

    def save_tax_code(self, code: TaxCode, now: datetime) -> None:
        self.conn.execute(
            "INSERT INTO tax_codes (tenant_id, code, definition, updated_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id, code)"
            " DO UPDATE SET definition = EXCLUDED.definition, updated_at = EXCLUDED.updated_at",
            (self.tenant_id, code.code, Jsonb(_TAX_CODE.dump_python(code, mode="json")), now),
        )

    # Streams ---------------------------------------------------------------------------------

    def events(self, invoice_id: UUID) -> list[InvoiceEvent]:
        rows = self._rows(
            "SELECT version, type, data FROM invoice_events"
            " WHERE tenant_id = %s AND invoice_id = %s ORDER BY version",
            (self.tenant_id, invoice_id),
        )
        if [row["version"] for row in rows] != list(range(1, len(rows) + 1)):
            raise InvariantViolation(f"the event stream of invoice {invoice_id} has a gap")
        return [event_from_json(row["type"], row["data"]) for row in rows]

    def append(
        self, invoice_id: UUID, version: int, events: Sequence[InvoiceEvent], at: datetime
    ) -> None:
        rows = [
            (self.tenant_id, invoice_id, version + offset, *_typed(event), at)
            for offset, event in enumerate(events, start=1)
        ]
        try:
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO invoice_events"
                    " (tenant_id, invoice_id, version, type, data, recorded_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    rows,
                )
        except errors.UniqueViolation as exc:
            raise LedgerRejection(
                RejectCode.INVOICE_VERSION_CONFLICT,
                f"invoice {invoice_id} changed after version {version}; read it again",
                context={"version": str(version)},
            ) from exc

    def project(self, invoice: Invoice, at: datetime) -> None:
        header = invoice.header
        self.conn.execute(
            "INSERT INTO invoices (tenant_id, id, version, status, payment_status, number,"
            " location, fiscal_year, customer_name, customer_bin, currency, issue_date,"
            " due_date, total_minor, paid_minor, outstanding_minor, state, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant_id, id) DO UPDATE SET version = EXCLUDED.version,"
            " status = EXCLUDED.status, payment_status = EXCLUDED.payment_status,"
            " number = EXCLUDED.number, location = EXCLUDED.location,"
            " fiscal_year = EXCLUDED.fiscal_year, customer_name = EXCLUDED.customer_name,"
            " customer_bin = EXCLUDED.customer_bin, currency = EXCLUDED.currency,"
            " issue_date = EXCLUDED.issue_date, due_date = EXCLUDED.due_date,"
            " total_minor = EXCLUDED.total_minor, paid_minor = EXCLUDED.paid_minor,"
            " outstanding_minor = EXCLUDED.outstanding_minor, state = EXCLUDED.state,"
            " updated_at = EXCLUDED.updated_at",
            (
                self.tenant_id, invoice.id, invoice.version, invoice.status.value,
                invoice.payment_status.value, invoice.number, header.location, invoice.fiscal_year,
                header.customer.name,
                None if header.customer.bin is None else str(header.customer.bin),
                header.currency, invoice.issue_date, invoice.due_date, invoice.total_minor,
                invoice.paid_minor, invoice.outstanding_minor,
                Jsonb(invoice_state_json(invoice)), at,
            ),
        )  # fmt: skip

    def list_invoices(
        self, flt: InvoiceFilter, after: UUID | None, limit: int
    ) -> list[dict[str, Any]]:
        clauses = ["tenant_id = %s"]
        params: list[object] = [self.tenant_id]
        for column, value, op in (
            ("id", after, ">"),
            ("status", flt.status, "="),
            ("customer_name", flt.customer_name, "="),
            ("fiscal_year", flt.fiscal_year, "="),
            ("issue_date", flt.issued_from, ">="),
            ("issue_date", flt.issued_to, "<="),
        ):
            if value is not None:
                clauses.append(f"{column} {op} %s")
                params.append(value)
        params.append(limit)
        where = " AND ".join(clauses)
        return self._rows(
            "SELECT id, version, status, payment_status, number, fiscal_year, location,"
            " customer_name, customer_bin, currency, issue_date, due_date, total_minor,"
            f" paid_minor, outstanding_minor, updated_at FROM invoices WHERE {where}"
            " ORDER BY id LIMIT %s",
            params,
        )

    def open_invoices(self) -> list[Invoice]:
        rows = self._rows(
            "SELECT state FROM invoices WHERE tenant_id = %s AND status = 'open'"
            " AND outstanding_minor > 0 ORDER BY id",
            (self.tenant_id,),
        )
        return [_INVOICE.validate_python(row["state"]) for row in rows]

    def invoices_touching(self, start: date, end: date) -> list[Invoice]:
        rows = self._rows(
            "SELECT state FROM invoices WHERE tenant_id = %s AND (issue_date BETWEEN %s AND %s"
            " OR (status = 'void' AND ((state->>'voided_at')::timestamptz AT TIME ZONE 'UTC')::date"
            " BETWEEN %s AND %s) OR EXISTS (SELECT 1 FROM jsonb_array_elements(state->'notes') n"
            " WHERE ((n->>'at')::timestamptz AT TIME ZONE 'UTC')::date BETWEEN %s AND %s))"
            " ORDER BY id",
            (self.tenant_id, start, end, start, end, start, end),
        )
        return [_INVOICE.validate_python(row["state"]) for row in rows]

    def invoice_ids(self) -> list[UUID]:
        rows = self._rows(
            "SELECT DISTINCT invoice_id FROM invoice_events WHERE tenant_id = %s"
            " ORDER BY invoice_id",
            (self.tenant_id,),
        )
        return [row["invoice_id"] for row in rows]

    def next_number(self, series: Series, location: str, fiscal_year: str) -> int:
        rows = self._rows(
            "INSERT INTO invoice_counters AS c (tenant_id, series, location, fiscal_year,"
            " last_number) VALUES (%s, %s, %s, %s, 1)"
            " ON CONFLICT (tenant_id, series, location, fiscal_year)"
            " DO UPDATE SET last_number = c.last_number + 1 RETURNING last_number",
            (self.tenant_id, series.value, location, fiscal_year),
        )
        return int(rows[0]["last_number"])


def _typed(event: InvoiceEvent) -> tuple[str, Jsonb]:
    name, data = event_to_json(event)
    return name, Jsonb(data)
