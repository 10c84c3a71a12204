"""The final read: wait for the sealer to cover every entry, then read the ledger as the
owner into a `Snapshot` (after the service stopped, so nothing changes underneath)."""

from __future__ import annotations

import time
from uuid import UUID

import psycopg

from finance.adapters.postgres.integrity import ENTRY_POSTINGS, run_checks
from finance.proofs.checkpoint import CheckpointBody, SignedCheckpoint
from finance.proofs.signatures import signatures_from_json
from finance.proofs.strict_json import loads_strict
from finance.torture.clients import SOURCE
from finance.torture.snapshot import Snapshot, StoredAccount, StoredEntry

SEALED_POLL_S = 0.2


def wait_sealed(admin_url: str, tenant: str, timeout_s: float) -> bool:
    """Whether a signed checkpoint covered every entry within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(admin_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM journal_entries WHERE tenant_id = %s),"
                " (SELECT coalesce(max(tree_size), 0) FROM checkpoints"
                "   WHERE tenant_id = %s AND signatures IS NOT NULL)",
                (tenant, tenant),
            ).fetchone()
            if row is not None and row[0] == row[1]:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(SEALED_POLL_S)


def read_snapshot(admin_url: str, tenant: str) -> Snapshot:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        integrity = tuple((r.check, r.problem) for r in run_checks(conn, [tenant]))
        entries = tuple(
            StoredEntry(
                entry_id=row[0],
                sequence=int(row[1]),
                key=row[3] if row[2] == SOURCE else None,
                lines=tuple((a, s, int(n), c) for a, s, n, c in (row[4] or [])),
            )
            for row in conn.execute(
                f"SELECT e.id, e.sequence, e.source, e.source_id, {ENTRY_POSTINGS}"
                " FROM journal_entries e WHERE e.tenant_id = %s ORDER BY e.sequence",
                (tenant,),
            )
        )
        accounts = tuple(
            StoredAccount(str(row[0]), row[1], row[2], int(row[3]), int(row[4]), row[5], row[6])
            for row in conn.execute(
                "SELECT a.id, a.code, a.currency, b.debits_posted, b.credits_posted,"
                "       a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits"
                " FROM accounts a JOIN balances b"
                "   ON b.tenant_id = a.tenant_id AND b.account_id = a.id"
                " WHERE a.tenant_id = %s ORDER BY a.code",
                (tenant,),
            )
        )
        keys: dict[str, UUID | None] = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT key, entry_id FROM idempotency_keys WHERE tenant_id = %s", (tenant,)
            )
        }
        signed, unsigned = [], 0
        for body, signatures in conn.execute(
            "SELECT body, signatures FROM checkpoints WHERE tenant_id = %s ORDER BY seq",
            (tenant,),
        ):
            if signatures is None:
                unsigned += 1
                continue
            signed.append(
                SignedCheckpoint(
                    CheckpointBody.from_json(loads_strict(bytes(body))),
                    signatures_from_json(loads_strict(bytes(signatures))),
                )
            )
    return Snapshot(entries, accounts, keys, integrity, tuple(signed), unsigned)
