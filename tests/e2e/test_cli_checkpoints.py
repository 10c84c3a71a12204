"""`finance checkpoint` and `finance checkpoints list`, run as the real command: the printed
checkpoint verifies with the signer's public key; refusals are one line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.signers.local import LocalSigner
from finance.domain.accounts import AccountType
from finance.proofs.checkpoint import SignedCheckpoint, verify_checkpoint
from tests.e2e.helpers import environment, ok, one_error_line, run
from tests.integration.helpers import new_tenant, open_account, post_many
from tests.signers import trust_for


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-checkpoints")


def test_checkpoint_seals_signs_and_lists(
    store: PostgresLedgerStore, data_dir: Path, database_url: str
) -> None:
    tenant = new_tenant(store)
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    post_many(store, tenant, 3, cash, equity)
    env = environment(data_dir, database_url)

    printed = ok(env, "checkpoint", "--tenant", tenant, "--json")
    envelope = printed.out.rstrip("\n").encode()
    checkpoint = SignedCheckpoint.from_bytes(envelope)  # canonical bytes, as stored by auditors
    # The key the command created on first use in the data directory signed it.
    signer = LocalSigner(data_dir / "keys" / "ledger-signer.pem")
    verify_checkpoint(checkpoint, trust_for(signer))
    assert (checkpoint.body.seq, checkpoint.body.tree_size) == (0, 3)
    assert checkpoint.body.origin == f"finance.local/{tenant}"

    listed = json.loads(ok(env, "checkpoints", "list", "--tenant", tenant, "--json").out)
    assert [(c["seq"], c["status"], c["tree_size"]) for c in listed] == [(0, "signed", 3)]
    assert SignedCheckpoint.from_json(listed[0]["checkpoint"]) == checkpoint


def test_checkpoint_refusals_are_one_line(
    store: PostgresLedgerStore, data_dir: Path, database_url: str
) -> None:
    env = environment(data_dir, database_url)
    empty = new_tenant(store)
    one_error_line(run(env, "checkpoint", "--tenant", empty), 1, "error: ledger_empty: ")
    frozen = environment(data_dir, database_url, FINANCE_WRITE_MODE="readonly")
    cash = open_account(store, empty, "cash")
    equity = open_account(store, empty, "equity", AccountType.EQUITY)
    post_many(store, empty, 1, cash, equity)
    one_error_line(
        run(frozen, "checkpoint", "--tenant", empty),
        1,
        "error: the ledger is in read-only mode",
    )
