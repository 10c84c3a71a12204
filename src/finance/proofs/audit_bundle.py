"""What an audit export puts in its bundle, and how a verifier checks it as a whole
(docs/proofs.md section 9.6). Pure: bytes in, bytes or a verdict out.

    bundle-<ledger>-<start>-<end>-<seq>/
      entries/<start:011d>-<end:011d>.jsonl      JCS(entry body) + "\\n", one per entry
      proofs/range-<start>-<end>.json            the range proof package (section 5)
      checkpoints/<seq:06d>.json                 the signed checkpoints, oldest first: the one
                                                 the auditor already holds (--since-checkpoint)
                                                 and the one the range is proven against
      consistency/<from:06d>-<to:06d>.json       the RFC 9162 proof between each two of them

`verify_bundle` runs the container checks (`read_bundle`), every check of the range package, and
then ties the files together: the manifest names the package's range and checkpoint, the
entries file holds exactly the package's entries, the checkpoints are signed, of one log, in
order and linked by verified consistency proofs ending at the package's checkpoint. With an
auditor state, the state advances along that chain, which is how a rewritten history re-signed
with the real key is caught.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, TypeVar

from finance.proofs.bundle import Bundle, CheckpointRef, build_bundle, read_bundle
from finance.proofs.checkpoint import (
    SignedCheckpoint,
    verify_checkpoint,
    verify_checkpoint_chain,
)
from finance.proofs.errors import InvalidProof
from finance.proofs.fields import exact_object, hash_list
from finance.proofs.merkle import PROOF_HASHES_MAX, verify_consistency
from finance.proofs.range import CheckpointRef as TreeRef
from finance.proofs.range import RangeVerified, verify_range_package
from finance.proofs.signatures import TrustStore
from finance.proofs.signing import Signer
from finance.proofs.state import AuditorState
from finance.proofs.strict_json import b64encode, canonical_dumps, loads_strict
from finance.proofs.verification import VerificationFailed, step

T = TypeVar("T")

CONSISTENCY_TYPE: Final = "finance/consistency/v1"
# A bundle proves its range against at most this many checkpoints (today: the auditor's and
# the anchor); more is refused before any proof is checked.
CHAIN_CHECKPOINTS_MAX: Final = 64

_CHECKPOINT_FILE_RE: Final = re.compile(r"checkpoints/([0-9]{6,16})\.json")
_CONSISTENCY_FILE_RE: Final = re.compile(r"consistency/([0-9]{6,16})-([0-9]{6,16})\.json")
_CONSISTENCY_KEYS: Final = frozenset({"type", "from", "to", "proof"})


def entries_path(start_id: int, end_id: int) -> str:
    return f"entries/{start_id:011d}-{end_id:011d}.jsonl"


def package_path(start_id: int, end_id: int) -> str:
    return f"proofs/range-{start_id}-{end_id}.json"


def checkpoint_path(seq: int) -> str:
    return f"checkpoints/{seq:06d}.json"


def consistency_path(from_seq: int, to_seq: int) -> str:
    return f"consistency/{from_seq:06d}-{to_seq:06d}.json"


def entries_file(entries_jcs: Sequence[bytes]) -> bytes:
    """JSON lines: each entry's canonical bytes, which is what its chain hash covers."""
    return b"".join(entry + b"\n" for entry in entries_jcs)


@dataclass(frozen=True)
class ConsistencyFile:
    """The RFC 9162 proof that checkpoint `old`'s tree is a prefix of checkpoint `new`'s."""

    old: TreeRef
    new: TreeRef
    proof: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        return canonical_dumps(
            {
                "type": CONSISTENCY_TYPE,
                "from": self.old.to_json(),
                "to": self.new.to_json(),
                "proof": [b64encode(node) for node in self.proof],
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ConsistencyFile:
        fields = exact_object(loads_strict(data), _CONSISTENCY_KEYS, "consistency file")
        if fields["type"] != CONSISTENCY_TYPE:
            raise InvalidProof(f"consistency file type must be {CONSISTENCY_TYPE!r}")
        return cls(
            old=TreeRef.from_json(fields["from"]),
            new=TreeRef.from_json(fields["to"]),
            proof=tuple(hash_list(fields["proof"], "consistency proof", PROOF_HASHES_MAX)),
        )


@dataclass(frozen=True)
class AuditExport:
    """The parts of one export, as the exporter proved them. `chain` holds the signed
    checkpoints oldest first, ending with the one the package is proven against; `proofs[i]`
    is the consistency proof from `chain[i]` to `chain[i + 1]`."""

    ledger_id: str
    start_id: int
    end_id: int
    entries_jcs: Sequence[bytes]
    package: bytes
    chain: Sequence[SignedCheckpoint]
    proofs: Sequence[Sequence[bytes]]

    def files(self) -> dict[str, bytes]:
        if not self.chain or len(self.proofs) != len(self.chain) - 1:
            raise ValueError("a chain of n checkpoints needs n - 1 consistency proofs")
        files = {
            entries_path(self.start_id, self.end_id): entries_file(self.entries_jcs),
            package_path(self.start_id, self.end_id): self.package,
        }
        for signed in self.chain:
            files[checkpoint_path(signed.body.seq)] = signed.to_bytes()
        for (old, new), proof in zip(itertools.pairwise(self.chain), self.proofs, strict=True):
            consistency = ConsistencyFile(TreeRef.of(old.body), TreeRef.of(new.body), tuple(proof))
            files[consistency_path(old.body.seq, new.body.seq)] = consistency.to_bytes()
        return files


def build_audit_bundle(
    export: AuditExport, signers: Sequence[tuple[str, Signer]], tool_version: str
) -> tuple[str, bytes]:
    """`(name, tar bytes)` of the bundle holding `export`, its manifest signed by `signers`."""
    anchor = export.chain[-1].body
    return build_bundle(
        export.ledger_id,
        export.start_id,
        export.end_id,
        CheckpointRef.of(anchor),
        export.files(),
        signers,
        tool_version,
    )


# --- Verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleVerified:
    """A bundle that passed every check; `state` is the auditor state to save, if one was given."""

    name: str
    sha256: str
    range: RangeVerified
    chain: tuple[SignedCheckpoint, ...]
    state: AuditorState | None

    @property
    def checkpoint(self) -> SignedCheckpoint:
        return self.range.checkpoint

    def summary(self) -> str:
        since = ""
        if len(self.chain) > 1:
            since = f", consistent with checkpoint seq {self.chain[0].body.seq}"
        return f"{self.range.summary()}{since}; bundle {self.name} sha256 {self.sha256}"


def verify_bundle(
    data: bytes,
    trust: TrustStore,
    *,
    expect_start: int | None = None,
    expect_end: int | None = None,
    state: AuditorState | None = None,
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> BundleVerified:
    """Every check of docs/proofs.md sections 8 and 9 on an audit bundle; VerificationFailed
    names the first that fails (`bundle` for the container and how its files fit together)."""
    with step("bundle"):
        bundle = read_bundle(data, trust)
    manifest = bundle.manifest
    package = _required(bundle, package_path(manifest.start_id, manifest.end_id))
    verified = verify_range_package(
        package,
        trust,
        expect_start=expect_start,
        expect_end=expect_end,
        max_age=max_age,
        now=now,
    )
    _check_package_matches_manifest(bundle, verified)
    chain, proofs = _chain(bundle, trust)
    if chain[-1] != verified.checkpoint:
        raise VerificationFailed(
            "bundle",
            f"the newest checkpoint file is seq {chain[-1].body.seq}, not the package's "
            f"checkpoint seq {verified.checkpoint.body.seq}",
        )
    new_state = None
    if state is not None:
        with step("state"):
            links: list[tuple[SignedCheckpoint, Sequence[bytes] | None]] = [(chain[0], None)]
            links.extend(zip(chain[1:], proofs, strict=True))
            new_state = state.advance_chain(links)
    return BundleVerified(bundle.name, bundle.sha256, verified, tuple(chain), new_state)


def _required(bundle: Bundle, path: str) -> bytes:
    content = bundle.files.get(path)
    if content is None:
        raise VerificationFailed("bundle", f"the bundle has no {path}")
    return content


def _check_package_matches_manifest(bundle: Bundle, verified: RangeVerified) -> None:
    manifest, statement = bundle.manifest, verified.statement
    body = verified.checkpoint.body
    if (manifest.ledger_id, manifest.start_id, manifest.end_id) != (
        statement.ledger_id,
        statement.start_id,
        statement.end_id,
    ):
        raise VerificationFailed(
            "bundle",
            f"the manifest names ledger {manifest.ledger_id} entries {manifest.start_id}.."
            f"{manifest.end_id}, the package {statement.ledger_id} entries "
            f"{statement.start_id}..{statement.end_id}",
        )
    if manifest.checkpoint != CheckpointRef.of(body):
        raise VerificationFailed(
            "bundle", "the manifest's checkpoint is not the package's signed checkpoint"
        )
    entries = _required(bundle, entries_path(manifest.start_id, manifest.end_id))
    if entries != entries_file(verified.entries):
        raise VerificationFailed(
            "bundle", "the entries file does not hold exactly the range package's entries"
        )


def _chain(
    bundle: Bundle, trust: TrustStore
) -> tuple[list[SignedCheckpoint], list[tuple[bytes, ...]]]:
    """The bundle's checkpoints, oldest first, each signed and linked to the one before by a
    verified consistency proof; and those proofs."""
    chain = _checkpoints(bundle, trust)
    consistency = _consistency_files(bundle)
    proofs: list[tuple[bytes, ...]] = []
    for old, new in itertools.pairwise(chain):
        a, b = old.body, new.body
        proof = consistency.pop((a.seq, b.seq), None)
        if proof is None:
            raise VerificationFailed(
                "consistency", f"no consistency proof from checkpoint {a.seq} to {b.seq}"
            )
        with step("consistency"):
            if b.origin != a.origin:
                raise InvalidProof(f"checkpoints {a.seq} and {b.seq} are of different logs")
            if b.tree_size <= a.tree_size or b.issued_at <= a.issued_at:
                raise InvalidProof(f"checkpoint {b.seq} is not newer than {a.seq}")
            if proof.old != TreeRef.of(a) or proof.new != TreeRef.of(b):
                raise InvalidProof(
                    f"the proof {consistency_path(a.seq, b.seq)} names other checkpoints"
                )
            if b.seq == a.seq + 1:
                verify_checkpoint_chain(a, b)
            verify_consistency(a.tree_size, b.tree_size, a.root_hash, b.root_hash, proof.proof)
        proofs.append(proof.proof)
    if consistency:
        (a_seq, b_seq), _ = min(consistency.items())
        raise VerificationFailed(
            "bundle", f"{consistency_path(a_seq, b_seq)} links no two checkpoints of the bundle"
        )
    return chain, proofs


def _checkpoints(bundle: Bundle, trust: TrustStore) -> list[SignedCheckpoint]:
    found: list[SignedCheckpoint] = []
    for path in sorted(bundle.files):
        match = _CHECKPOINT_FILE_RE.fullmatch(path)
        if match is None:
            continue
        if len(found) == CHAIN_CHECKPOINTS_MAX:
            raise VerificationFailed(
                "bundle", f"more than {CHAIN_CHECKPOINTS_MAX} checkpoint files"
            )
        with step("checkpoint"):
            signed = _named(path, SignedCheckpoint.from_bytes, bundle.files)
            if signed.body.seq != int(match.group(1)):
                raise InvalidProof(f"{path} holds checkpoint seq {signed.body.seq}")
            verify_checkpoint(signed, trust)
        found.append(signed)
    if not found:
        raise VerificationFailed("bundle", "the bundle has no checkpoints/ file")
    return sorted(found, key=lambda signed: signed.body.seq)


def _consistency_files(bundle: Bundle) -> dict[tuple[int, int], ConsistencyFile]:
    found: dict[tuple[int, int], ConsistencyFile] = {}
    for path in sorted(bundle.files):
        match = _CONSISTENCY_FILE_RE.fullmatch(path)
        if match is None:
            continue
        with step("consistency"):
            parsed = _named(path, ConsistencyFile.from_bytes, bundle.files)
            old_seq, new_seq = int(match.group(1)), int(match.group(2))
            if (parsed.old.seq, parsed.new.seq) != (old_seq, new_seq):
                raise InvalidProof(
                    f"{path} holds a proof from {parsed.old.seq} to {parsed.new.seq}"
                )
        found[(old_seq, new_seq)] = parsed
    return found


def _named(path: str, parse: Callable[[bytes], T], files: Mapping[str, bytes]) -> T:
    """`parse(files[path])`, naming the file in the error."""
    try:
        return parse(files[path])
    except InvalidProof as exc:
        raise InvalidProof(f"{path}: {exc.reason}") from exc
