"""The checkpoint and receipt endpoints, end to end: what the API hands out verifies offline with
nothing but the signer's public key; errors are problems; tenants are isolated; and when the
signer fails, postings go on, checkpoints queue, /readyz says degraded, and the queue is signed in
order once the signer is back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from finance.adapters.postgres.db import Database
from finance.api.app import create_app
from finance.auth.tokens import Role, TokenIssuer
from finance.proofs.checkpoint import SignedCheckpoint, verify_checkpoint, verify_checkpoint_chain
from finance.proofs.merkle import verify_consistency
from finance.proofs.signatures import TrustStore
from finance.proofs.strict_json import b64decode_hash, loads_strict
from tests.conftest import bearer, make_container, new_tenant_id
from tests.e2e.helpers import (
    assert_problem,
    get_json,
    key,
    open_account,
    pair,
    post_entry,
    writing,
)
from tests.proof_checks import OnlyTenants, verify_receipt
from tests.signers import SIGNER_ID, FlakySigner, trust_for

WAIT_S = 10.0


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> FlakySigner:
    return FlakySigner(tmp_path_factory.mktemp("keys") / "ledger-signer.pem")


@pytest.fixture(scope="module")
def api(database: Database, issuer: TokenIssuer, signer: FlakySigner) -> Iterator[TestClient]:
    """The API with a checkpoint signer (and no background sealer)."""
    container = make_container(database, issuer, signers=[(SIGNER_ID, signer)])
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def trust(signer: FlakySigner) -> TrustStore:
    return trust_for(signer)


def post_entries(client: TestClient, auth: dict[str, str], count: int) -> list[dict[str, Any]]:
    cash = open_account(client, auth, f"cash-{key()[-6:]}", "asset")
    equity = open_account(client, auth, f"equity-{key()[-6:]}", "equity")
    return [post_entry(client, auth, pair(cash, equity, n + 1)) for n in range(count)]


def checkpoint_now(client: TestClient, auth: dict[str, str], status: int = 201) -> bytes:
    response = client.post("/v1/checkpoints", headers=writing(auth))
    assert response.status_code == status, response.text
    return response.content


def signed(content: bytes, trust: TrustStore) -> SignedCheckpoint:
    """Parse as an auditor does (canonical bytes only) and verify."""
    checkpoint = SignedCheckpoint.from_bytes(content)
    verify_checkpoint(checkpoint, trust)
    return checkpoint


def wait_until(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


# Happy path ---------------------------------------------------------------------------------


def test_an_empty_ledger_has_no_checkpoints(api: TestClient, auth: dict[str, str]) -> None:
    assert_problem(api.post("/v1/checkpoints", headers=writing(auth)), 409, "ledger_empty")
    assert get_json(api, "/v1/checkpoints", auth) == {"data": [], "next_cursor": None}
    assert_problem(api.get("/v1/checkpoints/latest", headers=auth), 404, "checkpoint_not_found")
    assert_problem(api.get("/v1/checkpoints/0", headers=auth), 404, "checkpoint_not_found")


def test_checkpoints_are_issued_signed_and_served_byte_for_byte(
    api: TestClient, auth: dict[str, str], trust: TrustStore
) -> None:
    post_entries(api, auth, 3)
    idempotency_key = key()
    first = api.post("/v1/checkpoints", headers=writing(auth, idempotency_key))
    assert first.status_code == 201, first.text
    assert first.headers["content-type"] == "application/json"
    zero = signed(first.content, trust)
    assert (zero.body.seq, zero.body.tree_size) == (0, 3)
    assert zero.body.origin.endswith("/" + auth_tenant(auth))

    replay = api.post("/v1/checkpoints", headers=writing(auth, idempotency_key))
    assert (replay.status_code, replay.content) == (201, first.content)
    assert replay.headers["Idempotent-Replayed"] == "true"
    # Nothing new since: a fresh request answers with the same checkpoint.
    assert checkpoint_now(api, auth) == first.content

    post_entries(api, auth, 2)
    one = signed(checkpoint_now(api, auth), trust)
    assert (one.body.seq, one.body.tree_size) == (1, 5)
    verify_checkpoint_chain(zero.body, one.body)

    by_seq = api.get("/v1/checkpoints/1", headers=auth)
    assert by_seq.content == one.to_bytes()
    assert by_seq.headers["Checkpoint-Status"] == "signed"
    assert api.get("/v1/checkpoints/latest", headers=auth).content == one.to_bytes()
    assert api.get("/v1/checkpoints/0", headers=auth).content == first.content


def auth_tenant(auth: dict[str, str]) -> str:
    import jwt

    token = auth["Authorization"].removeprefix("Bearer ")
    return str(jwt.decode(token, options={"verify_signature": False})["tenant"])


def test_checkpoint_list_is_newest_first_and_paged(
    api: TestClient, auth: dict[str, str], trust: TrustStore
) -> None:
    for _ in range(3):
        post_entries(api, auth, 1)
        checkpoint_now(api, auth)
    page = get_json(api, "/v1/checkpoints", auth, limit=2)
    assert [item["seq"] for item in page["data"]] == [2, 1]
    rest = get_json(api, "/v1/checkpoints", auth, limit=2, cursor=page["next_cursor"])
    assert ([item["seq"] for item in rest["data"]], rest["next_cursor"]) == ([0], None)
    for item in page["data"] + rest["data"]:
        assert item["status"] == "signed"
        assert item["signed_at"] is not None
        checkpoint = SignedCheckpoint.from_json(item["checkpoint"])
        verify_checkpoint(checkpoint, trust)
        assert (checkpoint.body.seq, checkpoint.body.tree_size) == (item["seq"], item["tree_size"])
        assert b64decode_hash(item["root_hash"]) == checkpoint.body.root_hash
    assert_problem(api.get("/v1/checkpoints?cursor=bm9wZQ", headers=auth), 400, "invalid_cursor")


def test_consistency_between_checkpoints_verifies(
    api: TestClient, auth: dict[str, str], trust: TrustStore
) -> None:
    bodies = []
    for count in (1, 2, 300):
        post_entries(api, auth, count) if count < 10 else bulk(api, auth, count)
        bodies.append(signed(checkpoint_now(api, auth), trust).body)
    for first, second in ((0, 1), (1, 2), (0, 2), (2, 2)):
        found = get_json(api, "/v1/checkpoints/consistency", auth, **{"from": first, "to": second})
        old, new = bodies[first], bodies[second]
        assert found["from"] == {
            "seq": first, "tree_size": old.tree_size, "root_hash": b64(old.root_hash)
        }  # fmt: skip
        assert found["to"]["seq"] == second
        proof = [b64decode_hash(value) for value in found["proof"]]
        verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof)
    for params, status, code in (
        ({"from": 2, "to": 1}, 422, "validation_failed"),
        ({"from": 0, "to": 9}, 404, "checkpoint_not_found"),
        ({"from": 0}, 422, "validation_failed"),
        ({"from": -1, "to": 1}, 422, "validation_failed"),
    ):
        response = api.get("/v1/checkpoints/consistency", headers=auth, params=params)
        assert_problem(response, status, code)


def bulk(api: TestClient, auth: dict[str, str], count: int) -> None:
    """Many entries fast, through the same ledger (not over HTTP)."""
    from finance.adapters.postgres.ledger_store import PostgresLedgerStore
    from finance.bench.loader import append_entries_fast
    from tests.integration.helpers import open_account as open_in_store

    container = api.app.state.container  # type: ignore[attr-defined]
    store: PostgresLedgerStore = container.store
    tenant = auth_tenant(auth)
    debit = open_in_store(store, tenant, f"bulk-{key()[-6:]}")
    credit = open_in_store(store, tenant, f"bulk-{key()[-6:]}")
    append_entries_fast(container.database, tenant, count, debit, credit)


def b64(value: bytes) -> str:
    import base64

    return base64.b64encode(value).decode()


def test_receipts_verify_with_only_the_public_key(
    api: TestClient, auth: dict[str, str], trust: TrustStore
) -> None:
    entries = post_entries(api, auth, 5)
    assert_problem(
        api.get(f"/v1/journal/{entries[0]['id']}/receipt", headers=auth), 409, "entry_not_sealed"
    ).get("detail")
    not_yet = api.get(f"/v1/journal/{entries[0]['id']}/receipt", headers=auth)
    assert not_yet.headers["Retry-After"] == "2"
    signed(checkpoint_now(api, auth), trust)
    later = post_entries(api, auth, 1)[0]
    for entry in entries:
        response = api.get(f"/v1/journal/{entry['id']}/receipt", headers=auth)
        assert response.status_code == 200, response.text
        receipt = loads_strict(response.content)  # canonical bytes, as a verifier reads them
        checkpoint = verify_receipt(receipt, trust)
        assert receipt["leaf_index"] == entry["sequence"]
        assert receipt["entry"]["id"] == entry["id"]
        assert receipt["prev_hash"] == b64(bytes.fromhex(entry["prev_hash"]))
        assert checkpoint.body.tree_size == 5
    assert_problem(
        api.get(f"/v1/journal/{later['id']}/receipt", headers=auth), 409, "entry_not_sealed"
    )
    checkpoint_now(api, auth)
    older = api.get(f"/v1/journal/{entries[2]['id']}/receipt?checkpoint=0", headers=auth)
    assert verify_receipt(older.json(), trust).body.seq == 0
    newer = api.get(f"/v1/journal/{later['id']}/receipt", headers=auth)
    assert verify_receipt(newer.json(), trust).body.seq == 1
    for url, status, code in (
        (f"/v1/journal/{later['id']}/receipt?checkpoint=0", 409, "entry_not_covered"),
        (f"/v1/journal/{later['id']}/receipt?checkpoint=9", 404, "checkpoint_not_found"),
        (f"/v1/journal/{later['id']}/receipt?checkpoint=-1", 422, "validation_failed"),
        ("/v1/journal/00000000-0000-4000-8000-000000000000/receipt", 404, "entry_not_found"),
        ("/v1/journal/not-a-uuid/receipt", 422, "validation_failed"),
    ):
        assert_problem(api.get(url, headers=auth), status, code)


# Isolation, roles, modes --------------------------------------------------------------------


def test_another_tenants_checkpoints_and_receipts_are_not_found(
    api: TestClient, auth: dict[str, str], issuer: TokenIssuer
) -> None:
    entry = post_entries(api, auth, 1)[0]
    checkpoint_now(api, auth)
    other = bearer(issuer, new_tenant_id(), Role.ADMIN)
    for url, code in (
        ("/v1/checkpoints/0", "checkpoint_not_found"),
        ("/v1/checkpoints/latest", "checkpoint_not_found"),
        ("/v1/checkpoints/consistency?from=0&to=0", "checkpoint_not_found"),
        (f"/v1/journal/{entry['id']}/receipt", "entry_not_found"),
        (f"/v1/journal/{entry['id']}/receipt?checkpoint=0", "entry_not_found"),
    ):
        assert_problem(api.get(url, headers=other), 404, code)
    assert get_json(api, "/v1/checkpoints", other)["data"] == []
    # A tenant that was never created cannot have a checkpoint made for it.
    assert_problem(api.post("/v1/checkpoints", headers=writing(other)), 403, "tenant_not_found")


def test_roles_and_idempotency_keys_are_required(
    api: TestClient, auth: dict[str, str], issuer: TokenIssuer, tenant: str
) -> None:
    post_entries(api, auth, 1)
    viewer = bearer(issuer, tenant, Role.VIEWER)
    assert_problem(api.post("/v1/checkpoints", headers=writing(viewer)), 403, "insufficient_role")
    assert_problem(api.post("/v1/checkpoints", headers=auth), 400, "idempotency_key_missing")
    bad = {**auth, "Idempotency-Key": "has space"}
    assert_problem(api.post("/v1/checkpoints", headers=bad), 400, "idempotency_key_invalid")
    assert get_json(api, "/v1/checkpoints", viewer)["data"] == []  # nothing was sealed
    accountant = bearer(issuer, tenant, Role.ACCOUNTANT)
    checkpoint_now(api, accountant)
    assert len(get_json(api, "/v1/checkpoints", viewer)["data"]) == 1
    assert_problem(api.get("/v1/checkpoints/latest"), 401, "token_missing")


def test_read_only_mode_refuses_sealing_and_serves_proofs(
    api: TestClient, readonly_client: TestClient, auth: dict[str, str]
) -> None:
    entry = post_entries(api, auth, 1)[0]
    checkpoint_now(api, auth)
    refused = readonly_client.post("/v1/checkpoints", headers=writing(auth))
    assert_problem(refused, 503, "ledger_read_only")
    assert len(get_json(readonly_client, "/v1/checkpoints", auth)["data"]) == 1
    assert (
        readonly_client.get(f"/v1/journal/{entry['id']}/receipt", headers=auth).status_code == 200
    )


def test_the_new_paths_are_in_the_openapi_document(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/checkpoints",
        "/v1/checkpoints/latest",
        "/v1/checkpoints/consistency",
        "/v1/checkpoints/{seq}",
        "/v1/journal/{entry_id}/receipt",
    ):
        assert path in paths


# Degraded mode ------------------------------------------------------------------------------


@pytest.fixture
def outage(
    database: Database, issuer: TokenIssuer, tmp_path: Path, tenant: str
) -> Iterator[tuple[TestClient, FlakySigner]]:
    """The API as `finance serve` runs it: a background sealer (every 50 ms, for this test's
    tenant only) and a signer that the test can take down."""
    flaky = FlakySigner(tmp_path / "ledger-signer.pem")
    container = make_container(
        database, issuer, signers=[(SIGNER_ID, flaky)], with_sealer=True, seal_interval=0.05
    )
    container.proofs.store = OnlyTenants(container.proofs.store, tenant)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        assert container.sealer is not None
        assert container.sealer.running
        yield client, flaky
    assert not container.sealer.running


def statuses(client: TestClient, auth: dict[str, str]) -> list[tuple[int, str, int]]:
    page = get_json(client, "/v1/checkpoints", auth, limit=500)
    return [(item["seq"], item["status"], item["tree_size"]) for item in reversed(page["data"])]


def test_signer_outage_degrades_then_recovers_with_every_checkpoint_signed_in_order(
    outage: tuple[TestClient, FlakySigner], auth: dict[str, str]
) -> None:
    client, flaky = outage
    post_entries(client, auth, 2)
    wait_until(
        "the sealer signs a checkpoint of both entries",
        lambda: [s[1:] for s in statuses(client, auth)[-1:]] == [("signed", 2)],
    )

    flaky.go_down()
    queued_entries: list[dict[str, Any]] = []

    def sealed_up_to(size: int) -> Callable[[], bool]:
        return lambda: statuses(client, auth)[-1][2] == size

    for _ in range(3):
        queued_entries += post_entries(client, auth, 2)  # postings carry on
        wait_until("the sealer seals them", sealed_up_to(2 + len(queued_entries)))
    pending = [seq for seq, status, _ in statuses(client, auth) if status == "pending"]
    assert len(pending) >= 2
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded"
    assert "HSM unreachable" in body["reason"]
    assert body["unsigned_checkpoints"] >= len(pending)
    assert body["degraded_since"]
    assert_problem(
        client.get(f"/v1/journal/{queued_entries[-1]['id']}/receipt", headers=auth),
        409,
        "entry_not_sealed",
    )
    on_demand = client.post("/v1/checkpoints", headers=writing(auth))
    assert on_demand.status_code == 202, on_demand.text
    assert on_demand.json()["status"] == "pending"
    assert on_demand.json()["checkpoint"]["signatures"] == []
    waiting = client.get(f"/v1/checkpoints/{pending[0]}", headers=auth)
    assert waiting.headers["Checkpoint-Status"] == "pending"
    assert loads_strict(waiting.content)["signatures"] == []

    flaky.come_back()
    wait_until(
        "the queue is signed",
        lambda: all(status == "signed" for _, status, _ in statuses(client, auth)),
    )
    wait_until("/readyz is ready again", lambda: client.get("/readyz").json()["status"] == "ready")
    check_signed_history(client, auth, trust_for(flaky))
    receipt = client.get(f"/v1/journal/{queued_entries[-1]['id']}/receipt", headers=auth)
    assert verify_receipt(receipt.json(), trust_for(flaky)).body.tree_size == 8

    metrics = client.get("/metrics").text
    assert "finance_checkpoint_signing_failures_total" in metrics
    assert 'finance_checkpoint_lag_seconds_bucket{le="2.0",stage="signed"}' in metrics
    assert "finance_checkpoints_unsigned " in metrics


def check_signed_history(client: TestClient, auth: dict[str, str], trust: TrustStore) -> None:
    """Every checkpoint verifies, follows the previous one, is consistent with it by the stored
    proof, and was signed no earlier than its predecessor."""
    page = get_json(client, "/v1/checkpoints", auth, limit=500)["data"]
    items = list(reversed(page))
    assert [item["seq"] for item in items] == list(range(len(items)))
    previous = None
    for item in items:
        content = client.get(f"/v1/checkpoints/{item['seq']}", headers=auth).content
        current = signed(content, trust)
        if previous is not None:
            verify_checkpoint_chain(previous[0].body, current.body)
            found = get_json(
                client, "/v1/checkpoints/consistency", auth,
                **{"from": previous[0].body.seq, "to": current.body.seq},
            )  # fmt: skip
            verify_consistency(
                previous[0].body.tree_size,
                current.body.tree_size,
                previous[0].body.root_hash,
                current.body.root_hash,
                [b64decode_hash(value) for value in found["proof"]],
            )
            assert item["signed_at"] >= previous[1]
        previous = (current, item["signed_at"])
