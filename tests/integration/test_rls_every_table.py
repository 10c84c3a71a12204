"""Row-level security on every table that holds tenant rows, found in the catalog rather than
listed by hand, so that a table added by a later migration is covered the day it appears.

Two tenants are filled until every such table holds rows of both (accounts, balances, entries
and lines, an idempotency key, Merkle subtrees, signed checkpoints and a consistency proof, an
exported range). Then, as the service role: without the tenant setting a raw query sees no
row of any table; with tenant A's setting it sees all of A's rows and none of B's. A table
the fixture leaves empty fails the test: it names what the fixture must learn to fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql

from finance.adapters.bundle_stores.memory import InMemoryBundleStore
from finance.adapters.postgres.db import Database
from finance.adapters.postgres.export_log import PostgresExportLog
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.proof_store import PostgresProofStore
from finance.bench.loader import append_entries_fast
from finance.bootstrap import SystemClock
from finance.services.export import Exporter, SequenceRange
from finance.services.proofs import Proofs
from tests.integration.helpers import Conn, new_tenant, scalar
from tests.integration.test_invoicing import make_books
from tests.integration.test_privileges_and_rls import populate
from tests.signers import SIGNER_ID, FlakySigner
from tests.unit.test_invoice import SERVICE

# Tables that hold no tenant's data, and why.
TENANTLESS = {
    "schema_version": "the applied migrations",
}


@dataclass(frozen=True)
class TenantTable:
    name: str
    column: str  # the column naming the tenant
    row_security: bool
    policies: int


def tenant_tables(conn: Conn) -> list[TenantTable]:
    """Every ordinary or partitioned table of the ledger's schema that has a tenant column
    (`tenant_id`, or `id` for `tenants` itself), with its row-level security state."""
    rows = conn.execute(
        """
        SELECT c.relname,
               CASE WHEN c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END,
               c.relrowsecurity,
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
           AND (c.relname = 'tenants' OR EXISTS (
                 SELECT 1 FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
         ORDER BY c.relname
        """
    ).fetchall()
    return [TenantTable(str(n), str(col), bool(rls), int(p)) for n, col, rls, p in rows]


def all_tables(conn: Conn) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
    ).fetchall()
    return {str(row[0]) for row in rows}


def count(conn: Conn, table: TenantTable, tenant: str | None = None) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name))
    if tenant is None:
        return int(scalar(conn, query.as_string(conn)))
    query = sql.SQL("{} WHERE {} = %s").format(query, sql.Identifier(table.column))
    return int(scalar(conn, query.as_string(conn), (tenant,)))


def filled_tenant(store: PostgresLedgerStore, database: Database, key: Path) -> str:
    """A tenant with rows in every tenant table: an idempotent posting (accounts, balances,
    entry, lines, key), 300 more entries (a stored Merkle subtree at 256), two signed
    checkpoints (and the consistency proof between them), an exported range and an issued
    invoice."""
    filled = populate(store, new_tenant(store))
    signer = FlakySigner(key)
    proofs = Proofs(
        PostgresProofStore(database), SystemClock(), signer_id=SIGNER_ID,
        signers=[(SIGNER_ID, signer)],
    )  # fmt: skip
    append_entries_fast(database, filled.tenant, 260, filled.cash, filled.revenue)
    proofs.checkpoint_now(filled.tenant)
    append_entries_fast(database, filled.tenant, 40, filled.cash, filled.revenue)
    proofs.checkpoint_now(filled.tenant)
    exporter = Exporter(proofs, InMemoryBundleStore(), PostgresExportLog(database), SystemClock())
    exporter.export(filled.tenant, SequenceRange(0, 9))
    # Invoicing: settings, tax codes, an invoice's events and read model, a number taken.
    books = make_books(store, filled.tenant, prefix="invoices:")
    books.issue(books.draft(SERVICE))
    return filled.tenant


@pytest.fixture(scope="module")
def two_tenants(
    store: PostgresLedgerStore, database: Database, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    keys = tmp_path_factory.mktemp("rls-keys")
    return (
        filled_tenant(store, database, keys / "a.pem"),
        filled_tenant(store, database, keys / "b.pem"),
    )


@pytest.fixture(scope="module")
def tables(database: Database) -> list[TenantTable]:
    with database.admin() as conn:
        return tenant_tables(conn)


def test_every_table_holds_tenant_rows_or_is_known_not_to(
    database: Database, tables: list[TenantTable]
) -> None:
    with database.admin() as conn:
        everything = all_tables(conn)
    tenant_names = {table.name for table in tables}
    assert everything - tenant_names == set(TENANTLESS), "a new table: tenant rows or not?"
    # The ledger's tables at least; the catalog may find more, never fewer.
    assert {"tenants", "accounts", "journal_entries", "checkpoints", "ledger_proofs"} <= (
        tenant_names
    )


def test_every_tenant_table_has_row_level_security(tables: list[TenantTable]) -> None:
    unguarded = [table.name for table in tables if not table.row_security or not table.policies]
    assert not unguarded


def test_the_fixture_fills_every_tenant_table_for_both_tenants(
    database: Database, tables: list[TenantTable], two_tenants: tuple[str, str]
) -> None:
    with database.admin() as conn:
        empty = [
            (table.name, tenant)
            for table in tables
            for tenant in two_tenants
            if count(conn, table, tenant) == 0
        ]
    assert not empty, "fill these in filled_tenant(), so that their isolation is tested"


def test_without_the_tenant_setting_the_service_sees_no_row_of_any_table(
    database: Database, tables: list[TenantTable], two_tenants: tuple[str, str]
) -> None:
    with database.transaction(None) as conn:
        assert scalar(conn, "SELECT current_user") == "finance_app"
        assert scalar(conn, "SELECT current_setting('finance.tenant_id', true)") in (None, "")
        visible = {table.name: count(conn, table) for table in tables}
    assert visible == dict.fromkeys(visible, 0)


def test_with_a_tenant_setting_the_service_sees_all_of_its_rows_and_none_of_others(
    database: Database, tables: list[TenantTable], two_tenants: tuple[str, str]
) -> None:
    with database.admin() as conn:
        stored = {
            (t.name, tenant): count(conn, t, tenant) for t in tables for tenant in two_tenants
        }
    for me, them in (two_tenants, two_tenants[::-1]):
        with database.transaction(me) as conn:
            for table in tables:
                seen = (count(conn, table), count(conn, table, me), count(conn, table, them))
                mine = stored[(table.name, me)]
                assert seen == (mine, mine, 0), table.name


def test_the_service_cannot_read_around_row_level_security(database: Database) -> None:
    """Neither its roles (BYPASSRLS) nor a view (which reads as its owner unless
    security_invoker) nor owning a table (policies do not bind the owner) gets it past."""
    with database.transaction(None) as conn:
        bypass = conn.execute(
            "SELECT r.rolname FROM pg_roles r"
            " WHERE (r.rolbypassrls OR r.rolsuper) AND pg_has_role(current_user, r.oid, 'MEMBER')"
        ).fetchall()
        views = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm')"
            " AND has_table_privilege(c.oid, 'SELECT')"
            " AND NOT coalesce(c.reloptions @> ARRAY['security_invoker=true'], false)"
        ).fetchall()
        owned = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND pg_has_role(current_user, c.relowner, 'USAGE')"
        ).fetchall()
    assert (bypass, views, owned) == ([], [], [])
