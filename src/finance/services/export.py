"""Audit export as a use case (seed runbook `finance:export <from> <to>`; docs/proofs.md 9.6).

One export proves a range of a tenant's entries against a signed checkpoint and writes the
audit bundle to the write-once store:

1. the range: sequence numbers as given, or the entries posted on the given UTC days (posting
   times never go backwards along the chain, so days map to one contiguous range);
2. the anchor: the oldest signed checkpoint covering the range's last entry, so that exporting
   the same range again picks the same checkpoint and gives the same bytes. If none is signed
   yet the ledger is sealed and signed now; with the signer down the export is refused (it
   never ships an unsigned proof). `since_checkpoint` names the checkpoint the auditor already
   holds: the bundle adds it and the consistency proof from it, and if it is newer than the
   oldest covering one it becomes the anchor;
3. the entries are read in batches, the range package built and checked as a verifier would,
   the manifest signed, the bundle stored (never replacing another), and the export recorded in
   `ledger_proofs`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Protocol

from finance import __version__, limits
from finance.domain.errors import LedgerRejection, RejectCode
from finance.proofs.audit_bundle import AuditExport, build_audit_bundle
from finance.proofs.bundle import unverified_files
from finance.proofs.errors import InvalidProof
from finance.proofs.range import build_range_package_with_entries
from finance.services.bundle_store import BundleConflict, BundleStore, StoredBundle
from finance.services.ports import Clock, StoredCheckpoint
from finance.services.proofs import Proofs

TOOL_VERSION: Final = f"finance {__version__}"
# The UUIDv5 namespace of export package ids (a UUIDv5 of the URL below): the same range,
# checkpoint and origin always give the same package id.
PACKAGE_ID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://finance.local/exports")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SequenceRange:
    """Entries `first`..`last`, inclusive."""

    first: int
    last: int


@dataclass(frozen=True)
class DateRange:
    """Entries posted from the start of `first` to the end of `last` (UTC days, inclusive)."""

    first: date
    last: date


@dataclass(frozen=True)
class ExportRecord:
    """A row of `ledger_proofs`: one bundle, stored in one place."""

    id: uuid.UUID
    tenant_id: str
    start_id: int
    end_id: int
    checkpoint_seq: int
    since_seq: int | None
    bundle_name: str
    bundle_sha256: str  # hex
    bundle_size: int
    location: str
    exported_at: datetime


@dataclass(frozen=True)
class ExportResult:
    record: ExportRecord
    already_stored: bool  # the store held this export already (a re-run)

    @property
    def entries(self) -> int:
        return self.record.end_id - self.record.start_id + 1


class ExportLog(Protocol):
    """`ledger_proofs`: what was exported, its hash and where it went."""

    def record(self, export: ExportRecord) -> ExportRecord:
        """Insert `export`; if this bundle was recorded at this location before, return that
        row instead."""
        ...

    def list(self, tenant_id: str, limit: int) -> list[ExportRecord]:
        """The newest exports first."""
        ...


class Exporter:
    def __init__(
        self,
        proofs: Proofs,
        bundles: BundleStore,
        log: ExportLog,
        clock: Clock,
        *,
        batch_size: int = limits.ENTRY_RECORDS_BATCH,
    ) -> None:
        self.proofs = proofs
        self.bundles = bundles
        self.log = log
        self.clock = clock
        self.batch_size = batch_size

    def export(
        self,
        tenant_id: str,
        span: SequenceRange | DateRange,
        *,
        since_checkpoint: int | None = None,
        progress: Progress | None = None,
    ) -> ExportResult:
        if not self.proofs.signers:
            raise LedgerRejection(
                RejectCode.CHECKPOINT_NOT_SIGNED, "no signer is configured to sign the bundle"
            )
        first, last = self._resolve(tenant_id, span)
        since = None if since_checkpoint is None else self._signed(tenant_id, since_checkpoint)
        anchor = self._anchor(tenant_id, last, since)
        export = self._prove(tenant_id, first, last, since, anchor, progress)
        root, data = build_audit_bundle(export, self.proofs.signers, TOOL_VERSION)
        # The bundle's directory names its range and checkpoint; the stored name also says
        # which checkpoint it is proven consistent with, since that changes the contents.
        linked = since is not None and since.seq < anchor.seq
        name = f"{root}-since-{since.seq:06d}" if linked and since is not None else root
        stored = self._store(name, data, export)
        record = self.log.record(
            ExportRecord(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                start_id=first,
                end_id=last,
                checkpoint_seq=anchor.seq,
                since_seq=since.seq if linked and since is not None else None,
                bundle_name=name,
                bundle_sha256=stored.sha256,
                bundle_size=stored.size,
                location=stored.location,
                exported_at=self.clock.now(),
            )
        )
        return ExportResult(record, stored.already_stored)

    # The range and the checkpoints ----------------------------------------------------------

    def _resolve(self, tenant_id: str, span: SequenceRange | DateRange) -> tuple[int, int]:
        if isinstance(span, SequenceRange):
            first, last = span.first, span.last
            if not 0 <= first <= last:
                raise _invalid(f"the range {first}..{last} is empty or negative")
            if last - first + 1 > limits.RANGE_ENTRIES_MAX:
                raise _invalid(
                    f"an export holds at most {limits.RANGE_ENTRIES_MAX} entries; split "
                    f"{first}..{last} into several"
                )
            size = self.proofs.ledger_size(tenant_id)
            if last >= size:
                raise LedgerRejection(
                    RejectCode.ENTRY_NOT_FOUND,
                    f"entry {last} does not exist ({tenant_id} has {size} entries)",
                )
            return first, last
        if span.first > span.last:
            raise _invalid(f"the dates {span.first}..{span.last} are in the wrong order")
        begin = datetime.combine(span.first, time(), UTC)
        end = datetime.combine(span.last + timedelta(days=1), time(), UTC)
        first = self.proofs.first_sequence_posted_at_or_after(tenant_id, begin)
        stop = self.proofs.first_sequence_posted_at_or_after(tenant_id, end)
        if first >= stop:
            raise LedgerRejection(
                RejectCode.ENTRY_NOT_FOUND,
                f"no entry of {tenant_id} was posted from {span.first} to {span.last} (UTC)",
            )
        return self._resolve(tenant_id, SequenceRange(first, stop - 1))

    def _signed(self, tenant_id: str, seq: int) -> StoredCheckpoint:
        checkpoint = self.proofs.checkpoint(tenant_id, seq)
        if not checkpoint.is_signed:
            raise LedgerRejection(
                RejectCode.CHECKPOINT_NOT_SIGNED, f"checkpoint {seq} is not signed yet"
            )
        return checkpoint

    def _anchor(
        self, tenant_id: str, last: int, since: StoredCheckpoint | None
    ) -> StoredCheckpoint:
        anchor = self.proofs.first_signed_covering(tenant_id, last + 1)
        if anchor is None:
            sealed = self.proofs.checkpoint_now(tenant_id)
            if not sealed.is_signed:
                reason = self.proofs.status.state().reason or "the signer failed"
                raise LedgerRejection(
                    RejectCode.CHECKPOINT_NOT_SIGNED,
                    f"entry {last} is not covered by a signed checkpoint and checkpoint "
                    f"{sealed.seq} could not be signed now ({reason}); retry when the signer "
                    "is back",
                )
            anchor = self.proofs.first_signed_covering(tenant_id, last + 1) or sealed
        if since is not None and since.seq > anchor.seq:
            return since  # the auditor holds a newer checkpoint: prove the range against it
        return anchor

    # Proving ---------------------------------------------------------------------------------

    def _prove(
        self,
        tenant_id: str,
        first: int,
        last: int,
        since: StoredCheckpoint | None,
        anchor: StoredCheckpoint,
        progress: Progress | None,
    ) -> AuditExport:
        total = last - first + 1
        bodies: list[dict[str, Any]] = []
        start_prev_hash = b""
        for record in self.proofs.entries(tenant_id, first, last, batch_size=self.batch_size):
            if not bodies:
                start_prev_hash = record.prev_hash
            bodies.append(record.body)
            done = len(bodies)
            if progress is not None and (done % self.batch_size == 0 or done == total):
                progress(done, total)
        signed = anchor.envelope()
        package, entries_jcs = build_range_package_with_entries(
            ledger_id=tenant_id,
            entries=bodies,
            start_prev_hash=start_prev_hash,
            left_frontier=self.proofs.frontier(tenant_id, first).hashes,
            consistency=self.proofs.size_consistency(tenant_id, last + 1, anchor.seq),
            checkpoint=signed,
            # Both chosen from what is exported, never the clock: the same export gives the
            # same bytes (docs/proofs.md 5.1).
            generated_at=anchor.body.issued_at,
            package_id=uuid.uuid5(
                PACKAGE_ID_NAMESPACE, f"{anchor.body.origin}/{first}/{last}/{anchor.seq}"
            ),
            signers=self.proofs.signers,
            ledger_created_at=self.proofs.ledger_created_at(tenant_id) if first == 0 else None,
        )
        chain = [signed]
        proofs: list[Sequence[bytes]] = []
        if since is not None and since.seq < anchor.seq:
            chain.insert(0, since.envelope())
            proofs.append(self.proofs.consistency(tenant_id, since.seq, anchor.seq).proof)
        return AuditExport(tenant_id, first, last, entries_jcs, package, chain, proofs)

    # Storing ---------------------------------------------------------------------------------

    def _store(self, name: str, data: bytes, export: AuditExport) -> StoredBundle:
        try:
            return self.bundles.put(name, data)
        except BundleConflict:
            return self._same_export_stored(name, export)

    def _same_export_stored(self, name: str, export: AuditExport) -> StoredBundle:
        """A bundle of this name holds other bytes. With ECDSA keys every signature differs, so
        a re-run of an export differs in its signatures only: then the stored bundle (signed
        first) is the export. Anything else is a real conflict and is raised."""
        stored = self.bundles.get(name)
        if not _same_contents(stored, export):
            raise BundleConflict(
                f"{name} is already stored with different contents; it was left unchanged"
            )
        return self.bundles.put(name, stored)


def _same_contents(stored: bytes, export: AuditExport) -> bool:
    """True if the stored bundle holds the same files as `export`, apart from the signatures
    in the range package and the manifest (read without trusting any key: this only decides
    whether to report the stored bundle, which an auditor verifies anyway)."""
    try:
        files = unverified_files(stored)
    except InvalidProof:
        return False
    expected = export.files()
    unsigned = [path for path in expected if not path.startswith("proofs/")]
    return files.keys() == expected.keys() and all(files[p] == expected[p] for p in unsigned)


def _invalid(detail: str) -> LedgerRejection:
    return LedgerRejection(RejectCode.VALIDATION_FAILED, detail)
