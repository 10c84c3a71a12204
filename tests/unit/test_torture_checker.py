"""The torture run's checker: a clean history and snapshot give no violation, and each kind of
violation is found in a history or snapshot crafted to have it (and only it)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from finance.proofs.checkpoint import CheckpointBody, SignedCheckpoint, body_hash, sign_checkpoint
from finance.torture.checker import DETAILS_PER_CODE_MAX, Report, check
from finance.torture.history import Attempt, FaultEvent, LineKey, Outcome, Posting, classify
from finance.torture.snapshot import Snapshot, StoredAccount, StoredEntry
from tests.signers import SIGNER_ID, MemorySigner, trust_for

SIGNER = MemorySigner(seed=5)
TRUST = trust_for(SIGNER)
EQUITY, CASH, WALLET = (str(uuid.UUID(int=n)) for n in (1, 2, 3))
ISSUED = datetime(2026, 1, 1, tzinfo=UTC)


def lines(debit: str, credit: str, amount: int) -> tuple[LineKey, ...]:
    return ((debit, "debit", amount, "USD"), (credit, "credit", amount, "USD"))


def acked(key: str, body: tuple[LineKey, ...], entry_id: uuid.UUID) -> Posting:
    return Posting(key, 1, body, [Attempt(Outcome.ACKNOWLEDGED, "created", 201, entry_id, body)])


def checkpoints(size: int, count: int = 2) -> tuple[SignedCheckpoint, ...]:
    """`count` checkpoints, each linked to the one before, the last covering `size` entries."""
    signed: list[SignedCheckpoint] = []
    for seq in range(count):
        body = CheckpointBody(
            origin=f"{SIGNER_ID}/torture",
            tree_size=max(1, size - count + 1 + seq),
            root_hash=bytes([seq]) * 32,
            chain_head=bytes([seq + 1]) * 32,
            seq=seq,
            prev_checkpoint=body_hash(signed[-1].body) if signed else None,
            issued_at=ISSUED + timedelta(seconds=seq),
        )
        signed.append(sign_checkpoint(body, [(SIGNER_ID, SIGNER)]))
    return tuple(signed)


def clean() -> tuple[list[Posting], Snapshot]:
    """Funding of the wallet (a no-overdraft account), a transfer acknowledged after a cut,
    a refused overdraft, and one whose outcome stayed unknown (not committed)."""
    ids = [uuid.uuid4() for _ in range(2)]
    fund, spend = lines(WALLET, EQUITY, 500), lines(CASH, WALLET, 200)
    postings = [
        acked("t-0-1", fund, ids[0]),
        Posting(
            "t-1-1",
            1,
            spend,
            [
                Attempt(Outcome.UNKNOWN, "cut"),
                Attempt(Outcome.ACKNOWLEDGED, "replayed", 200, ids[1], spend, replayed=True),
            ],
        ),
        Posting("t-1-2", 1, lines(CASH, WALLET, 900), [Attempt(Outcome.REFUSED, "overdraft", 422)]),
        Posting("t-2-1", 2, lines(CASH, WALLET, 5), [Attempt(Outcome.UNKNOWN, "timeout")]),
    ]
    entries = (StoredEntry(ids[0], 0, "t-0-1", fund), StoredEntry(ids[1], 1, "t-1-1", spend))
    accounts = (
        StoredAccount(EQUITY, "EQUITY-USD", "USD", 0, 500),
        StoredAccount(CASH, "A00000-USD", "USD", 200, 0),
        StoredAccount(WALLET, "A00001-USD", "USD", 500, 200, credits_must_not_exceed_debits=True),
    )
    snapshot = Snapshot(
        entries=entries,
        accounts=accounts,
        idempotency={"t-0-1": ids[0], "t-1-1": ids[1]},
        integrity=(("hash_chain", None), ("merkle_checkpoints", None)),
        checkpoints=checkpoints(len(entries)),
    )
    return postings, snapshot


def codes(report: Report) -> list[str]:
    return [v.code for v in report.violations]


def test_a_clean_run_has_no_violation_and_counts_every_class() -> None:
    postings, snapshot = clean()
    faults = [FaultEvent("serve_kill", 1.0, 0.5), FaultEvent("postgres_restart", 2.0, 0.7)]
    report = check(postings, snapshot, TRUST, faults)
    assert report.violations == []
    figures = report.figures
    assert (figures["sent"], figures["attempts"], figures["retries"]) == (4, 5, 1)
    assert (figures["acknowledged"], figures["replayed"], figures["refused"]) == (2, 1, 1)
    assert (figures["refused_overdraft"], figures["unknown_at_end"]) == (1, 1)
    assert (figures["faults_serve_kill"], figures["faults_postgres_restart"]) == (1, 1)
    assert (figures["faults_client_cut"], figures["faults_injected"]) == (1, 3)
    assert (figures["entries"], figures["checkpoints_verified"], figures["violations"]) == (2, 2, 0)


def test_an_acknowledged_posting_missing_from_the_journal() -> None:
    postings, snapshot = clean()
    snapshot = dataclasses.replace(snapshot, entries=snapshot.entries[:1])
    report = check(postings, snapshot, TRUST)
    assert "acknowledged_missing" in codes(report)
    assert "t-1-1" in report.violations[codes(report).index("acknowledged_missing")].detail


def test_an_acknowledgement_naming_another_entry() -> None:
    postings, snapshot = clean()
    postings[0] = acked("t-0-1", postings[0].lines, uuid.uuid4())
    assert codes(check(postings, snapshot, TRUST)) == ["acknowledged_differs"]


def test_a_retry_that_posted_twice() -> None:
    postings, snapshot = clean()
    twice = dataclasses.replace(snapshot.entries[1], entry_id=uuid.uuid4(), sequence=2)
    snapshot = dataclasses.replace(snapshot, entries=(*snapshot.entries, twice))
    report = check(postings, snapshot, TRUST)
    assert "duplicate" in codes(report)
    assert "key t-1-1 posted 2 times" in report.violations[codes(report).index("duplicate")].detail


def test_a_posting_no_client_sent() -> None:
    postings, snapshot = clean()
    stray = StoredEntry(uuid.uuid4(), 2, "t-9-9", lines(CASH, EQUITY, 1))
    keyless = StoredEntry(uuid.uuid4(), 3, None, lines(CASH, EQUITY, 1))
    snapshot = dataclasses.replace(snapshot, entries=(*snapshot.entries, stray, keyless))
    assert codes(check(postings, snapshot, TRUST)).count("unsent_posting") == 2


def test_a_refused_posting_that_exists() -> None:
    postings, snapshot = clean()
    refused = StoredEntry(uuid.uuid4(), 2, "t-1-2", postings[2].lines)
    snapshot = dataclasses.replace(
        snapshot,
        entries=(*snapshot.entries, refused),
        idempotency={**snapshot.idempotency, "t-1-2": refused.entry_id},
    )
    assert "refused_present" in codes(check(postings, snapshot, TRUST))
    # An earlier attempt of unknown outcome may have committed after the refusal: counted.
    postings[2].attempts.insert(0, Attempt(Outcome.UNKNOWN, "timeout"))
    report = check(postings, snapshot, TRUST)
    assert "refused_present" not in codes(report)
    assert report.figures["refusals_superseded"] == 1


def test_an_unknown_posting_found_committed_once_is_counted_not_a_violation() -> None:
    postings, snapshot = clean()
    entry_id = uuid.uuid4()
    found = StoredEntry(entry_id, 2, "t-2-1", postings[3].lines)
    snapshot = dataclasses.replace(
        snapshot,
        entries=(*snapshot.entries, found),
        idempotency={**snapshot.idempotency, "t-2-1": entry_id},
        accounts=(
            snapshot.accounts[0],
            StoredAccount(CASH, "A00000-USD", "USD", 205, 0),
            StoredAccount(
                WALLET, "A00001-USD", "USD", 500, 205, credits_must_not_exceed_debits=True
            ),
        ),
        checkpoints=checkpoints(3),
    )
    report = check(postings, snapshot, TRUST)
    assert report.violations == []
    assert report.figures["unknown_committed"] == 1


def test_a_posting_stored_with_other_lines_or_key_record() -> None:
    postings, snapshot = clean()
    other = dataclasses.replace(snapshot.entries[0], lines=lines(WALLET, EQUITY, 501))
    snapshot = dataclasses.replace(
        snapshot, entries=(other, snapshot.entries[1]), idempotency={"t-1-1": uuid.uuid4()}
    )
    found = codes(check(postings, snapshot, TRUST))
    assert "lines_differ" in found
    assert found.count("idempotency_record") == 2


def test_a_currency_whose_debits_and_credits_differ() -> None:
    postings, snapshot = clean()
    lopsided = ((WALLET, "debit", 500, "USD"), (EQUITY, "credit", 499, "USD"))
    postings[0] = acked("t-0-1", lopsided, snapshot.entries[0].entry_id)
    first = dataclasses.replace(snapshot.entries[0], lines=lopsided)
    equity = StoredAccount(EQUITY, "EQUITY-USD", "USD", 0, 499)
    snapshot = dataclasses.replace(
        snapshot, entries=(first, snapshot.entries[1]), accounts=(equity, *snapshot.accounts[1:])
    )
    report = check(postings, snapshot, TRUST)
    assert codes(report) == ["unbalanced_currency"]
    assert report.violations[0].detail == "USD: debits minus credits is 1"


def test_a_balance_that_drifted_from_the_journal() -> None:
    postings, snapshot = clean()
    drifted = StoredAccount(CASH, "A00000-USD", "USD", 201, 0)
    snapshot = dataclasses.replace(
        snapshot, accounts=(snapshot.accounts[0], drifted, snapshot.accounts[2])
    )
    report = check(postings, snapshot, TRUST)
    assert codes(report) == ["balance_drift"]
    assert "A00000-USD" in report.violations[0].detail


def test_a_no_overdraft_account_below_zero() -> None:
    postings, snapshot = clean()
    overdrawn = lines(CASH, WALLET, 400)
    postings[1] = acked("t-1-1", overdrawn, snapshot.entries[1].entry_id)
    snapshot = dataclasses.replace(
        snapshot,
        entries=(snapshot.entries[0], dataclasses.replace(snapshot.entries[1], lines=overdrawn)),
        accounts=(
            snapshot.accounts[0],
            StoredAccount(CASH, "A00000-USD", "USD", 400, 0),
            StoredAccount(
                WALLET, "A00001-USD", "USD", 500, 400, credits_must_not_exceed_debits=True
            ),
        ),
    )
    assert codes(check(postings, snapshot, TRUST)) == []
    postings[1] = acked("t-1-1", lines(CASH, WALLET, 600), snapshot.entries[1].entry_id)
    snapshot = dataclasses.replace(
        snapshot,
        entries=(
            snapshot.entries[0],
            dataclasses.replace(snapshot.entries[1], lines=lines(CASH, WALLET, 600)),
        ),
        accounts=(
            snapshot.accounts[0],
            StoredAccount(CASH, "A00000-USD", "USD", 600, 0),
            StoredAccount(
                WALLET, "A00001-USD", "USD", 500, 600, credits_must_not_exceed_debits=True
            ),
        ),
    )
    assert codes(check(postings, snapshot, TRUST)) == ["overdraft"]


def test_a_broken_hash_chain_reported_by_the_integrity_checks() -> None:
    postings, snapshot = clean()
    problem = "chain breaks at entry 1: hash does not match"
    snapshot = dataclasses.replace(snapshot, integrity=(("hash_chain", problem),))
    report = check(postings, snapshot, TRUST)
    assert [v.to_json() for v in report.violations] == [{"code": "hash_chain", "detail": problem}]


def test_checkpoints_with_a_foreign_signature_or_behind_the_journal() -> None:
    postings, snapshot = clean()
    foreign = trust_for(MemorySigner(seed=6))
    assert codes(check(postings, snapshot, foreign)) == ["checkpoint", "checkpoint"]
    behind = dataclasses.replace(snapshot, checkpoints=checkpoints(1, count=1))
    assert codes(check(postings, behind, TRUST)) == ["checkpoint_behind"]
    pending = dataclasses.replace(snapshot, unsigned_checkpoints=1)
    assert codes(check(postings, pending, TRUST)) == ["checkpoint_behind"]


def test_checkpoints_that_do_not_link() -> None:
    postings, snapshot = clean()
    first, second = snapshot.checkpoints
    unlinked_body = dataclasses.replace(second.body, prev_checkpoint=bytes(32))
    unlinked = sign_checkpoint(unlinked_body, [(SIGNER_ID, SIGNER)])
    snapshot = dataclasses.replace(snapshot, checkpoints=(first, unlinked))
    report = check(postings, snapshot, TRUST)
    assert codes(report) == ["checkpoint"]
    assert "prev_checkpoint" in report.violations[0].detail


def test_a_fault_the_system_did_not_recover_from() -> None:
    postings, snapshot = clean()
    faults = [FaultEvent("postgres_restart", 3.0, 60.0, error="pg_ctl start failed")]
    assert codes(check(postings, snapshot, TRUST, faults)) == ["fault_recovery"]


def test_many_violations_of_one_kind_are_listed_up_to_a_limit() -> None:
    postings, snapshot = clean()
    strays = tuple(
        StoredEntry(uuid.uuid4(), 2 + n, f"x-{n}", lines(CASH, EQUITY, 1)) for n in range(15)
    )
    snapshot = dataclasses.replace(snapshot, entries=(*snapshot.entries, *strays))
    listed = [v for v in check(postings, snapshot, TRUST).listed() if v.code == "unsent_posting"]
    assert len(listed) == DETAILS_PER_CODE_MAX + 1
    assert listed[-1].detail == f"and {15 - DETAILS_PER_CODE_MAX} more"


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (422, {}, {"code": "overdraft"}, (Outcome.REFUSED, "overdraft")),
        (409, {}, {"code": "idempotency_key_reused"}, (Outcome.REFUSED, "idempotency_key_reused")),
        (503, {}, {"code": "database_unavailable"}, (Outcome.UNKNOWN, "database_unavailable")),
        (429, {}, {"code": "rate_limited"}, (Outcome.UNKNOWN, "rate_limited")),
        (502, {}, None, (Outcome.UNKNOWN, "http_502")),
        (400, {}, None, (Outcome.UNKNOWN, "http_400")),
        (201, {}, None, (Outcome.UNKNOWN, "http_201_unreadable")),
        (201, {}, {"id": "not-a-uuid", "lines": []}, (Outcome.UNKNOWN, "http_201_unreadable")),
        (200, {}, {"lines": []}, (Outcome.UNKNOWN, "http_200_unreadable")),
    ],
)
def test_answers_fall_into_outcome_classes(
    status: int, headers: dict[str, str], body: object, expected: tuple[Outcome, str]
) -> None:
    attempt = classify(status, headers, body)
    assert (attempt.outcome, attempt.reason) == expected


def test_an_acknowledgement_keeps_the_entry_id_lines_and_replay_flag() -> None:
    entry_id = uuid.uuid4()
    body = {
        "id": str(entry_id),
        "lines": [
            {"account_id": CASH, "side": "debit", "amount": 7, "currency": "USD"},
            {"account_id": WALLET, "side": "credit", "amount": 7, "currency": "USD"},
        ],
    }
    attempt = classify(200, {"idempotent-replayed": "true"}, body)
    assert attempt.outcome is Outcome.ACKNOWLEDGED
    assert (attempt.entry_id, attempt.lines, attempt.replayed) == (
        entry_id,
        lines(CASH, WALLET, 7),
        True,
    )
