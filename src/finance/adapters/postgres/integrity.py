"""`finance check`: the integrity checks an operator runs (seed runbooks 1 and 4).

Read-only queries on an owner connection.

Each check returns the first problem it finds, or None. They read the journal itself, not the
service's view of it, so they also catch rows written around the service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import IsolationLevel
from psycopg.rows import dict_row

from finance.adapters.postgres.proof_integrity import merkle_problem
from finance.domain.accounts import Side
from finance.proofs.chain import ChainVerifier, entry_body, genesis_hash

_ROWS_PER_FETCH = 2_000
# An entry's lines as `postings`, the input of `entry_body_from_row` (`e` is journal_entries).
ENTRY_POSTINGS = (
    "(SELECT array_agg(ARRAY[l.account_id::text, l.side, l.amount_minor::text, l.currency]"
    "                  ORDER BY l.line_number)"
    "   FROM journal_lines l WHERE l.tenant_id = e.tenant_id AND l.entry_id = e.id) AS postings"
)
# Debits minus credits of the lines `l` in a group, in numeric so no sum can overflow.
_NET = (
    "sum(CASE WHEN l.side = 'debit' THEN l.amount_minor::numeric ELSE -l.amount_minor::numeric END)"
)


def all_tenant_ids(conn: psycopg.Connection[Any]) -> list[str]:
    return [row[0] for row in conn.execute("SELECT id FROM tenants ORDER BY id").fetchall()]


def unbalanced_entry(conn: psycopg.Connection[Any], tenant: str) -> str | None:
    row = conn.execute(
        f"SELECT e.sequence, l.currency, {_NET} AS net"
        " FROM journal_entries e JOIN journal_lines l"
        "   ON l.tenant_id = e.tenant_id AND l.entry_id = e.id"
        f" WHERE e.tenant_id = %s GROUP BY e.sequence, l.currency HAVING {_NET} <> 0"
        " ORDER BY e.sequence LIMIT 1",
        (tenant,),
    ).fetchone()
    if row is None:
        return None
    return f"entry {row[0]} does not balance in {row[1]} (net {row[2]} minor units)"


def trial_balance_problem(conn: psycopg.Connection[Any], tenant: str) -> str | None:
    row = conn.execute(
        f"SELECT l.currency, {_NET} AS net FROM journal_lines l WHERE l.tenant_id = %s"
        f" GROUP BY l.currency HAVING {_NET} <> 0 ORDER BY l.currency LIMIT 1",
        (tenant,),
    ).fetchone()
    if row is None:
        return None
    return f"trial balance in {row[0]} is off by {row[1]} minor units"


def balance_drift(conn: psycopg.Connection[Any], tenant: str) -> str | None:
    row = conn.execute(
        "SELECT a.code, b.debits_posted, b.credits_posted, b.posting_sequence,"
        "       coalesce(r.debits, 0), coalesce(r.credits, 0), coalesce(r.lines, 0)"
        " FROM balances b JOIN accounts a ON a.tenant_id = b.tenant_id AND a.id = b.account_id"
        " LEFT JOIN ("
        "   SELECT account_id,"
        "          sum(amount_minor) FILTER (WHERE side = 'debit') AS debits,"
        "          sum(amount_minor) FILTER (WHERE side = 'credit') AS credits,"
        "          count(*) AS lines"
        "     FROM journal_lines WHERE tenant_id = %s GROUP BY account_id"
        " ) r ON r.account_id = b.account_id"
        " WHERE b.tenant_id = %s AND (b.debits_posted <> coalesce(r.debits, 0)"
        "    OR b.credits_posted <> coalesce(r.credits, 0)"
        "    OR b.posting_sequence <> coalesce(r.lines, 0))"
        " ORDER BY a.code LIMIT 1",
        (tenant, tenant),
    ).fetchone()
    if row is None:
        return None
    return (
        f"balance of account {row[0]} is {row[1]}/{row[2]} (debits/credits, {row[3]} postings)"
        f" but the journal replays to {row[4]}/{row[5]} ({row[6]} postings)"
    )


def line_copies_problem(conn: psycopg.Connection[Any], tenant: str) -> str | None:
    """Lines carry copies of their entry's sequence and date, their account's currency, and
    running totals that point-in-time balances read: each must agree with its source and with
    a replay of the account's lines in posting order (one window pass, linear in the lines)."""
    row = conn.execute(
        "WITH replay AS ("
        "  SELECT l.*, e.sequence AS e_sequence, e.effective_date AS e_date,"
        "         a.code, a.currency AS a_currency,"
        "         sum(CASE WHEN l.side = 'debit' THEN l.amount_minor ELSE 0 END)"
        "           OVER w AS debits,"
        "         sum(CASE WHEN l.side = 'credit' THEN l.amount_minor ELSE 0 END)"
        "           OVER w AS credits,"
        "         row_number() OVER w AS postings"
        "    FROM journal_lines l"
        "    JOIN journal_entries e ON e.tenant_id = l.tenant_id AND e.id = l.entry_id"
        "    JOIN accounts a ON a.tenant_id = l.tenant_id AND a.id = l.account_id"
        "   WHERE l.tenant_id = %s"
        "  WINDOW w AS (PARTITION BY l.account_id ORDER BY l.account_posting_sequence)"
        ")"
        " SELECT e_sequence, line_number, code FROM replay"
        " WHERE entry_sequence <> e_sequence OR effective_date <> e_date"
        "    OR currency <> a_currency OR debits_after <> debits OR credits_after <> credits"
        "    OR account_posting_sequence <> postings"
        " ORDER BY e_sequence, line_number LIMIT 1",
        (tenant,),
    ).fetchone()
    if row is not None:
        return (
            f"line {row[1]} of entry {row[0]} (account {row[2]}) disagrees with its entry,"
            " its account, or the replay of the account's earlier lines"
        )
    row = conn.execute(
        "SELECT e.sequence, e.line_count, count(l.line_number) FROM journal_entries e"
        " LEFT JOIN journal_lines l ON l.tenant_id = e.tenant_id AND l.entry_id = e.id"
        " WHERE e.tenant_id = %s GROUP BY e.sequence, e.line_count"
        " HAVING count(l.line_number) <> e.line_count ORDER BY e.sequence LIMIT 1",
        (tenant,),
    ).fetchone()
    if row is not None:
        return f"entry {row[0]} claims {row[1]} lines but has {row[2]}"
    return None


def chain_problem(conn: psycopg.Connection[Any], tenant: str) -> str | None:
    head = conn.execute(
        "SELECT genesis_hash, next_sequence, head_hash, created_at FROM ledger_heads"
        " WHERE tenant_id = %s",
        (tenant,),
    ).fetchone()
    if head is None:
        return "tenant has no ledger head"
    if bytes(head[0]) != genesis_hash(tenant, head[3]):
        return "genesis hash does not match the ledger id and creation time"
    verifier = ChainVerifier(bytes(head[0]))
    for row in _entries_with_lines(conn, tenant):
        body = entry_body_from_row(tenant, row)
        problem = verifier.feed(
            int(row["sequence"]), bytes(row["prev_hash"]), bytes(row["hash"]), body
        )
        if problem is not None:
            return f"chain breaks at entry {problem.sequence}: {problem.detail}"
    problem = verifier.finish(int(head[1]), bytes(head[2]))
    return None if problem is None else f"chain head: {problem.detail}"


def _entries_with_lines(conn: psycopg.Connection[Any], tenant: str) -> Iterator[dict[str, Any]]:
    """Stream entries in chain order with their lines, through a server-side cursor."""
    with conn.transaction(), conn.cursor(name="chain_check", row_factory=dict_row) as cur:
        cur.itersize = _ROWS_PER_FETCH
        cur.execute(
            f"SELECT e.*, {ENTRY_POSTINGS} FROM journal_entries e WHERE e.tenant_id = %s"
            " ORDER BY e.sequence",
            (tenant,),
        )
        yield from cur


def entry_body_from_row(tenant: str, row: dict[str, Any]) -> dict[str, Any]:
    """The canonical body of a `journal_entries` row with its lines aggregated as `postings`
    (ENTRY_POSTINGS: [account, side, amount, currency] text arrays in line order)."""
    postings = [
        (UUID(account), Side(side), int(amount), currency)
        for account, side, amount, currency in (row["postings"] or [])
    ]
    return entry_body(
        ledger_id=tenant,
        sequence=int(row["sequence"]),
        entry_uuid=row["id"],
        posted_at=row["posted_at"],
        effective_date=row["effective_date"],
        entry_type=row["type"],
        memo=row["memo"],
        source=row["source"],
        source_id=row["source_id"],
        reversal_of=row["reversal_of"],
        postings=postings,
        metadata=dict(row["metadata"]),
    )


CHECKS: tuple[tuple[str, Callable[[psycopg.Connection[Any], str], str | None]], ...] = (
    ("entries_balanced", unbalanced_entry),
    ("trial_balance", trial_balance_problem),
    ("balances_match_journal", balance_drift),
    ("lines_match_entries", line_copies_problem),
    ("hash_chain", chain_problem),
    ("merkle_checkpoints", merkle_problem),
)


@dataclass(frozen=True)
class CheckResult:
    tenant_id: str
    check: str
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def run_checks(conn: psycopg.Connection[Any], tenant_ids: list[str] | None) -> list[CheckResult]:
    """Every check for every tenant named (all tenants when None).

    Each tenant is checked inside one REPEATABLE READ, READ ONLY transaction: every check sees
    the same snapshot, so postings committed meanwhile cannot make the head and the chain (or
    the balances and the journal) disagree and raise a false alarm.
    """
    tenants = tenant_ids if tenant_ids is not None else all_tenant_ids(conn)
    known = set(all_tenant_ids(conn))
    results: list[CheckResult] = []
    for tenant in tenants:
        if tenant not in known:
            results.append(CheckResult(tenant, "tenant_exists", "no such tenant"))
            continue
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        try:
            with conn.transaction():
                results.extend(
                    CheckResult(tenant, name, check(conn, tenant)) for name, check in CHECKS
                )
        finally:
            conn.isolation_level = None
            conn.read_only = None
    return results
