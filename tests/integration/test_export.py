"""The audit export use case on a real ledger: the bundle it stores verifies offline as a whole,
is the same bytes when exported again, is proven against the checkpoint an auditor already
holds, and is recorded in `ledger_proofs`; it never ships an unsigned proof."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest

from finance.adapters.bundle_stores.memory import InMemoryBundleStore
from finance.adapters.postgres.db import Database
from finance.adapters.postgres.export_log import PostgresExportLog
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.proof_store import PostgresProofStore
from finance.bootstrap import SystemClock
from finance.domain.accounts import AccountType
from finance.domain.errors import LedgerRejection, RejectCode
from finance.proofs.audit_bundle import verify_bundle
from finance.proofs.bundle import CheckpointRef, build_bundle, read_bundle
from finance.proofs.signing import Signer
from finance.proofs.state import AuditorState
from finance.proofs.verification import VerificationFailed
from finance.services.bundle_store import BundleConflict
from finance.services.export import DateRange, Exporter, ExportResult, SequenceRange
from finance.services.proofs import Proofs
from tests.integration.helpers import new_tenant, open_account, post_many, raises_sqlstate
from tests.signers import SIGNER_ID, EcdsaSigner, FlakySigner, MemorySigner, trust_for


@dataclass
class Ledger:
    tenant: str
    debit: UUID
    credit: UUID


def exporter_for(
    database: Database, signer: Signer, bundles: InMemoryBundleStore | None = None
) -> Exporter:
    proofs = Proofs(
        PostgresProofStore(database),
        SystemClock(),
        signer_id=SIGNER_ID,
        signers=[(SIGNER_ID, signer)],
    )
    return Exporter(
        proofs, bundles or InMemoryBundleStore(), PostgresExportLog(database), SystemClock()
    )


def new_ledger(store: PostgresLedgerStore, entries: int) -> Ledger:
    tenant = new_tenant(store)
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    post_many(store, tenant, entries, cash, equity)
    return Ledger(tenant, cash, equity)


def stored_bytes(exporter: Exporter, result: ExportResult) -> bytes:
    return exporter.bundles.get(result.record.bundle_name)


def test_an_export_verifies_offline_and_is_recorded(
    store: PostgresLedgerStore, database: Database
) -> None:
    ledger = new_ledger(store, 12)
    signer = MemorySigner(seed=3)
    exporter = exporter_for(database, signer)

    result = exporter.export(ledger.tenant, SequenceRange(2, 9))

    data = stored_bytes(exporter, result)
    verified = verify_bundle(data, trust_for(signer), expect_start=2, expect_end=9)
    statement = verified.range.statement
    assert (statement.ledger_id, statement.start_id, statement.end_id) == (ledger.tenant, 2, 9)
    # Nothing was sealed before: the export sealed the whole ledger and proved the range
    # against that checkpoint, with a consistency proof from entry 10 on.
    assert verified.checkpoint.body.tree_size == 12
    assert verified.checkpoint.body.origin == f"{SIGNER_ID}/{ledger.tenant}"
    files = read_bundle(data, trust_for(signer)).files
    assert sorted(files) == [
        "checkpoints/000000.json",
        "entries/00000000002-00000000009.jsonl",
        "proofs/range-2-9.json",
    ]
    assert files["entries/00000000002-00000000009.jsonl"].count(b"\n") == 8
    [recorded] = PostgresExportLog(database).list(ledger.tenant, 10)
    assert recorded == result.record
    assert (recorded.start_id, recorded.end_id, recorded.checkpoint_seq) == (2, 9, 0)
    assert recorded.since_seq is None
    assert recorded.bundle_sha256 == verified.sha256
    assert recorded.bundle_size == len(data)
    assert recorded.location == f"memory:{recorded.bundle_name}.tar"
    assert not result.already_stored


def test_the_same_export_twice_is_the_same_bundle_and_one_record(
    store: PostgresLedgerStore, database: Database
) -> None:
    ledger = new_ledger(store, 6)
    exporter = exporter_for(database, MemorySigner(seed=4))
    first = exporter.export(ledger.tenant, SequenceRange(0, 3))
    post_many(store, ledger.tenant, 3, ledger.debit, ledger.credit)  # the ledger moves on
    exporter.proofs.checkpoint_now(ledger.tenant)

    again = exporter.export(ledger.tenant, SequenceRange(0, 3))

    assert again.already_stored
    assert again.record == first.record
    assert len(PostgresExportLog(database).list(ledger.tenant, 10)) == 1


def test_a_range_from_genesis_carries_the_genesis(
    store: PostgresLedgerStore, database: Database
) -> None:
    ledger = new_ledger(store, 4)
    signer = MemorySigner(seed=5)
    exporter = exporter_for(database, signer)
    result = exporter.export(ledger.tenant, SequenceRange(0, 3))
    verified = verify_bundle(stored_bytes(exporter, result), trust_for(signer))
    genesis = verified.range.statement.genesis
    assert genesis is not None
    assert genesis.ledger_id == ledger.tenant


def test_since_checkpoint_proves_consistency_and_advances_the_auditor(
    store: PostgresLedgerStore, database: Database
) -> None:
    ledger = new_ledger(store, 5)
    signer = MemorySigner(seed=6)
    exporter = exporter_for(database, signer)
    first = exporter.export(ledger.tenant, SequenceRange(0, 4))
    first_bytes = stored_bytes(exporter, first)
    auditor = verify_bundle(first_bytes, trust_for(signer), state=AuditorState()).state
    assert auditor is not None
    post_many(store, ledger.tenant, 4, ledger.debit, ledger.credit)
    later = exporter.export(ledger.tenant, SequenceRange(5, 8))
    assert later.record.checkpoint_seq == 1

    # Without the auditor's checkpoint in it, the bundle cannot show it extends their history.
    with pytest.raises(VerificationFailed) as refused:
        verify_bundle(stored_bytes(exporter, later), trust_for(signer), state=auditor)
    assert refused.value.check == "state"
    assert "consistency proof from the stored checkpoint is needed" in refused.value.detail

    linked = exporter.export(ledger.tenant, SequenceRange(5, 8), since_checkpoint=0)
    assert (linked.record.checkpoint_seq, linked.record.since_seq) == (1, 0)
    assert linked.record.bundle_name == f"{later.record.bundle_name}-since-000000"
    verified = verify_bundle(stored_bytes(exporter, linked), trust_for(signer), state=auditor)
    assert [c.body.seq for c in verified.chain] == [0, 1]
    assert verified.state is not None
    latest = verified.state.latest(f"{SIGNER_ID}/{ledger.tenant}")
    assert latest is not None
    assert latest.body.seq == 1
    assert "consistent with checkpoint seq 0" in verified.summary()


def test_a_newer_since_checkpoint_becomes_the_anchor(
    store: PostgresLedgerStore, database: Database
) -> None:
    ledger = new_ledger(store, 3)
    signer = MemorySigner(seed=7)
    exporter = exporter_for(database, signer)
    exporter.proofs.checkpoint_now(ledger.tenant)  # seq 0 covers entries 0..2
    post_many(store, ledger.tenant, 2, ledger.debit, ledger.credit)
    exporter.proofs.checkpoint_now(ledger.tenant)  # seq 1: the auditor's

    result = exporter.export(ledger.tenant, SequenceRange(0, 2), since_checkpoint=1)

    assert (result.record.checkpoint_seq, result.record.since_seq) == (1, None)
    verified = verify_bundle(stored_bytes(exporter, result), trust_for(signer))
    assert verified.checkpoint.body.tree_size == 5


def test_a_date_range_exports_what_was_posted_on_those_days(
    store: PostgresLedgerStore, database: Database
) -> None:
    ledger = new_ledger(store, 3)
    exporter = exporter_for(database, MemorySigner(seed=8))
    today = datetime.now(UTC).date()
    result = exporter.export(ledger.tenant, DateRange(today - timedelta(days=1), today))
    assert (result.record.start_id, result.record.end_id) == (0, 2)
    with pytest.raises(LedgerRejection) as none_posted:
        exporter.export(ledger.tenant, DateRange(date(2020, 1, 1), date(2020, 1, 31)))
    assert none_posted.value.code is RejectCode.ENTRY_NOT_FOUND
    with pytest.raises(LedgerRejection) as backwards:
        exporter.export(ledger.tenant, DateRange(today, today - timedelta(days=1)))
    assert backwards.value.code is RejectCode.VALIDATION_FAILED


@pytest.mark.parametrize(
    ("span", "code"),
    [
        (SequenceRange(0, 3), RejectCode.ENTRY_NOT_FOUND),  # past the last entry
        (SequenceRange(2, 1), RejectCode.VALIDATION_FAILED),
    ],
)
def test_ranges_that_do_not_exist_are_refused(
    store: PostgresLedgerStore, database: Database, span: SequenceRange, code: RejectCode
) -> None:
    ledger = new_ledger(store, 3)
    exporter = exporter_for(database, MemorySigner(seed=9))
    with pytest.raises(LedgerRejection) as refused:
        exporter.export(ledger.tenant, span)
    assert refused.value.code is code
    assert PostgresExportLog(database).list(ledger.tenant, 10) == []


def test_another_tenants_ledger_and_exports_are_invisible(
    store: PostgresLedgerStore, database: Database
) -> None:
    ours = new_ledger(store, 3)
    theirs = new_ledger(store, 1)
    exporter = exporter_for(database, MemorySigner(seed=10))
    exporter.export(ours.tenant, SequenceRange(0, 2))
    with pytest.raises(LedgerRejection) as refused:
        exporter.export(theirs.tenant, SequenceRange(0, 2))
    assert refused.value.code is RejectCode.ENTRY_NOT_FOUND
    assert PostgresExportLog(database).list(theirs.tenant, 10) == []


def test_with_the_signer_down_nothing_unsigned_is_exported(
    store: PostgresLedgerStore, database: Database, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ledger = new_ledger(store, 3)
    signer = FlakySigner(tmp_path_factory.mktemp("flaky") / "key.pem")
    exporter = exporter_for(database, signer)
    signer.go_down()
    try:
        with pytest.raises(LedgerRejection) as refused:
            exporter.export(ledger.tenant, SequenceRange(0, 2))
    finally:
        signer.come_back()
    assert refused.value.code is RejectCode.CHECKPOINT_NOT_SIGNED
    assert "retry when the signer is back" in refused.value.detail
    assert PostgresExportLog(database).list(ledger.tenant, 10) == []
    # Back up: the queued checkpoint is signed and the export goes through.
    result = exporter.export(ledger.tenant, SequenceRange(0, 2))
    assert result.record.checkpoint_seq == 0


def test_an_ecdsa_re_export_reports_the_bundle_signed_first(
    store: PostgresLedgerStore, database: Database
) -> None:
    ledger = new_ledger(store, 4)
    signer = EcdsaSigner()
    bundles = InMemoryBundleStore()
    first = exporter_for(database, signer, bundles).export(ledger.tenant, SequenceRange(1, 3))

    # ECDSA signatures differ each time, so the new bundle's bytes differ from the stored one;
    # it is the same export, and the stored bundle stands.
    again = exporter_for(database, signer, bundles).export(ledger.tenant, SequenceRange(1, 3))

    assert again.already_stored
    assert again.record == first.record
    verify_bundle(bundles.get(first.record.bundle_name), trust_for(signer))


def test_a_different_bundle_under_the_same_name_is_a_conflict(
    store: PostgresLedgerStore, database: Database
) -> None:
    ledger = new_ledger(store, 4)
    signer = MemorySigner(seed=11)
    exporter = exporter_for(database, signer)
    anchor = exporter.proofs.checkpoint_now(ledger.tenant)
    # Something else already sits under the name this export will have.
    name, other = build_bundle(
        ledger.tenant,
        1,
        3,
        CheckpointRef.of(anchor.body),
        {"notes/other.txt": b"not this export"},
        [(SIGNER_ID, signer)],
        "another tool",
    )
    exporter.bundles.put(name, other)

    with pytest.raises(BundleConflict):
        exporter.export(ledger.tenant, SequenceRange(1, 3))

    assert exporter.bundles.get(name) == other
    assert PostgresExportLog(database).list(ledger.tenant, 10) == []


def test_the_database_holds_export_rows_to_their_checkpoint(
    store: PostgresLedgerStore, database: Database
) -> None:
    ledger = new_ledger(store, 3)
    exporter = exporter_for(database, MemorySigner(seed=13))
    result = exporter.export(ledger.tenant, SequenceRange(0, 1))
    columns = (
        "tenant_id, id, start_id, end_id, checkpoint_seq, bundle_name, bundle_sha256,"
        " bundle_size, location, exported_at"
    )
    beyond = (ledger.tenant, uuid.uuid4(), 0, 3, 0, "b", b"\0" * 32, 1, "x", datetime.now(UTC))
    with database.admin() as conn, raises_sqlstate("FN011"):
        conn.execute(
            f"INSERT INTO ledger_proofs ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s)",
            beyond,
        )
    with database.admin() as conn, raises_sqlstate("FN004"):
        conn.execute(
            "UPDATE ledger_proofs SET location = 'elsewhere' WHERE tenant_id = %s AND id = %s",
            (ledger.tenant, result.record.id),
        )
    with database.admin() as conn, raises_sqlstate("FN004"):
        conn.execute(
            "DELETE FROM ledger_proofs WHERE tenant_id = %s AND id = %s",
            (ledger.tenant, result.record.id),
        )
