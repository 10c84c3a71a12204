"""`finance check`, Merkle part: the stored log and checkpoints recompute from the entry hashes.

One pass over the sealed entries in sequence order (hashes only), rebuilding the tree with the
sealer's own `TileBuilder`, and three streams read alongside it through server-side cursors: the
stored subtrees in the order the pass completes them, the checkpoints and their consistency
proofs in seq order. Every stored subtree, every checkpoint's root and chain head, the chain of
checkpoint bodies, every stored consistency proof and the proof head's frontier are compared with
what the entries give. Memory stays O(log n) whatever the ledger's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import psycopg

from finance.proofs.checkpoint import (
    CheckpointBody,
    CheckpointError,
    body_hash,
    verify_checkpoint_chain,
)
from finance.proofs.merkle import HASH_BYTES, ProofError, leaf_hash, verify_consistency
from finance.proofs.strict_json import StrictJsonError, loads_strict
from finance.proofs.tiles import Subtree, TileBuilder

_ROWS_PER_FETCH = 2_000


class _Mismatch(Exception):
    """The first disagreement found; its message is the check's problem."""


def merkle_problem(conn: psycopg.Connection[Any], tenant: str) -> str | None:
    head = conn.execute(
        "SELECT tree_size, next_seq, root_hash, frontier FROM proof_heads WHERE tenant_id = %s",
        (tenant,),
    ).fetchone()
    if head is None:
        return "tenant has no proof head"
    tree_size, next_seq = int(head[0]), int(head[1])
    with ExitStack() as stack:
        streams = _Streams(conn, tenant, tree_size, stack)
        try:
            builder = _walk(streams, next_seq)
            _check_end(streams, builder, tree_size, head)
        except _Mismatch as exc:
            return str(exc)
    return None


class _Streams:
    """The four sorted streams the walk merges, each a server-side cursor."""

    def __init__(
        self, conn: psycopg.Connection[Any], tenant: str, tree_size: int, stack: ExitStack
    ) -> None:
        stack.enter_context(conn.transaction())

        def stream(name: str, query: str, params: tuple[object, ...]) -> Iterator[Any]:
            cursor = stack.enter_context(conn.cursor(name=name))
            cursor.itersize = _ROWS_PER_FETCH
            cursor.execute(query.encode(), params)
            return iter(cursor)

        self.leaves = stream(
            "merkle_leaves",
            "SELECT sequence, hash FROM journal_entries"
            " WHERE tenant_id = %s AND sequence < %s ORDER BY sequence",
            (tenant, tree_size),
        )
        self.nodes = stream(
            "merkle_nodes",
            "SELECT height, node_index, hash FROM merkle_nodes WHERE tenant_id = %s"
            # The order in which appending leaves completes them: by end, then height.
            " ORDER BY (node_index + 1) * (1::bigint << height), height",
            (tenant,),
        )
        self.checkpoints = stream(
            "merkle_checkpoints",
            "SELECT seq, tree_size, root_hash, chain_head, body, body_hash FROM checkpoints"
            " WHERE tenant_id = %s ORDER BY seq",
            (tenant,),
        )
        self.proofs = stream(
            "merkle_consistency",
            "SELECT to_seq, proof FROM checkpoint_consistency WHERE tenant_id = %s ORDER BY to_seq",
            (tenant,),
        )


def _walk(streams: _Streams, next_seq: int) -> TileBuilder:
    builder = TileBuilder(0, ())
    previous: CheckpointBody | None = None
    last_hash = b""
    expected_seq = 0
    for seq, size, root, chain_head, body_bytes, stored_hash in streams.checkpoints:
        if seq != expected_seq:
            raise _Mismatch(f"checkpoint {expected_seq} is missing (found {seq})")
        last_hash = _extend(streams, builder, int(size), last_hash)
        body = _body(int(seq), bytes(body_bytes), bytes(stored_hash))
        if (body.tree_size, body.root_hash, body.chain_head) != (
            int(size),
            bytes(root),
            bytes(chain_head),
        ):
            raise _Mismatch(f"checkpoint {seq}: columns disagree with its signed body")
        if body.root_hash != builder.root() or body.chain_head != last_hash:
            raise _Mismatch(f"checkpoint {seq}: root or chain head is not what the entries give")
        if previous is not None:
            _check_link(streams, previous, body)
        previous, expected_seq = body, expected_seq + 1
    if expected_seq != next_seq:
        raise _Mismatch(f"the proof head says {next_seq} checkpoints, found {expected_seq}")
    return builder


def _extend(streams: _Streams, builder: TileBuilder, size: int, last_hash: bytes) -> bytes:
    """Append the leaves up to `size`, comparing each stored subtree as it completes."""
    while builder.size < size:
        row = next(streams.leaves, None)
        if row is None or int(row[0]) != builder.size:
            raise _Mismatch(f"entry {builder.size} is missing under a checkpoint")
        last_hash = bytes(row[1])
        builder.append(leaf_hash(last_hash))
        for subtree, value in builder.take_completed():
            stored = next(streams.nodes, None)
            if stored is None or Subtree(int(stored[0]), int(stored[1])) != subtree:
                raise _Mismatch(f"Merkle node ({subtree.height}, {subtree.index}) is missing")
            if bytes(stored[2]) != value:
                raise _Mismatch(
                    f"Merkle node ({subtree.height}, {subtree.index}) is not the root of its"
                    " entries"
                )
    return last_hash


def _body(seq: int, body_bytes: bytes, stored_hash: bytes) -> CheckpointBody:
    try:
        body = CheckpointBody.from_json(loads_strict(body_bytes))
    except (StrictJsonError, CheckpointError) as exc:
        raise _Mismatch(f"checkpoint {seq}: body does not parse: {exc}") from exc
    if body.seq != seq or body_hash(body) != stored_hash:
        raise _Mismatch(f"checkpoint {seq}: body hash or seq does not match its body")
    return body


def _check_link(streams: _Streams, previous: CheckpointBody, body: CheckpointBody) -> None:
    try:
        verify_checkpoint_chain(previous, body)
    except CheckpointError as exc:
        raise _Mismatch(f"checkpoint {body.seq}: {exc.reason}") from exc
    row = next(streams.proofs, None)
    if row is None or int(row[0]) != body.seq:
        raise _Mismatch(f"the consistency proof to checkpoint {body.seq} is missing")
    packed = bytes(row[1])
    proof = [packed[i : i + HASH_BYTES] for i in range(0, len(packed), HASH_BYTES)]
    try:
        verify_consistency(
            previous.tree_size, body.tree_size, previous.root_hash, body.root_hash, proof
        )
    except ProofError as exc:
        raise _Mismatch(f"consistency proof to checkpoint {body.seq}: {exc.reason}") from exc


def _check_end(
    streams: _Streams, builder: TileBuilder, tree_size: int, head: tuple[Any, ...]
) -> None:
    if builder.size != tree_size:
        raise _Mismatch(f"the proof head says {tree_size} entries, the checkpoints {builder.size}")
    if tree_size and bytes(head[2]) != builder.root():
        raise _Mismatch("the proof head's root is not the last checkpoint's")
    if b"".join(builder.frontier) != bytes(head[3]):
        raise _Mismatch("the proof head's frontier is not what the entries give")
    extra = next(streams.nodes, None)
    if extra is not None:
        raise _Mismatch(f"Merkle node ({extra[0]}, {extra[1]}) lies beyond the sealed entries")
    if next(streams.proofs, None) is not None:
        raise _Mismatch("a consistency proof has no checkpoint pair")
