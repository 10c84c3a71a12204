"""`ledger_proofs` on PostgreSQL (migration 0003): the record of every audit bundle exported."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from finance.adapters.postgres.db import Database
from finance.domain.errors import InvariantViolation
from finance.services.export import ExportRecord

_COLUMNS = (
    "tenant_id, id, start_id, end_id, checkpoint_seq, since_seq, bundle_name, bundle_sha256,"
    " bundle_size, location, exported_at"
)


class PostgresExportLog:
    def __init__(self, database: Database) -> None:
        self.database = database

    def record(self, export: ExportRecord) -> ExportRecord:
        def write(conn: psycopg.Connection[Any]) -> ExportRecord:
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(
                    f"INSERT INTO ledger_proofs ({_COLUMNS})"
                    " VALUES (%(tenant_id)s, %(id)s, %(start_id)s, %(end_id)s,"
                    " %(checkpoint_seq)s, %(since_seq)s, %(bundle_name)s, %(bundle_sha256)s,"
                    " %(bundle_size)s, %(location)s, %(exported_at)s)"
                    " ON CONFLICT (tenant_id, bundle_sha256, location) DO NOTHING",
                    {**_params(export), "bundle_sha256": bytes.fromhex(export.bundle_sha256)},
                )
                cur.execute(
                    f"SELECT {_COLUMNS} FROM ledger_proofs WHERE tenant_id = %s"
                    " AND bundle_sha256 = %s AND location = %s",
                    (export.tenant_id, bytes.fromhex(export.bundle_sha256), export.location),
                )
                row = cur.fetchone()
            if row is None:
                raise InvariantViolation(f"the export of {export.bundle_name} was not recorded")
            return _record(row)

        return self.database.run(export.tenant_id, write)

    def list(self, tenant_id: str, limit: int) -> list[ExportRecord]:
        def read(conn: psycopg.Connection[Any]) -> list[ExportRecord]:
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(
                    f"SELECT {_COLUMNS} FROM ledger_proofs WHERE tenant_id = %s"
                    " ORDER BY exported_at DESC, id LIMIT %s",
                    (tenant_id, limit),
                )
                return [_record(row) for row in cur.fetchall()]

        return self.database.run(tenant_id, read)


def _params(export: ExportRecord) -> dict[str, object]:
    return {
        "tenant_id": export.tenant_id,
        "id": export.id,
        "start_id": export.start_id,
        "end_id": export.end_id,
        "checkpoint_seq": export.checkpoint_seq,
        "since_seq": export.since_seq,
        "bundle_name": export.bundle_name,
        "bundle_size": export.bundle_size,
        "location": export.location,
        "exported_at": export.exported_at,
    }


def _record(row: dict[str, Any]) -> ExportRecord:
    return ExportRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        start_id=int(row["start_id"]),
        end_id=int(row["end_id"]),
        checkpoint_seq=int(row["checkpoint_seq"]),
        since_seq=None if row["since_seq"] is None else int(row["since_seq"]),
        bundle_name=row["bundle_name"],
        bundle_sha256=bytes(row["bundle_sha256"]).hex(),
        bundle_size=int(row["bundle_size"]),
        location=row["location"],
        exported_at=row["exported_at"],
    )
