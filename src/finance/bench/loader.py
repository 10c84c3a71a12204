"""A bulk loader for long ledgers: benchmarks (and tests) that need 100,000 entries to export
and verify, where posting them one by one would take minutes and measure nothing of interest."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from uuid import UUID

from finance.adapters.postgres.db import Database
from finance.domain.accounts import Side
from finance.proofs.chain import chain_hash, entry_body

CURRENCY = "USD"
EFFECTIVE = date(2024, 6, 1)


def append_entries_fast(
    database: Database, tenant: str, count: int, debit: UUID, credit: UUID
) -> None:
    """Append `count` transfers between two CURRENCY accounts as the owner, with the ledger's
    triggers off (replica mode) and everything they would write written here instead: each
    entry's body, chain hash and lines with their running totals, the balances and the chain
    head, so that `finance check` passes on the result. Thousands of entries a second: for
    benchmarks and tests that need a long ledger, never a posting path (it bypasses the
    service's checks and must run as the owner)."""
    append_transfers_fast(database, tenant, count, [(debit, credit)])


def append_transfers_fast(
    database: Database, tenant: str, count: int, pairs: Sequence[tuple[UUID, UUID]]
) -> None:
    """As `append_entries_fast`, with entry n a transfer between the accounts of
    `pairs[n % len(pairs)]` (debit, credit): a long ledger spread over many accounts, in one
    transaction."""
    if not pairs:
        raise ValueError("no account pairs to append transfers between")
    accounts = list({account for pair in pairs for account in pair})
    with database.admin() as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        head = conn.execute(
            "SELECT next_sequence, head_hash FROM ledger_heads WHERE tenant_id = %s FOR UPDATE",
            (tenant,),
        ).fetchone()
        if head is None:
            raise ValueError(f"tenant {tenant} has no ledger")
        sequence, prev = int(head[0]), bytes(head[1])
        totals = {
            row[0]: [int(row[1]), int(row[2]), int(row[3])]
            for row in conn.execute(
                "SELECT account_id, debits_posted, credits_posted, posting_sequence FROM balances"
                " WHERE tenant_id = %s AND account_id = ANY(%s) FOR UPDATE",
                (tenant, accounts),
            )
        }
        posted_at = datetime.now(UTC)
        entries, lines = [], []
        for offset in range(count):
            entry_id, amount = uuid.uuid4(), offset % 997 + 1
            debit, credit = pairs[offset % len(pairs)]
            postings = [
                (debit, Side.DEBIT, amount, CURRENCY),
                (credit, Side.CREDIT, amount, CURRENCY),
            ]
            body = entry_body(
                ledger_id=tenant, sequence=sequence, entry_uuid=entry_id, posted_at=posted_at,
                effective_date=EFFECTIVE, entry_type="JOURNAL", memo=None, source=None,
                source_id=None, reversal_of=None, postings=postings, metadata={},
            )  # fmt: skip
            digest = chain_hash(prev, body)
            entries.append(
                (tenant, entry_id, sequence, digest, prev, posted_at, EFFECTIVE, "JOURNAL")
            )
            for number, (account, side, _, _) in enumerate(postings):
                running = totals[account]
                running[0 if side is Side.DEBIT else 1] += amount
                running[2] += 1
                lines.append(
                    (tenant, entry_id, number, account, side.value, amount, CURRENCY, sequence,
                     EFFECTIVE, running[2], running[0], running[1])
                )  # fmt: skip
            sequence, prev = sequence + 1, digest
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO journal_entries (tenant_id, id, sequence, hash, prev_hash, posted_at,"
                " effective_date, type, line_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 2)",
                entries,
            )
            cur.executemany(
                "INSERT INTO journal_lines (tenant_id, entry_id, line_number, account_id, side,"
                " amount_minor, currency, entry_sequence, effective_date,"
                " account_posting_sequence, debits_after, credits_after)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                lines,
            )
            cur.executemany(
                "UPDATE balances SET debits_posted = %s, credits_posted = %s,"
                " posting_sequence = %s WHERE tenant_id = %s AND account_id = %s",
                [(*running, tenant, account) for account, running in totals.items()],
            )
        conn.execute(
            "UPDATE ledger_heads SET next_sequence = %s, head_hash = %s, head_posted_at = %s"
            " WHERE tenant_id = %s",
            (sequence, prev, posted_at, tenant),
        )
