"""The ledger port on PostgreSQL: one object per transaction, scoped to one tenant.

SQL lives here and nowhere else. Database refusals that are expected rejections (a duplicate
account code, a second reversal lost in a race) become `LedgerRejection`s; a refusal by one of
the invariant triggers means the domain let something through that it must not have, and is
raised as `InvariantViolation` so it is logged loudly and the transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from finance.adapters.postgres.db import Database, translate_invariants
from finance.adapters.postgres.invoice_store import PostgresInvoiceRepository
from finance.domain.accounts import Account, AccountType, Balance, Side
from finance.domain.entries import AccountState, PostedEntry, PostedLine
from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.services.ports import (
    AccountLine,
    AccountTotals,
    ChainHead,
    CurrencyTotals,
    EntryFilter,
    LedgerTransaction,
    Stored,
    StoredEntry,
    StoredResponse,
)

T = TypeVar("T")
Row = dict[str, Any]

_ACCOUNT_COLUMNS = """
    a.tenant_id, a.id, a.code, a.name, a.type, a.currency, a.debits_must_not_exceed_credits,
    a.credits_must_not_exceed_debits, a.metadata, a.created_at, a.closed_at
"""
_ENTRY_COLUMNS = """
    e.tenant_id, e.id, e.sequence, e.hash, e.prev_hash, e.posted_at, e.effective_date, e.type,
    e.memo, e.source, e.source_id, e.metadata, e.reversal_of
"""


class PostgresLedgerStore:
    """Builds per-transaction store objects on a `Database` (the `TransactionRunner` port)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def __call__(self, tenant_id: str, work: Callable[[LedgerTransaction], T]) -> T:
        return self.database.run(tenant_id, lambda conn: work(PostgresLedgerTx(conn, tenant_id)))


class PostgresLedgerTx:
    def __init__(self, conn: psycopg.Connection[Any], tenant_id: str) -> None:
        self.conn = conn
        self.tenant_id = tenant_id

    @property
    def invoices(self) -> PostgresInvoiceRepository:
        return PostgresInvoiceRepository(self.conn, self.tenant_id)

    def _one(self, query: str, params: Sequence[object] | dict[str, object]) -> Row | None:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query.encode(), params)
            return cur.fetchone()

    def _all(self, query: str, params: Sequence[object] | dict[str, object]) -> list[Row]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query.encode(), params)
            return cur.fetchall()

    # Tenants and the chain -------------------------------------------------------------

    def tenant_exists(self) -> bool:
        return self._one("SELECT 1 FROM tenants WHERE id = %s", (self.tenant_id,)) is not None

    def insert_tenant(self, name: str, created_at: datetime, genesis_hash: bytes) -> None:
        try:
            self.conn.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (%s, %s, %s)",
                (self.tenant_id, name, created_at),
            )
        except errors.UniqueViolation as exc:
            raise LedgerRejection(
                RejectCode.TENANT_EXISTS, f"tenant {self.tenant_id} already exists"
            ) from exc
        self.conn.execute(
            "INSERT INTO ledger_heads (tenant_id, created_at, genesis_hash, head_hash)"
            " VALUES (%s, %s, %s, %s)",
            (self.tenant_id, created_at, genesis_hash, genesis_hash),
        )

    def lock_chain_head(self) -> ChainHead:
        row = self._one("SELECT * FROM finance_lock_chain_head()", ())
        if row is None or row["next_sequence"] is None:
            raise LedgerRejection(RejectCode.TENANT_NOT_FOUND, f"no ledger for {self.tenant_id}")
        return ChainHead(int(row["next_sequence"]), bytes(row["head_hash"]), row["head_posted_at"])

    # Idempotency -------------------------------------------------------------------------

    def claim_idempotency_key(
        self, key: str, request_hash: bytes, *, entry_id: UUID | None = None
    ) -> Stored | None:
        # A concurrent holder of the same key makes this INSERT wait until it commits (then we
        # read what it stored) or rolls back (then the key is ours).
        try:
            claimed = self._one(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, entry_id)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1 AS claimed",
                (self.tenant_id, key, request_hash, entry_id),
            )
        except errors.ForeignKeyViolation as exc:
            raise _tenant_not_found(self.tenant_id) from exc
        if claimed:
            return None
        row = self._one(
            f"SELECT {_STORED_COLUMNS} FROM idempotency_keys WHERE tenant_id = %s AND key = %s",
            (self.tenant_id, key),
        )
        if row is None:
            raise InvariantViolation(f"idempotency key {key!r} conflicted but is not there")
        return _stored(key, row)

    def complete_idempotency_key(self, key: str, status_code: int, body: bytes) -> None:
        self.conn.execute(
            "UPDATE idempotency_keys SET status_code = %s, response_body = %s,"
            " completed_at = now() WHERE tenant_id = %s AND key = %s",
            (status_code, body, self.tenant_id, key),
        )

    def claim_idempotency_keys(
        self, claims: Sequence[tuple[str, bytes, UUID]]
    ) -> dict[str, Stored]:
        # In key order, so that two batches sharing keys wait for each other in the same order
        # and cannot deadlock on them.
        try:
            claimed = self._all(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, entry_id)"
                " SELECT %s, c.key, c.request_hash, c.entry_id"
                "   FROM unnest(%s::text[], %s::bytea[], %s::uuid[])"
                "        AS c(key, request_hash, entry_id) ORDER BY c.key"
                " ON CONFLICT DO NOTHING RETURNING key",
                (
                    self.tenant_id,
                    [key for key, _, _ in claims],
                    [hash_ for _, hash_, _ in claims],
                    [entry_id for _, _, entry_id in claims],
                ),
            )
        except errors.ForeignKeyViolation as exc:
            raise _tenant_not_found(self.tenant_id) from exc
        taken = {key for key, _, _ in claims} - {row["key"] for row in claimed}
        if not taken:
            return {}
        # A statement of its own: its snapshot sees what a holder we waited for committed.
        rows = self._all(
            f"SELECT key, {_STORED_COLUMNS} FROM idempotency_keys"
            " WHERE tenant_id = %s AND key = ANY(%s)",
            (self.tenant_id, sorted(taken)),
        )
        stored = {row["key"]: _stored(row["key"], row) for row in rows}
        if stored.keys() != taken:
            raise InvariantViolation("idempotency keys conflicted but are not there")
        return stored

    def release_idempotency_keys(self, keys: Sequence[str]) -> None:
        row = self._one("SELECT finance_release_idempotency_keys(%s) AS released", (list(keys),))
        if row is None or row["released"] != len(set(keys)):
            raise InvariantViolation(
                "released idempotency keys that this transaction had not claimed"
            )

    # Accounts ------------------------------------------------------------------------------

    def insert_account(self, account: Account) -> None:
        try:
            self.conn.execute(
                "INSERT INTO accounts (tenant_id, id, code, name, type, currency,"
                " debits_must_not_exceed_credits, credits_must_not_exceed_debits, metadata,"
                " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    account.tenant_id,
                    account.id,
                    account.code,
                    account.name,
                    account.type.value,
                    account.currency,
                    account.debits_must_not_exceed_credits,
                    account.credits_must_not_exceed_debits,
                    Jsonb(account.metadata),
                    account.created_at,
                ),
            )
        except errors.UniqueViolation as exc:
            raise LedgerRejection(
                RejectCode.ACCOUNT_CODE_EXISTS,
                f"an account with code {account.code} already exists",
                context={"account_code": account.code},
            ) from exc

    def get_account(self, account_id: UUID, *, for_update: bool = False) -> Account | None:
        lock = " FOR NO KEY UPDATE" if for_update else ""
        row = self._one(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.tenant_id = %s AND a.id = %s{lock}",
            (self.tenant_id, account_id),
        )
        return None if row is None else _account(row)

    def get_account_by_code(self, code: str) -> Account | None:
        row = self._one(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.tenant_id = %s AND a.code = %s",
            (self.tenant_id, code),
        )
        return None if row is None else _account(row)

    def close_account(self, account_id: UUID, closed_at: datetime) -> None:
        self.conn.execute(
            "UPDATE accounts SET closed_at = %s WHERE tenant_id = %s AND id = %s",
            (closed_at, self.tenant_id, account_id),
        )

    def list_accounts(self, after_code: str | None, limit: int) -> list[Account]:
        rows = self._all(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.tenant_id = %s"
            " AND (%s::text IS NULL OR a.code > %s) ORDER BY a.code LIMIT %s",
            (self.tenant_id, after_code, after_code, limit),
        )
        return [_account(row) for row in rows]

    def lock_accounts(self, account_ids: Sequence[UUID]) -> dict[UUID, AccountState]:
        rows = self._all("SELECT * FROM finance_lock_accounts(%s)", (sorted(set(account_ids)),))
        return {row["id"]: AccountState(_account(row), _balance(row)) for row in rows}

    def get_balance(self, account_id: UUID) -> Balance | None:
        row = self._one(
            "SELECT debits_posted, credits_posted, posting_sequence FROM balances"
            " WHERE tenant_id = %s AND account_id = %s",
            (self.tenant_id, account_id),
        )
        return None if row is None else _balance(row)

    def get_account_with_balance(self, account_id: UUID) -> tuple[Account, Balance | None] | None:
        # One statement for the current balance's read: round trips are most of its latency.
        row = self._one(
            f"SELECT {_ACCOUNT_COLUMNS}, b.debits_posted, b.credits_posted, b.posting_sequence"
            " FROM accounts a LEFT JOIN balances b"
            " ON b.tenant_id = a.tenant_id AND b.account_id = a.id"
            " WHERE a.tenant_id = %s AND a.id = %s",
            (self.tenant_id, account_id),
        )
        if row is None:
            return None
        return _account(row), None if row["posting_sequence"] is None else _balance(row)

    def balance_as_of_sequence(self, account_id: UUID, sequence: int) -> Balance:
        row = self._one(
            "SELECT debits_after AS debits_posted, credits_after AS credits_posted,"
            " account_posting_sequence AS posting_sequence FROM journal_lines"
            " WHERE tenant_id = %s AND account_id = %s AND entry_sequence <= %s"
            # An account's postings are numbered in chain order, so the newest one at or
            # before the entry is the last in posting order.
            " ORDER BY account_posting_sequence DESC LIMIT 1",
            (self.tenant_id, account_id, sequence),
        )
        return Balance(0, 0, 0) if row is None else _balance(row)

    def balance_as_of_date(self, account_id: UUID, as_of: date) -> Balance:
        row = self._one(
            "SELECT coalesce(sum(amount_minor) FILTER (WHERE side = 'debit'), 0) AS debits_posted,"
            " coalesce(sum(amount_minor) FILTER (WHERE side = 'credit'), 0) AS credits_posted,"
            " count(*) AS posting_sequence"
            " FROM journal_lines WHERE tenant_id = %s AND account_id = %s"
            " AND effective_date <= %s",
            (self.tenant_id, account_id, as_of),
        )
        assert row is not None
        return _balance(row)

    # Entries -------------------------------------------------------------------------------

    def insert_entries(self, entries: Sequence[PostedEntry]) -> None:
        """Entries and their lines (whose statement trigger moves the balances) in one
        statement: one round trip however many entries."""
        lines = [
            (entry, number, line) for entry in entries for number, line in enumerate(entry.lines)
        ]
        params: dict[str, object] = {
            "tenant": self.tenant_id,
            "ids": [e.id for e in entries], "sequences": [e.sequence for e in entries],
            "hashes": [e.hash for e in entries], "prev_hashes": [e.prev_hash for e in entries],
            "posted_at": [e.posted_at for e in entries],
            "effective_dates": [e.effective_date for e in entries],
            "types": [e.type for e in entries], "memos": [e.memo for e in entries],
            "sources": [e.source for e in entries], "source_ids": [e.source_id for e in entries],
            "metadata": [Jsonb(e.metadata) for e in entries],
            "reversal_of": [e.reversal_of for e in entries],
            "line_counts": [len(e.lines) for e in entries],
            "line_entries": [e.id for e, _, _ in lines],
            "line_numbers": [number for _, number, _ in lines],
            "line_accounts": [ln.account_id for _, _, ln in lines],
            "line_sides": [ln.side.value for _, _, ln in lines],
            "line_amounts": [ln.amount_minor for _, _, ln in lines],
            "line_currencies": [ln.currency for _, _, ln in lines],
            "line_sequences": [e.sequence for e, _, _ in lines],
            "line_dates": [e.effective_date for e, _, _ in lines],
            "line_postings": [ln.account_posting_sequence for _, _, ln in lines],
            "line_debits_after": [ln.debits_after for _, _, ln in lines],
            "line_credits_after": [ln.credits_after for _, _, ln in lines],
        }  # fmt: skip
        try:
            with translate_invariants():
                row = self._one(_INSERT_ENTRIES, params)
        except errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "journal_entries_reversed_once":
                reversed_ = next((e.reversal_of for e in entries if e.reversal_of), None)
                raise LedgerRejection(
                    RejectCode.ALREADY_REVERSED, f"entry {reversed_} is already reversed"
                ) from exc
            raise
        written = (len(entries), len(lines))
        if row is None or (row["entries"], row["lines"]) != written:
            raise InvariantViolation(f"an insert of {written} entries and lines wrote {row}")

    def get_entry(self, entry_id: UUID) -> PostedEntry | None:
        rows = self._all(
            f"SELECT {_ENTRY_COLUMNS} FROM journal_entries e WHERE e.tenant_id = %s AND e.id = %s",
            (self.tenant_id, entry_id),
        )
        entries = self._with_lines(rows)
        return entries[0] if entries else None

    def get_entries(self, entry_ids: Collection[UUID]) -> dict[UUID, PostedEntry]:
        rows = self._all(
            f"SELECT {_ENTRY_COLUMNS} FROM journal_entries e"
            " WHERE e.tenant_id = %s AND e.id = ANY(%s)",
            (self.tenant_id, list(entry_ids)),
        )
        return {entry.id: entry for entry in self._with_lines(rows)}

    def find_reversal(self, entry_id: UUID) -> UUID | None:
        row = self._one(
            "SELECT id FROM journal_entries WHERE tenant_id = %s AND reversal_of = %s",
            (self.tenant_id, entry_id),
        )
        return None if row is None else UUID(str(row["id"]))

    def list_entries(
        self, flt: EntryFilter, after_sequence: int | None, limit: int
    ) -> list[PostedEntry]:
        clauses = ["e.tenant_id = %(tenant)s"]
        params: dict[str, object] = {"tenant": self.tenant_id, "limit": limit}
        for column, value, op in (
            ("sequence", after_sequence, ">"),
            ("effective_date", flt.effective_from, ">="),
            ("effective_date", flt.effective_to, "<="),
            ("type", flt.type, "="),
            ("source", flt.source, "="),
            ("source_id", flt.source_id, "="),
            ("reversal_of", flt.reversal_of, "="),
        ):
            if value is not None:
                name = f"p{len(params)}"
                clauses.append(f"e.{column} {op} %({name})s")
                params[name] = value
        if flt.account_id is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM journal_lines l WHERE l.tenant_id = e.tenant_id"
                " AND l.entry_id = e.id AND l.account_id = %(account)s)"
            )
            params["account"] = flt.account_id
        rows = self._all(
            f"SELECT {_ENTRY_COLUMNS} FROM journal_entries e WHERE {' AND '.join(clauses)}"
            " ORDER BY e.sequence LIMIT %(limit)s",
            params,
        )
        return self._with_lines(rows)

    def account_lines(
        self, account_id: UUID, after_posting: int | None, limit: int
    ) -> list[AccountLine]:
        """The account's lines after its posting number `after_posting`, in posting order."""
        rows = self._all(
            "SELECT l.entry_id, l.entry_sequence, l.line_number, e.posted_at, l.effective_date,"
            " e.type, e.memo, l.side, l.amount_minor, l.currency, l.account_posting_sequence,"
            " l.debits_after, l.credits_after"
            " FROM journal_lines l JOIN journal_entries e"
            "   ON e.tenant_id = l.tenant_id AND e.id = l.entry_id"
            " WHERE l.tenant_id = %s AND l.account_id = %s AND l.account_posting_sequence > %s"
            " ORDER BY l.account_posting_sequence LIMIT %s",
            (self.tenant_id, account_id, after_posting or 0, limit),
        )
        return [
            AccountLine(
                entry_id=row["entry_id"],
                sequence=int(row["entry_sequence"]),
                line_number=int(row["line_number"]),
                posted_at=row["posted_at"],
                effective_date=row["effective_date"],
                type=row["type"],
                memo=row["memo"],
                side=row["side"],
                amount_minor=int(row["amount_minor"]),
                currency=row["currency"],
                account_posting_sequence=int(row["account_posting_sequence"]),
                debits_after=int(row["debits_after"]),
                credits_after=int(row["credits_after"]),
            )
            for row in rows
        ]

    def trial_balance(self) -> tuple[list[CurrencyTotals], list[AccountTotals]]:
        rows = self._all(
            f"SELECT {_ACCOUNT_COLUMNS}, b.debits_posted, b.credits_posted, b.posting_sequence"
            " FROM accounts a JOIN balances b"
            "   ON b.tenant_id = a.tenant_id AND b.account_id = a.id"
            " WHERE a.tenant_id = %s ORDER BY a.code",
            (self.tenant_id,),
        )
        accounts = [AccountTotals(_account(row), _balance(row)) for row in rows]
        totals: dict[str, list[int]] = {}
        for item in accounts:
            pair = totals.setdefault(item.account.currency, [0, 0])
            pair[0] += item.balance.debits_posted
            pair[1] += item.balance.credits_posted
        currencies = [CurrencyTotals(c, d, cr) for c, (d, cr) in sorted(totals.items())]
        return currencies, accounts

    def _with_lines(self, entry_rows: list[Row]) -> list[PostedEntry]:
        if not entry_rows:
            return []
        ids = [row["id"] for row in entry_rows]
        lines: dict[UUID, list[PostedLine]] = {entry_id: [] for entry_id in ids}
        for row in self._all(
            "SELECT entry_id, account_id, side, amount_minor, currency, account_posting_sequence,"
            " debits_after, credits_after"
            " FROM journal_lines WHERE tenant_id = %s AND entry_id = ANY(%s)"
            " ORDER BY entry_id, line_number",
            (self.tenant_id, ids),
        ):
            lines[row["entry_id"]].append(
                PostedLine(
                    row["account_id"],
                    Side(row["side"]),
                    int(row["amount_minor"]),
                    row["currency"],
                    int(row["account_posting_sequence"]),
                    int(row["debits_after"]),
                    int(row["credits_after"]),
                )
            )
        return [_entry(row, tuple(lines[row["id"]])) for row in entry_rows]


# The entries go in in chain order (each entry's trigger checks its link to the one before) and
# the lines in (entry, line) order (each line's trigger checks it continues its account's
# previous line); statement triggers then move the chain head and each balance once (migration
# 0007). Foreign keys are checked at the end of the statement.
_INSERT_ENTRIES = """
WITH entries AS (
    INSERT INTO journal_entries (tenant_id, id, sequence, hash, prev_hash, posted_at,
        effective_date, type, memo, source, source_id, metadata, reversal_of, line_count)
    SELECT %(tenant)s, e.id, e.sequence, e.hash, e.prev_hash, e.posted_at, e.effective_date,
           e.type, e.memo, e.source, e.source_id, e.metadata, e.reversal_of, e.line_count
      FROM unnest(%(ids)s::uuid[], %(sequences)s::bigint[], %(hashes)s::bytea[],
                  %(prev_hashes)s::bytea[], %(posted_at)s::timestamptz[],
                  %(effective_dates)s::date[], %(types)s::text[], %(memos)s::text[],
                  %(sources)s::text[], %(source_ids)s::text[], %(metadata)s::jsonb[],
                  %(reversal_of)s::uuid[], %(line_counts)s::smallint[])
           AS e(id, sequence, hash, prev_hash, posted_at, effective_date, type, memo, source,
                source_id, metadata, reversal_of, line_count)
     ORDER BY e.sequence
    RETURNING 1
), written AS (
    -- Every entry is in before the first line is made: a line's trigger checks its entry.
    SELECT count(*) AS entries FROM entries
), lines AS (
    INSERT INTO journal_lines (tenant_id, entry_id, line_number, account_id, side,
        amount_minor, currency, entry_sequence, effective_date, account_posting_sequence,
        debits_after, credits_after)
    SELECT %(tenant)s, l.entry_id, l.line_number, l.account_id, l.side, l.amount_minor,
           l.currency, l.entry_sequence, l.effective_date, l.posting, l.debits_after,
           l.credits_after
      FROM written,
           unnest(%(line_entries)s::uuid[], %(line_numbers)s::smallint[],
                  %(line_accounts)s::uuid[], %(line_sides)s::text[], %(line_amounts)s::bigint[],
                  %(line_currencies)s::text[], %(line_sequences)s::bigint[],
                  %(line_dates)s::date[], %(line_postings)s::bigint[],
                  %(line_debits_after)s::bigint[], %(line_credits_after)s::bigint[])
           AS l(entry_id, line_number, account_id, side, amount_minor, currency,
                entry_sequence, effective_date, posting, debits_after, credits_after)
     ORDER BY l.entry_sequence, l.line_number
    RETURNING 1
)
SELECT (SELECT entries FROM written) AS entries,
       (SELECT count(*) FROM lines) AS lines
"""


# What a key used before holds: the first response as sent, or the entry it posted.
_STORED_COLUMNS = "request_hash, status_code, response_body, entry_id"


def _stored(key: str, row: Row) -> Stored:
    if row["entry_id"] is not None:
        return StoredEntry(bytes(row["request_hash"]), row["entry_id"])
    if row["status_code"] is None or row["response_body"] is None:
        # A claim is completed before its transaction commits, and only then can another
        # transaction see it.
        raise InvariantViolation(f"idempotency key {key!r} has no response")
    return StoredResponse(
        bytes(row["request_hash"]), int(row["status_code"]), bytes(row["response_body"])
    )


def _tenant_not_found(tenant_id: str) -> LedgerRejection:
    return LedgerRejection(
        RejectCode.TENANT_NOT_FOUND,
        f"tenant {tenant_id} does not exist; create it with `finance tenants create`",
    )


def _account(row: Row) -> Account:
    return Account(
        id=row["id"],
        tenant_id=row["tenant_id"],
        code=row["code"],
        name=row["name"],
        type=AccountType(row["type"]),
        currency=row["currency"],
        debits_must_not_exceed_credits=row["debits_must_not_exceed_credits"],
        credits_must_not_exceed_debits=row["credits_must_not_exceed_debits"],
        closed=row["closed_at"] is not None,
        metadata=dict(row["metadata"]),
        created_at=row["created_at"],
    )


def _balance(row: Row) -> Balance:
    return Balance(
        int(row["debits_posted"]), int(row["credits_posted"]), int(row["posting_sequence"])
    )


def _entry(row: Row, lines: tuple[PostedLine, ...]) -> PostedEntry:
    return PostedEntry(
        id=row["id"],
        tenant_id=row["tenant_id"],
        sequence=int(row["sequence"]),
        hash=bytes(row["hash"]),
        prev_hash=bytes(row["prev_hash"]),
        posted_at=row["posted_at"],
        effective_date=row["effective_date"],
        type=row["type"],
        memo=row["memo"],
        source=row["source"],
        source_id=row["source_id"],
        metadata=dict(row["metadata"]),
        reversal_of=row["reversal_of"],
        lines=lines,
    )
