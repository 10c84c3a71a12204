"""The proof port on PostgreSQL: the Merkle log's stored subtrees, checkpoints, consistency
proofs and the entry rows they are computed from (migration 0002).

Every read is bounded and batched: hashes are fetched by the explicit list of subtrees or leaf
indices a proof needs (`finance.proofs.tiles`), entries by sequence range. Nothing here reads
all the leaves of a ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import rfc8785
from psycopg.rows import dict_row

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.integrity import ENTRY_POSTINGS, entry_body_from_row
from finance.domain.errors import InvariantViolation, LedgerRejection, RejectCode
from finance.proofs.checkpoint import CheckpointBody, CheckpointError
from finance.proofs.merkle import HASH_BYTES
from finance.proofs.signatures import Signature
from finance.proofs.strict_json import StrictJsonError, loads_strict
from finance.proofs.tiles import Subtree
from finance.services.ports import (
    EntryRecord,
    LeafSource,
    ProofBacklog,
    ProofHead,
    ProofTransaction,
    StoredCheckpoint,
    UnsignedSummary,
)

T = TypeVar("T")
Row = dict[str, Any]

# The checkpoint row with the posting time of the newest entry it covers.
_CHECKPOINT = """
SELECT c.body, c.signatures, c.signed_at, e.posted_at AS covers_posted_at
  FROM checkpoints c
  JOIN journal_entries e ON e.tenant_id = c.tenant_id AND e.sequence = c.tree_size - 1
 WHERE c.tenant_id = %(tenant)s
"""


class PostgresProofStore:
    """Runs proof work in tenant transactions on a `Database` (the `ProofStore` port)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def __call__(self, tenant_id: str, work: Callable[[ProofTransaction], T]) -> T:
        return self.database.run(tenant_id, lambda conn: work(PostgresProofTx(conn, tenant_id)))

    def backlog(self, tenants_max: int) -> list[ProofBacklog]:
        def read(conn: psycopg.Connection[Any]) -> list[ProofBacklog]:
            rows = conn.execute(
                "SELECT tenant_id, unsealed_entries, unsigned_checkpoints"
                " FROM finance_proof_backlog(%s)",
                (tenants_max,),
            ).fetchall()
            return [ProofBacklog(str(t), int(u), int(s)) for t, u, s in rows]

        return self.database.run(None, read)

    def unsigned_summary(self) -> UnsignedSummary:
        def read(conn: psycopg.Connection[Any]) -> UnsignedSummary:
            row = conn.execute("SELECT * FROM finance_unsigned_checkpoints()").fetchone()
            assert row is not None
            return UnsignedSummary(int(row[0]), row[1])

        return self.database.run(None, read)


class PostgresProofTx:
    def __init__(self, conn: psycopg.Connection[Any], tenant_id: str) -> None:
        self.conn = conn
        self.tenant_id = tenant_id

    def _all(self, query: str, params: dict[str, object]) -> list[Row]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query.encode(), {"tenant": self.tenant_id, **params})
            return cur.fetchall()

    def _one(self, query: str, params: dict[str, object]) -> Row | None:
        rows = self._all(query, params)
        return rows[0] if rows else None

    # The log and its head -------------------------------------------------------------------

    def lock_proof_head(self, *, wait: bool) -> ProofHead | None:
        skip = "" if wait else " SKIP LOCKED"
        row = self._one(
            "SELECT tree_size, next_seq, root_hash, last_body_hash, last_issued_at, frontier"
            f" FROM proof_heads WHERE tenant_id = %(tenant)s FOR UPDATE{skip}",
            {},
        )
        if row is None:
            if self._one("SELECT 1 FROM proof_heads WHERE tenant_id = %(tenant)s", {}):
                return None  # another sealer holds it
            raise LedgerRejection(RejectCode.TENANT_NOT_FOUND, f"no ledger for {self.tenant_id}")
        return ProofHead(
            tree_size=int(row["tree_size"]),
            next_seq=int(row["next_seq"]),
            root_hash=_optional_bytes(row["root_hash"]),
            last_body_hash=_optional_bytes(row["last_body_hash"]),
            last_issued_at=row["last_issued_at"],
            frontier=_split_hashes(bytes(row["frontier"])),
        )

    def ledger_size(self) -> int:
        row = self._one("SELECT next_sequence FROM ledger_heads WHERE tenant_id = %(tenant)s", {})
        return 0 if row is None else int(row["next_sequence"])

    def leaf_sources(self, start: int, stop: int) -> list[LeafSource]:
        rows = self._all(
            "SELECT sequence, hash, posted_at FROM journal_entries"
            " WHERE tenant_id = %(tenant)s AND sequence >= %(start)s AND sequence < %(stop)s"
            " ORDER BY sequence",
            {"start": start, "stop": stop},
        )
        return [LeafSource(int(r["sequence"]), bytes(r["hash"]), r["posted_at"]) for r in rows]

    def entry_hashes(self, sequences: Collection[int]) -> dict[int, bytes]:
        if not sequences:
            return {}
        rows = self._all(
            "SELECT sequence, hash FROM journal_entries"
            " WHERE tenant_id = %(tenant)s AND sequence = ANY(%(sequences)s)",
            {"sequences": sorted(sequences)},
        )
        return {int(r["sequence"]): bytes(r["hash"]) for r in rows}

    def merkle_nodes(self, subtrees: Collection[Subtree]) -> dict[Subtree, bytes]:
        if not subtrees:
            return {}
        ordered = sorted(subtrees)
        rows = self._all(
            "SELECT height, node_index, hash FROM merkle_nodes"
            " WHERE tenant_id = %(tenant)s AND (height, node_index) IN"
            "   (SELECT * FROM unnest(%(heights)s::smallint[], %(indices)s::bigint[]))",
            {"heights": [s.height for s in ordered], "indices": [s.index for s in ordered]},
        )
        return {Subtree(int(r["height"]), int(r["node_index"])): bytes(r["hash"]) for r in rows}

    def insert_merkle_nodes(self, nodes: Sequence[tuple[Subtree, bytes]]) -> None:
        if not nodes:
            return
        self.conn.execute(
            "INSERT INTO merkle_nodes (tenant_id, height, node_index, hash)"
            " SELECT %s, h, i, x FROM unnest(%s::smallint[], %s::bigint[], %s::bytea[])"
            "   AS t(h, i, x)",
            (
                self.tenant_id,
                [s.height for s, _ in nodes],
                [s.index for s, _ in nodes],
                [value for _, value in nodes],
            ),
        )

    def set_frontier(self, frontier: Sequence[bytes]) -> None:
        self.conn.execute(
            "UPDATE proof_heads SET frontier = %s WHERE tenant_id = %s",
            (b"".join(frontier), self.tenant_id),
        )

    # Checkpoints ---------------------------------------------------------------------------

    def insert_checkpoint(self, body: CheckpointBody, body_bytes: bytes, body_hash: bytes) -> None:
        self.conn.execute(
            "INSERT INTO checkpoints (tenant_id, seq, tree_size, root_hash, chain_head,"
            " prev_checkpoint, issued_at, body, body_hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                self.tenant_id,
                body.seq,
                body.tree_size,
                body.root_hash,
                body.chain_head,
                body.prev_checkpoint,
                body.issued_at,
                body_bytes,
                body_hash,
            ),
        )

    def insert_consistency(self, from_seq: int, proof: Sequence[bytes]) -> None:
        self.conn.execute(
            "INSERT INTO checkpoint_consistency (tenant_id, from_seq, to_seq, proof)"
            " VALUES (%s, %s, %s, %s)",
            (self.tenant_id, from_seq, from_seq + 1, b"".join(proof)),
        )

    def stored_consistency(self, to_seq: int) -> list[bytes] | None:
        row = self._one(
            "SELECT proof FROM checkpoint_consistency"
            " WHERE tenant_id = %(tenant)s AND to_seq = %(seq)s",
            {"seq": to_seq},
        )
        return None if row is None else list(_split_hashes(bytes(row["proof"])))

    def get_checkpoint(self, seq: int) -> StoredCheckpoint | None:
        return self._checkpoint(" AND c.seq = %(seq)s", {"seq": seq})

    def latest_checkpoint(self, *, signed_only: bool) -> StoredCheckpoint | None:
        signed = " AND c.signatures IS NOT NULL" if signed_only else ""
        return self._checkpoint(f"{signed} ORDER BY c.seq DESC LIMIT 1", {})

    def first_signed_checkpoint(self, min_tree_size: int) -> StoredCheckpoint | None:
        return self._checkpoint(
            " AND c.tree_size >= %(size)s AND c.signatures IS NOT NULL"
            " ORDER BY c.tree_size LIMIT 1",
            {"size": min_tree_size},
        )

    def list_checkpoints(self, before_seq: int | None, limit: int) -> list[StoredCheckpoint]:
        rows = self._all(
            _CHECKPOINT + " AND (%(before)s::bigint IS NULL OR c.seq < %(before)s)"
            " ORDER BY c.seq DESC LIMIT %(limit)s",
            {"before": before_seq, "limit": limit},
        )
        return [_stored_checkpoint(row) for row in rows]

    def unsigned_checkpoints(self, limit: int) -> list[StoredCheckpoint]:
        rows = self._all(
            _CHECKPOINT + " AND c.signatures IS NULL ORDER BY c.seq LIMIT %(limit)s",
            {"limit": limit},
        )
        return [_stored_checkpoint(row) for row in rows]

    def store_signatures(
        self, seq: int, signatures: Sequence[Signature], signed_at: datetime
    ) -> bool:
        encoded = rfc8785.dumps([signature.to_json() for signature in signatures])
        updated = self.conn.execute(
            "UPDATE checkpoints c SET signatures = %s, signed_at = %s"
            " WHERE c.tenant_id = %s AND c.seq = %s AND c.signatures IS NULL"
            "   AND (c.seq = 0 OR EXISTS (SELECT 1 FROM checkpoints p"
            "         WHERE p.tenant_id = c.tenant_id AND p.seq = c.seq - 1"
            "           AND p.signatures IS NOT NULL))",
            (encoded, signed_at, self.tenant_id, seq),
        ).rowcount
        return updated == 1

    def _checkpoint(self, clause: str, params: dict[str, object]) -> StoredCheckpoint | None:
        row = self._one(_CHECKPOINT + clause, params)
        return None if row is None else _stored_checkpoint(row)

    # Entries ----------------------------------------------------------------------------

    def entry_sequence(self, entry_id: UUID) -> int | None:
        row = self._one(
            "SELECT sequence FROM journal_entries WHERE tenant_id = %(tenant)s AND id = %(id)s",
            {"id": entry_id},
        )
        return None if row is None else int(row["sequence"])

    def entry_records(self, start: int, stop: int) -> list[EntryRecord]:
        rows = self._all(
            f"SELECT e.*, {ENTRY_POSTINGS} FROM journal_entries e"
            " WHERE e.tenant_id = %(tenant)s AND e.sequence >= %(start)s"
            "   AND e.sequence < %(stop)s ORDER BY e.sequence",
            {"start": start, "stop": stop},
        )
        return [
            EntryRecord(
                sequence=int(row["sequence"]),
                entry_id=row["id"],
                body=entry_body_from_row(self.tenant_id, row),
                hash=bytes(row["hash"]),
                prev_hash=bytes(row["prev_hash"]),
                posted_at=row["posted_at"],
            )
            for row in rows
        ]

    def ledger_created_at(self) -> datetime:
        row = self._one("SELECT created_at FROM ledger_heads WHERE tenant_id = %(tenant)s", {})
        if row is None:
            raise LedgerRejection(RejectCode.TENANT_NOT_FOUND, f"no ledger for {self.tenant_id}")
        created_at: datetime = row["created_at"]
        return created_at

    def first_sequence_posted_at_or_after(self, moment: datetime) -> int:
        # Posting times never go backwards along the chain (0001 enforces it), so a binary
        # search over sequence numbers finds the boundary in about log2(size) primary-key
        # lookups, without an index on posted_at that every posting would have to maintain.
        low, high = 0, self.ledger_size()
        while low < high:
            middle = (low + high) // 2
            row = self._one(
                "SELECT posted_at FROM journal_entries"
                " WHERE tenant_id = %(tenant)s AND sequence = %(sequence)s",
                {"sequence": middle},
            )
            if row is None:
                raise InvariantViolation(f"entry {middle} of {self.tenant_id} is missing")
            if row["posted_at"] >= moment:
                high = middle
            else:
                low = middle + 1
        return low


def _optional_bytes(value: object) -> bytes | None:
    return None if value is None else bytes(value)  # type: ignore[call-overload]


def _split_hashes(packed: bytes) -> tuple[bytes, ...]:
    if len(packed) % HASH_BYTES:
        raise InvariantViolation(f"packed hashes of {len(packed)} bytes")
    return tuple(packed[i : i + HASH_BYTES] for i in range(0, len(packed), HASH_BYTES))


def _stored_checkpoint(row: Row) -> StoredCheckpoint:
    """Parse what the database holds with the verifier's own strict parsers: a stored body that
    is not canonical or not a valid checkpoint is a broken invariant, never served."""
    try:
        body = CheckpointBody.from_json(loads_strict(bytes(row["body"])))
        signatures = None
        if row["signatures"] is not None:
            listed = loads_strict(bytes(row["signatures"]))
            if not isinstance(listed, list) or not listed:
                raise ValueError("signatures are not a non-empty list")
            signatures = tuple(Signature.from_json(item) for item in listed)
    except (StrictJsonError, CheckpointError, ValueError) as exc:
        raise InvariantViolation(f"a stored checkpoint does not parse: {exc}") from exc
    return StoredCheckpoint(body, signatures, row["signed_at"], row["covers_posted_at"])
