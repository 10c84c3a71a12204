"""Range proof packages: entries `[start, end]` of one ledger, proven complete, unaltered and in
order against a signed checkpoint (docs/proofs.md section 5). Pure: bytes in, bytes or a
verdict out.

    statement signing bytes = "finance/range/v1\\n" || JCS(statement)
    package file            = JCS({type, statement, statement_signatures, entries,
                                   left_frontier, consistency, checkpoint})

The verifier runs the checks of section 8 in order and stops at the first failure, naming it
(`VerificationFailed`): parse, schema, checkpoint, statement, expect/range, chain, merkle, state,
freshness. It is the hot path of an audit (goal: 20,000 entries per second), so each entry is
canonicalized exactly once: those bytes are both checked against the input and hashed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

from finance.limits import PROOF_PACKAGE_BYTES_MAX, RANGE_ENTRIES_MAX
from finance.proofs.chain import chain_hash_of_canonical, genesis_hash, rfc3339_utc
from finance.proofs.checkpoint import CheckpointBody, SignedCheckpoint, verify_checkpoint
from finance.proofs.entry_schema import check_entry_body
from finance.proofs.errors import InvalidProof
from finance.proofs.fields import exact_object, hash32, hash_list, integer, string, timestamp
from finance.proofs.merkle import PROOF_HASHES_MAX, Frontier, leaf_hash, verify_consistency
from finance.proofs.signatures import (
    Signature,
    TrustStore,
    sign_message,
    signatures_from_json,
    verify_message,
)
from finance.proofs.signing import Signer
from finance.proofs.state import AuditorState
from finance.proofs.strict_json import (
    b64encode,
    canonical_dumps,
    canonical_object,
    loads_strict_items,
)
from finance.proofs.verification import VerificationFailed, check_freshness, step

RANGE_TYPE: Final = "finance/range/v1"
RANGE_PREFIX: Final = b"finance/range/v1\n"
PACKAGE_TYPE: Final = "finance/range-proof/v1"

_PACKAGE_KEYS: Final = frozenset(
    {
        "type",
        "statement",
        "statement_signatures",
        "entries",
        "left_frontier",
        "consistency",
        "checkpoint",
    }
)
_STATEMENT_KEYS: Final = frozenset(
    {
        "type",
        "ledger_id",
        "start_id",
        "end_id",
        "count",
        "start_prev_hash",
        "end_hash",
        "checkpoint",
        "generated_at",
        "package_id",
        "genesis",
    }
)
_CHECKPOINT_REF_KEYS: Final = frozenset({"seq", "tree_size", "root_hash"})
_GENESIS_KEYS: Final = frozenset({"ledger_id", "created_at"})
# popcount(start) for any start below 2^64.
_FRONTIER_HASHES_MAX: Final = 64


@dataclass(frozen=True)
class CheckpointRef:
    """The checkpoint a statement claims: must equal the embedded signed checkpoint's."""

    seq: int
    tree_size: int
    root_hash: bytes

    @classmethod
    def of(cls, body: CheckpointBody) -> CheckpointRef:
        return cls(body.seq, body.tree_size, body.root_hash)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "tree_size": self.tree_size,
            "root_hash": b64encode(self.root_hash),
        }

    @classmethod
    def from_json(cls, obj: object) -> CheckpointRef:
        fields = exact_object(obj, _CHECKPOINT_REF_KEYS, "statement.checkpoint")
        return cls(
            seq=integer(fields["seq"], "statement.checkpoint.seq"),
            tree_size=integer(fields["tree_size"], "statement.checkpoint.tree_size"),
            root_hash=hash32(fields["root_hash"], "statement.checkpoint.root_hash"),
        )


@dataclass(frozen=True)
class Genesis:
    """What the genesis hash is made of (docs/proofs.md 3.3). A range starting at entry 0
    carries it, because its start_prev_hash is the genesis hash and a verifier cannot know the
    ledger's creation time otherwise."""

    ledger_id: str
    created_at: datetime

    def prev_hash(self) -> bytes:
        return genesis_hash(self.ledger_id, self.created_at)

    def to_json(self) -> dict[str, Any]:
        return {"ledger_id": self.ledger_id, "created_at": rfc3339_utc(self.created_at)}

    @classmethod
    def from_json(cls, obj: object) -> Genesis:
        fields = exact_object(obj, _GENESIS_KEYS, "statement.genesis")
        return cls(
            ledger_id=string(fields["ledger_id"], "statement.genesis.ledger_id"),
            created_at=timestamp(fields["created_at"], "statement.genesis.created_at"),
        )


@dataclass(frozen=True)
class RangeStatement:
    """The signed claim of one export: these entries, these chain ends, this checkpoint."""

    ledger_id: str
    start_id: int
    end_id: int
    count: int
    start_prev_hash: bytes
    end_hash: bytes
    checkpoint: CheckpointRef
    generated_at: datetime
    package_id: UUID
    genesis: Genesis | None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": RANGE_TYPE,
            "ledger_id": self.ledger_id,
            "start_id": self.start_id,
            "end_id": self.end_id,
            "count": self.count,
            "start_prev_hash": b64encode(self.start_prev_hash),
            "end_hash": b64encode(self.end_hash),
            "checkpoint": self.checkpoint.to_json(),
            "generated_at": rfc3339_utc(self.generated_at),
            "package_id": str(self.package_id),
            "genesis": None if self.genesis is None else self.genesis.to_json(),
        }

    @classmethod
    def from_json(cls, obj: object) -> RangeStatement:
        fields = exact_object(obj, _STATEMENT_KEYS, "statement")
        if fields["type"] != RANGE_TYPE:
            raise InvalidProof(f"statement type must be {RANGE_TYPE!r}")
        start_id = integer(fields["start_id"], "statement.start_id")
        genesis = fields["genesis"]
        if (start_id == 0) != (genesis is not None):
            raise InvalidProof("statement.genesis must be an object when start_id is 0, else null")
        return cls(
            ledger_id=string(fields["ledger_id"], "statement.ledger_id"),
            start_id=start_id,
            end_id=integer(fields["end_id"], "statement.end_id"),
            count=integer(fields["count"], "statement.count"),
            start_prev_hash=hash32(fields["start_prev_hash"], "statement.start_prev_hash"),
            end_hash=hash32(fields["end_hash"], "statement.end_hash"),
            checkpoint=CheckpointRef.from_json(fields["checkpoint"]),
            generated_at=timestamp(fields["generated_at"], "statement.generated_at"),
            package_id=_uuid(fields["package_id"], "statement.package_id"),
            genesis=None if genesis is None else Genesis.from_json(genesis),
        )


def statement_signing_bytes(statement: RangeStatement) -> bytes:
    return RANGE_PREFIX + canonical_dumps(statement.to_json())


@dataclass(frozen=True)
class RangeVerified:
    """A package that passed every check. `entries` are the entry bodies' JCS bytes, in order
    (what a bundle's entries file must hold); `state` is the auditor state to save, if one was
    given."""

    statement: RangeStatement
    checkpoint: SignedCheckpoint
    entries: tuple[bytes, ...]
    state: AuditorState | None

    def summary(self) -> str:
        s, body = self.statement, self.checkpoint.body
        return (
            f"valid: ledger {s.ledger_id} entries {s.start_id}..{s.end_id} ({s.count}) "
            f"against checkpoint seq {body.seq} tree size {body.tree_size} of {body.origin}"
        )


@dataclass(frozen=True)
class _Package:
    statement: RangeStatement
    statement_signatures: tuple[Signature, ...]
    entries: list[dict[str, Any]]
    entries_jcs: list[bytes]
    left_frontier: list[bytes]
    consistency: list[bytes]
    checkpoint: SignedCheckpoint


# --- Verifying ---------------------------------------------------------------------------------


def verify_range_package(
    data: bytes,
    trust: TrustStore,
    *,
    expect_start: int | None = None,
    expect_end: int | None = None,
    state: AuditorState | None = None,
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> RangeVerified:
    """Run every check of docs/proofs.md section 8 on a range package; VerificationFailed names
    the first that fails. `now` is needed with `max_age` (the core reads no clock)."""
    if max_age is not None and now is None:
        raise ValueError("max_age needs now")
    package = _parse(data)
    statement, checkpoint = package.statement, package.checkpoint
    with step("checkpoint"):
        verify_checkpoint(checkpoint, trust)
    _check_statement(package, trust)
    _check_expectations(statement, expect_start, expect_end)
    _check_bounds(statement, len(package.entries), checkpoint.body)
    leaves = _recompute_chain(statement, package.entries, package.entries_jcs)
    _tie_to_checkpoint(
        statement.start_id,
        statement.end_hash,
        package.left_frontier,
        leaves,
        package.consistency,
        checkpoint.body,
    )
    new_state = None
    if state is not None:
        with step("state"):
            new_state = state.advance(checkpoint)
    if max_age is not None and now is not None:
        check_freshness(checkpoint.body, now, max_age)
    return RangeVerified(statement, checkpoint, tuple(package.entries_jcs), new_state)


def _parse(data: bytes) -> _Package:
    """Step 1: strict canonical JSON, then the schema of every member."""
    if not isinstance(data, bytes):
        raise TypeError("a range package is bytes")
    if len(data) > PROOF_PACKAGE_BYTES_MAX:
        raise VerificationFailed("parse", f"package is larger than {PROOF_PACKAGE_BYTES_MAX} bytes")
    with step("parse"):
        parsed, entries_jcs = loads_strict_items(data, "entries")
    with step("schema"):
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        if kind != PACKAGE_TYPE:
            shown = repr(kind) if isinstance(kind, str) and len(kind) <= 64 else "missing"
            raise InvalidProof(f"type is {shown}, expected {PACKAGE_TYPE!r}")
        fields = exact_object(parsed, _PACKAGE_KEYS, "package")
        entries = fields["entries"]
        if not isinstance(entries, list) or not 0 < len(entries) <= RANGE_ENTRIES_MAX:
            raise InvalidProof(f"entries must be a list of 1..{RANGE_ENTRIES_MAX} entry bodies")
        for index, entry in enumerate(entries):
            check_entry_body(entry, f"entries[{index}]")
        return _Package(
            statement=RangeStatement.from_json(fields["statement"]),
            statement_signatures=signatures_from_json(fields["statement_signatures"]),
            entries=entries,
            entries_jcs=entries_jcs,
            left_frontier=hash_list(fields["left_frontier"], "left_frontier", _FRONTIER_HASHES_MAX),
            consistency=hash_list(fields["consistency"], "consistency", PROOF_HASHES_MAX),
            checkpoint=SignedCheckpoint.from_json(fields["checkpoint"]),
        )


def _check_statement(package: _Package, trust: TrustStore) -> None:
    """Step 3: the statement is signed by a trusted key and speaks of the embedded checkpoint,
    which is a checkpoint of this ledger."""
    statement, body = package.statement, package.checkpoint.body
    with step("statement"):
        verify_message(
            statement_signing_bytes(statement),
            package.statement_signatures,
            trust,
            statement.generated_at,
            "statement",
        )
    if statement.checkpoint != CheckpointRef.of(body):
        raise VerificationFailed(
            "statement", "statement.checkpoint does not match the embedded checkpoint"
        )
    if not body.origin.endswith("/" + statement.ledger_id):
        raise VerificationFailed(
            "statement",
            f"checkpoint origin {body.origin!r} is not the log of ledger {statement.ledger_id!r}",
        )
    if statement.generated_at < body.issued_at:
        raise VerificationFailed(
            "statement", "generated_at is earlier than the checkpoint the statement cites"
        )


def _check_expectations(
    statement: RangeStatement, expect_start: int | None, expect_end: int | None
) -> None:
    """Step 4a: the range the auditor asked for. Without --expect-end a package cut short is a
    valid proof of a shorter range, so this is the only check that catches a truncated tail."""
    covered = f"the package covers entries {statement.start_id}..{statement.end_id}"
    if expect_start is not None and statement.start_id != expect_start:
        raise VerificationFailed("expect", f"{covered}, expected start {expect_start}")
    if expect_end is not None and statement.end_id != expect_end:
        raise VerificationFailed("expect", f"{covered}, expected end {expect_end}")


def _check_bounds(statement: RangeStatement, count: int, body: CheckpointBody) -> None:
    """Step 4b: 0 <= start <= end < tree_size and len(entries) == end - start + 1 == count."""
    start, end = statement.start_id, statement.end_id
    if not start <= end < body.tree_size:
        raise VerificationFailed(
            "range", f"entries {start}..{end} are not inside a tree of size {body.tree_size}"
        )
    if not count == end - start + 1 == statement.count:
        raise VerificationFailed(
            "range",
            f"{count} entries for {start}..{end} ({end - start + 1}); the statement says "
            f"{statement.count}",
        )


def _recompute_chain(
    statement: RangeStatement, entries: list[dict[str, Any]], entries_jcs: list[bytes]
) -> list[bytes]:
    """Step 5: walk the chain from start_prev_hash and return the entries' Merkle leaves."""
    if statement.genesis is not None:
        if statement.genesis.ledger_id != statement.ledger_id:
            raise VerificationFailed("chain", "statement.genesis is for another ledger")
        if statement.genesis.prev_hash() != statement.start_prev_hash:
            raise VerificationFailed("chain", "start_prev_hash is not the ledger's genesis hash")
    leaves, end_hash = chain_leaves(
        statement.ledger_id, statement.start_id, statement.start_prev_hash, entries, entries_jcs
    )
    if end_hash != statement.end_hash:
        raise VerificationFailed(
            "chain",
            f"entries {statement.start_id}..{statement.end_id} do not hash to end_hash: an entry "
            "was altered, removed, added or moved",
        )
    return leaves


def chain_leaves(
    ledger_id: str,
    start: int,
    prev_hash: bytes,
    entries: Sequence[dict[str, Any]],
    entries_jcs: Sequence[bytes],
) -> tuple[list[bytes], bytes]:
    """The Merkle leaves of consecutive, schema-checked entries and the last chain hash.

    Checks that entry i is number start + i of `ledger_id` and that posting times never go
    backwards (the ledger refuses such a posting, so a package that has one was forged)."""
    leaves: list[bytes] = []
    posted_at = ""
    for offset, (entry, jcs) in enumerate(zip(entries, entries_jcs, strict=True)):
        if entry["entry_id"] != start + offset:
            raise VerificationFailed(
                "chain",
                f"entries[{offset}] has entry_id {entry['entry_id']}, expected {start + offset}",
            )
        if entry["ledger_id"] != ledger_id:
            raise VerificationFailed(
                "chain", f"entry {start + offset} belongs to ledger {entry['ledger_id']!r}"
            )
        if entry["posted_at"] < posted_at:
            raise VerificationFailed(
                "chain", f"entry {start + offset} is posted before the entry preceding it"
            )
        posted_at = entry["posted_at"]
        prev_hash = chain_hash_of_canonical(prev_hash, jcs)
        leaves.append(leaf_hash(prev_hash))
    return leaves, prev_hash


def _tie_to_checkpoint(
    start: int,
    end_hash: bytes,
    left_frontier: list[bytes],
    leaves: list[bytes],
    consistency: list[bytes],
    body: CheckpointBody,
) -> None:
    """Step 6: the compact range [0, start) plus the entries' leaves gives the root of
    [0, end + 1), which must be the checkpoint's root or provably a prefix of it."""
    if len(left_frontier) != start.bit_count():
        raise VerificationFailed(
            "merkle",
            f"left_frontier has {len(left_frontier)} hashes; a range starting at {start} needs "
            f"{start.bit_count()}",
        )
    frontier = Frontier(start, left_frontier)
    for leaf in leaves:
        frontier.append(leaf)
    root, size = frontier.root(), frontier.size
    if size == body.tree_size:
        if consistency:
            raise VerificationFailed(
                "merkle", "consistency must be empty when the range ends at the checkpoint"
            )
        if root != body.root_hash:
            raise VerificationFailed(
                "merkle", "the entries and left_frontier do not lead to the checkpoint's root_hash"
            )
        if end_hash != body.chain_head:
            raise VerificationFailed("merkle", "end_hash is not the checkpoint's chain_head")
        return
    with step("merkle"):
        try:
            verify_consistency(size, body.tree_size, root, body.root_hash, consistency)
        except InvalidProof as exc:
            raise InvalidProof(
                f"consistency proof from tree size {size} to {body.tree_size} does not verify "
                f"({exc.reason})"
            ) from exc


# --- Building ----------------------------------------------------------------------------------


def build_range_package(
    *,
    ledger_id: str,
    entries: Sequence[dict[str, Any]],
    start_prev_hash: bytes,
    left_frontier: Sequence[bytes],
    consistency: Sequence[bytes],
    checkpoint: SignedCheckpoint,
    generated_at: datetime,
    package_id: UUID,
    signers: Sequence[tuple[str, Signer]],
    ledger_created_at: datetime | None = None,
) -> bytes:
    """The JCS bytes of a range package over `entries` (bodies as `chain.entry_body` makes them,
    consecutive, in order), signing its statement with `signers`.

    Deterministic for deterministic signers (Ed25519): the caller passes `generated_at` and
    `package_id` (e.g. the checkpoint's issued_at and a UUIDv5 of ledger, range and seq).
    `ledger_created_at` is needed when the range starts at entry 0 (the genesis hash is made of
    it) and ignored otherwise. The package is checked as a verifier would, short of signatures,
    so a wrong frontier, proof or entry is a ValueError here and never reaches an auditor."""
    package, _ = build_range_package_with_entries(
        ledger_id=ledger_id,
        entries=entries,
        start_prev_hash=start_prev_hash,
        left_frontier=left_frontier,
        consistency=consistency,
        checkpoint=checkpoint,
        generated_at=generated_at,
        package_id=package_id,
        signers=signers,
        ledger_created_at=ledger_created_at,
    )
    return package


def build_range_package_with_entries(
    *,
    ledger_id: str,
    entries: Sequence[dict[str, Any]],
    start_prev_hash: bytes,
    left_frontier: Sequence[bytes],
    consistency: Sequence[bytes],
    checkpoint: SignedCheckpoint,
    generated_at: datetime,
    package_id: UUID,
    signers: Sequence[tuple[str, Signer]],
    ledger_created_at: datetime | None = None,
) -> tuple[bytes, list[bytes]]:
    """`build_range_package`, also returning each entry's JCS bytes (an audit bundle's entries
    file holds them), so an exporter canonicalizes every entry once."""
    if not entries or len(entries) > RANGE_ENTRIES_MAX:
        raise ValueError(f"a range package holds 1..{RANGE_ENTRIES_MAX} entries")
    try:
        entries_jcs = [
            canonical_dumps(check_entry_body(entry, f"entries[{index}]"))
            for index, entry in enumerate(entries)
        ]
        start = entries[0]["entry_id"]
        leaves, end_hash = chain_leaves(ledger_id, start, start_prev_hash, entries, entries_jcs)
        statement = RangeStatement(
            ledger_id=ledger_id,
            start_id=start,
            end_id=start + len(entries) - 1,
            count=len(entries),
            start_prev_hash=start_prev_hash,
            end_hash=end_hash,
            checkpoint=CheckpointRef.of(checkpoint.body),
            generated_at=generated_at,
            package_id=package_id,
            genesis=_genesis_for(ledger_id, start, start_prev_hash, ledger_created_at),
        )
        _check_buildable(statement, leaves, left_frontier, consistency, checkpoint.body)
    except InvalidProof as exc:
        raise ValueError(f"cannot build a valid range package: {exc.reason}") from exc
    signatures = sign_message(statement_signing_bytes(statement), signers)
    package = canonical_object(
        [
            ("type", canonical_dumps(PACKAGE_TYPE)),
            ("statement", canonical_dumps(statement.to_json())),
            ("statement_signatures", canonical_dumps([s.to_json() for s in signatures])),
            ("entries", b"[" + b",".join(entries_jcs) + b"]"),
            ("left_frontier", canonical_dumps([b64encode(h) for h in left_frontier])),
            ("consistency", canonical_dumps([b64encode(h) for h in consistency])),
            ("checkpoint", checkpoint.to_bytes()),
        ]
    )
    return package, entries_jcs


def _genesis_for(
    ledger_id: str, start: int, start_prev_hash: bytes, created_at: datetime | None
) -> Genesis | None:
    if start != 0:
        return None
    if created_at is None:
        raise ValueError("a range from entry 0 needs ledger_created_at for its genesis")
    genesis = Genesis(ledger_id, created_at)
    if genesis.prev_hash() != start_prev_hash:
        raise InvalidProof("start_prev_hash is not the genesis hash of ledger_created_at")
    return genesis


def _check_buildable(
    statement: RangeStatement,
    leaves: list[bytes],
    left_frontier: Sequence[bytes],
    consistency: Sequence[bytes],
    body: CheckpointBody,
) -> None:
    """Steps 3 to 6 of the verifier, short of the signatures (the builder holds no trust
    store; `sign_message` checks each signature it makes)."""
    if not body.origin.endswith("/" + statement.ledger_id):
        raise InvalidProof(f"checkpoint origin {body.origin!r} is not ledger {statement.ledger_id}")
    if statement.generated_at < body.issued_at:
        raise InvalidProof("generated_at is earlier than the checkpoint")
    _check_bounds(statement, len(leaves), body)
    _tie_to_checkpoint(
        statement.start_id,
        statement.end_hash,
        list(left_frontier),
        leaves,
        list(consistency),
        body,
    )


def _uuid(value: object, name: str) -> UUID:
    if isinstance(value, str):
        try:
            parsed = UUID(value)
        except ValueError:
            pass
        else:
            if str(parsed) == value:
                return parsed
    raise InvalidProof(f"{name} must be a lower-case hyphenated UUID")
