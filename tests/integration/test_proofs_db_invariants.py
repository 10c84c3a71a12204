"""Migration 0002 holds the proof tables' rules itself: checkpoints extend their chain exactly and
agree with their signed bodies, bodies never change, signatures are written once and in order,
stored subtrees lie within the ledger and never change; the service role may only read, append
and sign; row-level security keeps tenants apart; the cross-tenant functions are the service's
only and reveal ids and counts."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import rfc8785
from psycopg import errors

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.proof_store import PostgresProofStore
from finance.bench.loader import append_entries_fast
from finance.bootstrap import SystemClock
from finance.domain.accounts import AccountType
from finance.proofs.checkpoint import CheckpointBody, body_hash
from finance.proofs.merkle import leaf_hash, root
from finance.services.proofs import Proofs
from tests.integration.helpers import (
    Conn,
    new_tenant,
    now,
    open_account,
    post_many,
    raises_sqlstate,
    scalar,
)
from tests.signers import SIGNER_ID, FlakySigner

PROOF_TABLES = ("proof_heads", "merkle_nodes", "checkpoints", "checkpoint_consistency")


def make_signed_tenant(store: PostgresLedgerStore, database: Database, key: Path) -> str:
    """A tenant with two signed checkpoints (so a consistency proof) and one unsigned, over
    301 entries (so a stored subtree), and one entry posted since."""
    tenant = new_tenant(store)
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    proofs = Proofs(
        PostgresProofStore(database), SystemClock(), signer_id=SIGNER_ID,
        signers=[(SIGNER_ID, FlakySigner(key))],
    )  # fmt: skip
    append_entries_fast(database, tenant, 260, cash, equity)
    proofs.checkpoint_now(tenant)
    append_entries_fast(database, tenant, 40, cash, equity)
    proofs.checkpoint_now(tenant)
    post_many(store, tenant, 1, cash, equity)
    assert proofs.seal(tenant) is not None
    post_many(store, tenant, 1, cash, equity)
    return tenant


@pytest.fixture(scope="module")
def signed_tenant(
    store: PostgresLedgerStore, database: Database, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Shared by the tests of this module, which leave it as they found it (they roll back,
    or are refused)."""
    return make_signed_tenant(store, database, tmp_path_factory.mktemp("keys") / "key.pem")


def proof_rows(conn: Conn, tenant: str) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: conn.execute(
            f"SELECT * FROM {table} WHERE tenant_id = %s ORDER BY 1, 2, 3", (tenant,)
        ).fetchall()
        for table in PROOF_TABLES
    }


def next_body(conn: Conn, tenant: str, **changes: object) -> CheckpointBody:
    """A body that would be valid as the tenant's next checkpoint, with `changes`."""
    head = conn.execute(
        "SELECT tree_size, next_seq, last_body_hash, last_issued_at FROM proof_heads"
        " WHERE tenant_id = %s",
        (tenant,),
    ).fetchone()
    assert head is not None
    hashes = [
        bytes(row[0])
        for row in conn.execute(
            "SELECT hash FROM journal_entries WHERE tenant_id = %s ORDER BY sequence", (tenant,)
        )
    ]
    body = CheckpointBody(
        origin=f"{SIGNER_ID}/{tenant}",
        tree_size=len(hashes),
        root_hash=root([leaf_hash(h) for h in hashes]),
        chain_head=hashes[-1],
        seq=int(head[1]),
        prev_checkpoint=None if head[2] is None else bytes(head[2]),
        issued_at=max(now(), (head[3] or now()) + timedelta(microseconds=1)),
    )
    return replace(body, **changes)  # type: ignore[arg-type]


def insert_checkpoint(conn: Conn, tenant: str, body: CheckpointBody, **columns: object) -> None:
    encoded = rfc8785.dumps(body.to_json())
    values = {
        "tenant_id": tenant,
        "seq": body.seq,
        "tree_size": body.tree_size,
        "root_hash": body.root_hash,
        "chain_head": body.chain_head,
        "prev_checkpoint": body.prev_checkpoint,
        "issued_at": body.issued_at,
        "body": encoded,
        "body_hash": hashlib.sha256(b"finance/checkpoint/v1\n" + encoded).digest(),
        **columns,
    }
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(
        f"INSERT INTO checkpoints ({names}) VALUES ({marks})".encode(), list(values.values())
    )


# The service role's privileges ----------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE checkpoints SET root_hash = root_hash WHERE tenant_id = %(t)s",
        "UPDATE checkpoints SET body = body WHERE tenant_id = %(t)s",
        "UPDATE checkpoints SET tree_size = tree_size + 1 WHERE tenant_id = %(t)s",
        "DELETE FROM checkpoints WHERE tenant_id = %(t)s",
        "UPDATE merkle_nodes SET hash = hash WHERE tenant_id = %(t)s",
        "DELETE FROM merkle_nodes WHERE tenant_id = %(t)s",
        "UPDATE checkpoint_consistency SET proof = proof WHERE tenant_id = %(t)s",
        "DELETE FROM checkpoint_consistency WHERE tenant_id = %(t)s",
        "UPDATE proof_heads SET tree_size = 0 WHERE tenant_id = %(t)s",
        "UPDATE proof_heads SET next_seq = next_seq + 1 WHERE tenant_id = %(t)s",
        "UPDATE proof_heads SET root_hash = NULL WHERE tenant_id = %(t)s",
        "DELETE FROM proof_heads WHERE tenant_id = %(t)s",
        "INSERT INTO proof_heads (tenant_id) VALUES ('x')",
        "TRUNCATE checkpoints",
        "TRUNCATE merkle_nodes",
    ],
)
def test_the_service_role_cannot_rewrite_proofs(
    database: Database, signed_tenant: str, statement: str
) -> None:
    with database.admin() as conn:
        before = proof_rows(conn, signed_tenant)
    with pytest.raises(errors.InsufficientPrivilege), database.transaction(signed_tenant) as conn:
        conn.execute(statement.encode(), {"t": signed_tenant})
    with database.admin() as conn:
        assert proof_rows(conn, signed_tenant) == before


def raise_to_roll_back() -> None:
    raise psycopg.Rollback


def test_the_service_role_may_sign_once_and_write_the_frontier(
    database: Database, signed_tenant: str
) -> None:
    """Control for the refusals: the grants the sealer needs do work, through the triggers."""
    signed = rewritten = 0
    with database.transaction(signed_tenant) as conn:
        signed = conn.execute(
            "UPDATE checkpoints SET signatures = '[{\"x\":1}]', signed_at = now()"
            " WHERE tenant_id = %s AND seq = 2",
            (signed_tenant,),
        ).rowcount
        rewritten = conn.execute(
            "UPDATE proof_heads SET frontier = frontier WHERE tenant_id = %s", (signed_tenant,)
        ).rowcount
        raise_to_roll_back()
    assert (signed, rewritten) == (1, 1)


# Triggers (even the owner meets them) ---------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE checkpoints SET body = body || ' '::bytea WHERE tenant_id = %(t)s AND seq = 0",
        "UPDATE checkpoints SET issued_at = issued_at - interval '1 day'"
        " WHERE tenant_id = %(t)s AND seq = 0",
        # Signatures are written once: a signed checkpoint is never re-signed or unsigned.
        "UPDATE checkpoints SET signatures = '[]', signed_at = now()"
        " WHERE tenant_id = %(t)s AND seq = 0",
        "UPDATE checkpoints SET signatures = NULL, signed_at = NULL"
        " WHERE tenant_id = %(t)s AND seq = 0",
        "DELETE FROM checkpoints WHERE tenant_id = %(t)s AND seq = 2",
        "UPDATE merkle_nodes SET hash = sha256(hash) WHERE tenant_id = %(t)s",
        "DELETE FROM merkle_nodes WHERE tenant_id = %(t)s",
        "UPDATE checkpoint_consistency SET proof = proof WHERE tenant_id = %(t)s",
        "DELETE FROM checkpoint_consistency WHERE tenant_id = %(t)s",
        "DELETE FROM proof_heads WHERE tenant_id = %(t)s",
        "TRUNCATE checkpoints CASCADE",
        "TRUNCATE merkle_nodes",
        "TRUNCATE checkpoint_consistency",
        "TRUNCATE proof_heads",
    ],
)
def test_proofs_are_immutable_even_for_the_owner(
    database: Database, signed_tenant: str, statement: str
) -> None:
    with database.admin() as conn:
        before = proof_rows(conn, signed_tenant)
        with raises_sqlstate("FN004"), conn.transaction():
            conn.execute(statement.encode(), {"t": signed_tenant})
        assert proof_rows(conn, signed_tenant) == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE proof_heads SET tree_size = tree_size - 1 WHERE tenant_id = %(t)s",
        "UPDATE proof_heads SET next_seq = next_seq + 1 WHERE tenant_id = %(t)s",
        "UPDATE proof_heads SET next_seq = next_seq - 1 WHERE tenant_id = %(t)s",
        "UPDATE proof_heads SET root_hash = sha256(root_hash) WHERE tenant_id = %(t)s",
    ],
)
def test_the_proof_head_only_moves_with_a_checkpoint(
    database: Database, signed_tenant: str, statement: str
) -> None:
    with database.admin() as conn, raises_sqlstate("FN009"), conn.transaction():
        conn.execute(statement.encode(), {"t": signed_tenant})


def test_the_frontier_must_fit_the_tree_size_at_commit(
    database: Database, signed_tenant: str
) -> None:
    with database.admin() as conn, raises_sqlstate("FN009"), conn.transaction():
        conn.execute(
            "UPDATE proof_heads SET frontier = frontier || frontier WHERE tenant_id = %s",
            (signed_tenant,),
        )


def test_a_checkpoint_is_signed_only_after_its_predecessor(
    database: Database, store: PostgresLedgerStore, tmp_path: Path
) -> None:
    """Seal a fourth checkpoint while the third is unsigned: signing the fourth first fails."""
    signed_tenant = make_signed_tenant(store, database, tmp_path / "key.pem")
    proofs = Proofs(PostgresProofStore(database), SystemClock(), signer_id=SIGNER_ID)
    assert proofs.seal(signed_tenant) is not None
    with database.transaction(signed_tenant) as conn:
        with raises_sqlstate("FN010"), conn.transaction():
            conn.execute(
                "UPDATE checkpoints SET signatures = '[{\"x\":1}]', signed_at = now()"
                " WHERE tenant_id = %s AND seq = 3",
                (signed_tenant,),
            )
        for bad in ("{}", "[]", '"x"'):
            with raises_sqlstate("FN010"), conn.transaction():
                conn.execute(
                    "UPDATE checkpoints SET signatures = %s, signed_at = now()"
                    " WHERE tenant_id = %s AND seq = 2",
                    (bad.encode(), signed_tenant),
                )


@pytest.mark.parametrize(
    ("changes", "columns"),
    [
        pytest.param({"seq": 4}, {}, id="skips-a-seq"),
        pytest.param({"seq": 2}, {}, id="repeats-a-seq"),
        pytest.param({"prev_checkpoint": bytes(32)}, {}, id="wrong-prev"),
        pytest.param({"chain_head": bytes(32)}, {}, id="wrong-chain-head"),
        pytest.param({"tree_size": 301}, {}, id="did-not-grow"),
        pytest.param({"tree_size": 303}, {}, id="past-the-ledger"),
        pytest.param({"origin": "finance.local/other"}, {}, id="other-tenant-origin"),
        pytest.param({}, {"root_hash": bytes(32)}, id="column-disagrees-with-body"),
        pytest.param({}, {"tree_size": 300}, id="size-disagrees-with-body"),
        pytest.param({}, {"seq": 4}, id="seq-disagrees-with-body"),
        pytest.param({}, {"signatures": b"[]", "signed_at": now()}, id="inserted-signed"),
    ],
)
def test_a_checkpoint_must_extend_the_chain_and_match_its_body(
    database: Database,
    signed_tenant: str,
    changes: dict[str, object],
    columns: dict[str, object],
) -> None:
    with database.transaction(signed_tenant) as conn:
        # Control: the unchanged body is accepted (and rolled back).
        with conn.transaction(force_rollback=True):
            insert_checkpoint(conn, signed_tenant, next_body(conn, signed_tenant))
        body = next_body(conn, signed_tenant, **changes)
        with raises_sqlstate("FN009"), conn.transaction():
            insert_checkpoint(conn, signed_tenant, body, **columns)


def test_issued_at_must_follow_the_previous_checkpoint(
    database: Database, signed_tenant: str
) -> None:
    with database.transaction(signed_tenant) as conn:
        body = next_body(conn, signed_tenant)
        earlier = next_body(conn, signed_tenant, issued_at=body.issued_at - timedelta(days=1))
        with raises_sqlstate("FN009"), conn.transaction():
            insert_checkpoint(conn, signed_tenant, earlier)


def test_body_hash_is_the_hash_of_the_body(database: Database, signed_tenant: str) -> None:
    with database.transaction(signed_tenant) as conn:
        body = next_body(conn, signed_tenant)
        with pytest.raises(errors.CheckViolation), conn.transaction():
            insert_checkpoint(conn, signed_tenant, body, body_hash=body_hash(body)[::-1])


def test_a_merkle_node_must_lie_within_the_ledger(database: Database, signed_tenant: str) -> None:
    with database.transaction(signed_tenant) as conn:
        with raises_sqlstate("FN009"), conn.transaction():
            conn.execute(
                "INSERT INTO merkle_nodes (tenant_id, height, node_index, hash)"
                " VALUES (%s, 8, 5, %s)",
                (signed_tenant, bytes(32)),
            )
        with pytest.raises(errors.CheckViolation), conn.transaction():
            conn.execute(
                "INSERT INTO merkle_nodes (tenant_id, height, node_index, hash)"
                " VALUES (%s, 4, 0, %s)",
                (signed_tenant, bytes(32)),
            )


def test_every_new_tenant_gets_a_proof_head(database: Database, tenant: str) -> None:
    with database.admin() as conn:
        row = conn.execute(
            "SELECT tree_size, next_seq, frontier FROM proof_heads WHERE tenant_id = %s",
            (tenant,),
        ).fetchone()
    assert row == (0, 0, b"")


# Row-level security and the cross-tenant functions -----------------------------------------


def test_a_tenant_sees_no_proof_rows_of_another(
    database: Database, store: PostgresLedgerStore, signed_tenant: str
) -> None:
    other = new_tenant(store)
    with database.transaction(other) as conn:
        for table in PROOF_TABLES:
            assert (
                scalar(conn, f"SELECT count(*) FROM {table} WHERE tenant_id = %s", (signed_tenant,))
                == 0
            )
    with database.transaction(None) as conn:
        for table in PROOF_TABLES:
            assert scalar(conn, f"SELECT count(*) FROM {table}") == 0
    with database.transaction(signed_tenant) as conn:
        assert scalar(conn, "SELECT count(*) FROM checkpoints") == 3
        assert scalar(conn, "SELECT count(*) FROM merkle_nodes") == 1


def test_a_tenant_cannot_plant_proof_rows_for_another(
    database: Database, store: PostgresLedgerStore, signed_tenant: str
) -> None:
    other = new_tenant(store)
    with database.admin() as conn:
        before = proof_rows(conn, signed_tenant)
    with (
        pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
        database.transaction(other) as conn,
    ):
        conn.execute(
            "INSERT INTO merkle_nodes (tenant_id, height, node_index, hash) VALUES (%s, 8, 0, %s)",
            (signed_tenant, bytes(32)),
        )
    with (
        pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
        database.transaction(other) as conn,
    ):
        conn.execute(
            "INSERT INTO checkpoint_consistency (tenant_id, from_seq, to_seq, proof)"
            " VALUES (%s, 1, 2, %s)",
            (signed_tenant, bytes(32)),
        )
    with database.admin() as conn:
        assert proof_rows(conn, signed_tenant) == before


def test_cross_tenant_functions_are_the_services_and_reveal_only_ids_and_counts(
    database: Database, signed_tenant: str
) -> None:
    with database.admin() as conn:
        for function in ("finance_proof_backlog(integer)", "finance_unsigned_checkpoints()"):
            assert not scalar(
                conn, "SELECT has_function_privilege('public', %s, 'EXECUTE')", (function,)
            )
            assert scalar(
                conn, "SELECT has_function_privilege('finance_app', %s, 'EXECUTE')", (function,)
            )
    with database.transaction(None) as conn:
        cursor = conn.execute("SELECT * FROM finance_proof_backlog(100000)")
        assert [c.name for c in cursor.description or ()] == [
            "tenant_id",
            "unsealed_entries",
            "unsigned_checkpoints",
        ]
        backlog = {row[0]: row[1:] for row in cursor.fetchall()}
        summary = conn.execute("SELECT * FROM finance_unsigned_checkpoints()")
        assert [c.name for c in summary.description or ()] == ["unsigned", "oldest_issued_at"]
    assert backlog[signed_tenant] == (1, 1)
