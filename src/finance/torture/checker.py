"""History + snapshot -> figures and violations (pure).

What each outcome class allows (docs/reliability.md):

* acknowledged: the posting exists exactly once, under the id the client was told, with the
  lines it sent;
* never sent: no entry may carry a key no client sent, nor lack a key;
* unknown at the end: at most once (it may or may not have committed);
* refused: not present, unless an earlier attempt of the same key had an unknown outcome.
  That attempt may still have been queued in the service when the refused retry was
  evaluated (a key is claimed only when its transaction starts), and it may then commit
  afterwards: the refusal is superseded, which is counted, not a violation. A refused key
  with no such earlier attempt must not exist.

Then the ledger-wide invariants: debits equal credits per currency, every stored balance
equals the replay of the journal, no account with a no-overdraft limit is over it, every
`finance check` check passes (hash chain, Merkle checkpoints...), every signed checkpoint's
signature verifies with the service's key, consecutive checkpoints link, and the last one
covers every entry.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from finance.proofs.checkpoint import verify_checkpoint, verify_checkpoint_chain
from finance.proofs.errors import InvalidProof
from finance.proofs.signatures import TrustStore
from finance.torture.history import FaultEvent, Outcome, Posting
from finance.torture.snapshot import Snapshot, StoredEntry

# Violations of one code listed in full; the rest are counted.
DETAILS_PER_CODE_MAX = 10


@dataclass(frozen=True)
class Violation:
    code: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail}


@dataclass
class Report:
    figures: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    def add(self, code: str, detail: str) -> None:
        self.violations.append(Violation(code, detail))

    def listed(self) -> list[Violation]:
        """The violations with at most DETAILS_PER_CODE_MAX per code, then one line per code
        saying how many more there were."""
        seen: Counter[str] = Counter(v.code for v in self.violations)
        shown: Counter[str] = Counter()
        out: list[Violation] = []
        for violation in self.violations:
            if shown[violation.code] < DETAILS_PER_CODE_MAX:
                out.append(violation)
                shown[violation.code] += 1
        out.extend(
            Violation(code, f"and {seen[code] - shown[code]} more")
            for code in seen
            if seen[code] > shown[code]
        )
        return out


def check(
    postings: Sequence[Posting],
    snapshot: Snapshot,
    trust: TrustStore,
    faults: Sequence[FaultEvent] = (),
) -> Report:
    report = Report()
    _count_history(report, postings, faults)
    report.figures["entries"] = len(snapshot.entries)
    by_key = _entries_by_key(report, snapshot.entries)
    _check_postings(report, postings, by_key, snapshot)
    _check_unsent(report, postings, snapshot.entries)
    _check_ledger(report, snapshot)
    _check_checkpoints(report, snapshot, trust)
    for fault in faults:
        if fault.error is not None:
            report.add("fault_recovery", f"{fault.kind} at {fault.at_s:.1f} s: {fault.error}")
    report.figures["violations"] = len(report.violations)
    return report


def _count_history(
    report: Report, postings: Sequence[Posting], faults: Sequence[FaultEvent]
) -> None:
    attempts = [a for p in postings for a in p.attempts]
    outcomes = Counter(p.outcome for p in postings)
    figures = report.figures
    figures["sent"] = sum(1 for p in postings if p.attempts)
    figures["attempts"] = len(attempts)
    figures["retries"] = len(attempts) - figures["sent"]
    figures["acknowledged"] = sum(1 for p in postings if p.acknowledgement is not None)
    figures["replayed"] = sum(1 for a in attempts if a.replayed)
    figures["refused"] = outcomes[Outcome.REFUSED]
    figures["refused_overdraft"] = sum(
        1 for p in postings if p.outcome is Outcome.REFUSED and p.attempts[-1].reason == "overdraft"
    )
    figures["unknown_at_end"] = outcomes[Outcome.UNKNOWN]
    figures["unknown_answers"] = sum(1 for a in attempts if a.outcome is Outcome.UNKNOWN)
    kinds = Counter(f.kind for f in faults)
    kinds["client_cut"] += sum(1 for a in attempts if a.reason == "cut")
    for kind in ("serve_kill", "postgres_restart", "client_cut"):
        figures[f"faults_{kind}"] = kinds[kind]
    figures["faults_injected"] = sum(kinds.values())


def _entries_by_key(report: Report, entries: Iterable[StoredEntry]) -> dict[str, list[StoredEntry]]:
    by_key: dict[str, list[StoredEntry]] = defaultdict(list)
    for entry in entries:
        if entry.key is not None:
            by_key[entry.key].append(entry)
    for key, found in by_key.items():
        if len(found) > 1:
            sequences = ", ".join(str(e.sequence) for e in found)
            report.add("duplicate", f"key {key} posted {len(found)} times (entries {sequences})")
    return by_key


def _check_postings(
    report: Report,
    postings: Sequence[Posting],
    by_key: dict[str, list[StoredEntry]],
    snapshot: Snapshot,
) -> None:
    superseded = unknown_committed = 0
    for posting in postings:
        found = by_key.get(posting.key, [])
        for entry in found:
            if entry.lines != posting.lines:
                report.add(
                    "lines_differ",
                    f"key {posting.key}: entry {entry.sequence} has other lines than sent",
                )
            if snapshot.idempotency.get(posting.key) != entry.entry_id:
                report.add(
                    "idempotency_record",
                    f"key {posting.key}: its record names {snapshot.idempotency.get(posting.key)},"
                    f" not entry {entry.entry_id}",
                )
        ack = posting.acknowledgement
        if ack is not None:
            _check_acknowledged(report, posting, found, ack.entry_id)
        elif posting.outcome is Outcome.REFUSED and found:
            if posting.had_unknown_attempt_before_last():
                superseded += 1
            else:
                report.add(
                    "refused_present",
                    f"key {posting.key} was refused ({posting.attempts[-1].reason}) with no"
                    " earlier attempt in flight, yet it was posted",
                )
        elif posting.outcome is Outcome.UNKNOWN and found:
            unknown_committed += 1
    report.figures["refusals_superseded"] = superseded
    report.figures["unknown_committed"] = unknown_committed


def _check_acknowledged(
    report: Report, posting: Posting, found: list[StoredEntry], told: UUID | None
) -> None:
    if not found:
        report.add(
            "acknowledged_missing",
            f"key {posting.key} was acknowledged as {told} but is not in the journal",
        )
        return
    if found[0].entry_id != told:
        report.add(
            "acknowledged_differs",
            f"key {posting.key} was acknowledged as {told}, stored as {found[0].entry_id}",
        )
    for attempt in posting.attempts:
        if attempt.outcome is Outcome.ACKNOWLEDGED and (
            attempt.entry_id != told or attempt.lines != posting.lines
        ):
            report.add(
                "acknowledged_differs",
                f"key {posting.key}: two acknowledgements disagree, or one names other lines"
                " than sent",
            )


def _check_unsent(
    report: Report, postings: Sequence[Posting], entries: Iterable[StoredEntry]
) -> None:
    sent = {p.key for p in postings if p.attempts}
    for entry in entries:
        if entry.key is None or entry.key not in sent:
            report.add(
                "unsent_posting",
                f"entry {entry.sequence} (key {entry.key}) was never sent by a client",
            )


def _check_ledger(report: Report, snapshot: Snapshot) -> None:
    net: Counter[str] = Counter()
    replay: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for entry in snapshot.entries:
        for account_id, side, amount, currency in entry.lines:
            debit = side == "debit"
            net[currency] += amount if debit else -amount
            replay[account_id][0 if debit else 1] += amount
    for currency, off_by in sorted(net.items()):
        if off_by:
            report.add("unbalanced_currency", f"{currency}: debits minus credits is {off_by}")
    report.figures["currencies"] = len(net)
    for account in snapshot.accounts:
        debits, credits = replay.get(account.account_id, [0, 0])
        if (account.debits_posted, account.credits_posted) != (debits, credits):
            report.add(
                "balance_drift",
                f"account {account.code}: stored {account.debits_posted}/{account.credits_posted}"
                f" (debits/credits), journal replays to {debits}/{credits}",
            )
        if (
            account.credits_must_not_exceed_debits
            and account.credits_posted > account.debits_posted
        ) or (
            account.debits_must_not_exceed_credits
            and account.debits_posted > account.credits_posted
        ):
            report.add(
                "overdraft",
                f"account {account.code} is over its no-overdraft limit:"
                f" {account.debits_posted}/{account.credits_posted} (debits/credits)",
            )
    for check_name, problem in snapshot.integrity:
        if problem is not None:
            report.add(check_name, problem)


def _check_checkpoints(report: Report, snapshot: Snapshot, trust: TrustStore) -> None:
    previous = None
    for signed in snapshot.checkpoints:
        try:
            verify_checkpoint(signed, trust)
            if previous is not None and previous.seq + 1 == signed.body.seq:
                verify_checkpoint_chain(previous, signed.body)
        except InvalidProof as exc:
            report.add("checkpoint", f"checkpoint {signed.body.seq}: {exc}")
        previous = signed.body
    size = snapshot.checkpoints[-1].body.tree_size if snapshot.checkpoints else 0
    if size != len(snapshot.entries) or snapshot.unsigned_checkpoints:
        report.add(
            "checkpoint_behind",
            f"the last signed checkpoint covers {size} of {len(snapshot.entries)} entries"
            f" ({snapshot.unsigned_checkpoints} unsigned)",
        )
    report.figures["checkpoints_verified"] = len(snapshot.checkpoints)
