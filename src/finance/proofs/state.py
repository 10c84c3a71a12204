"""The auditor's state: the last signed checkpoint they verified, per log (docs/proofs.md
section 7). Pure: the file is read and written by `finance.adapters.state_file`.

It is what turns "this package is validly signed" into "this is the same history I saw last time,
only longer". A checkpoint presented later must be the stored one or extend it:

* the same `seq` or the same `tree_size` with a different body is **equivocation**: the log
  signed two histories. Both signed checkpoints are the evidence, and are handed back with the
  error;
* a smaller `seq` or `tree_size` is a **rollback**, refused;
* a larger one must come with an RFC 9162 consistency proof *from the stored checkpoint*. A range
  package only carries a proof from its own last entry to its own checkpoint, so it cannot show
  this alone; an audit bundle carries the checkpoints between and their proofs (`advance_chain`).

One state file follows any number of logs, keyed by checkpoint `origin` (which names the signer
and the tenant ledger), so an auditor of several tenants keeps one file.

Checkpoints handed to `advance` must already have been verified against the auditor's trust
store: this module checks only how they relate to each other.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from finance.proofs.checkpoint import (
    CheckpointError,
    SignedCheckpoint,
    verify_checkpoint_chain,
)
from finance.proofs.errors import InvalidProof
from finance.proofs.fields import exact_object, reraise_as
from finance.proofs.merkle import ProofError, verify_consistency
from finance.proofs.strict_json import canonical_dumps, loads_strict

STATE_TYPE: Final = "finance/auditor-state/v1"


class StateError(InvalidProof):
    """The presented checkpoint does not extend the stored one, or the state file is malformed.
    `evidence` holds the JCS bytes of both signed checkpoints when together they prove the log
    misbehaved (stored first)."""

    def __init__(self, reason: str, evidence: tuple[bytes, ...] = ()) -> None:
        super().__init__(reason)
        self.evidence = evidence


class AuditorState:
    """Immutable: `advance` returns a new state, so a caller saves it only if every other check
    passed too."""

    __slots__ = ("_checkpoints",)

    def __init__(self, checkpoints: Mapping[str, SignedCheckpoint] | None = None) -> None:
        stored = dict(checkpoints or {})
        for origin, signed in stored.items():
            if signed.body.origin != origin:
                raise ValueError(f"checkpoint for {signed.body.origin!r} stored under {origin!r}")
        self._checkpoints = stored

    def latest(self, origin: str) -> SignedCheckpoint | None:
        return self._checkpoints.get(origin)

    def __iter__(self) -> Iterator[SignedCheckpoint]:
        return iter(self._checkpoints[origin] for origin in sorted(self._checkpoints))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AuditorState) and self._checkpoints == other._checkpoints

    def __repr__(self) -> str:
        held = ", ".join(f"{o}@{c.body.seq}" for o, c in sorted(self._checkpoints.items()))
        return f"AuditorState({held})"

    def advance(
        self, new: SignedCheckpoint, consistency_from_stored: Sequence[bytes] | None = None
    ) -> AuditorState:
        """The state after accepting `new` (already signature-verified), or StateError.

        `consistency_from_stored` is the RFC 9162 proof from the stored checkpoint's tree to
        `new`'s; it is needed only when `new` is newer than the stored one. With nothing stored
        for `new`'s origin, `new` is taken as the first (trust on first use)."""
        stored = self._checkpoints.get(new.body.origin)
        if stored is None:
            return self._with(new)
        if stored.body == new.body:
            return self
        _check_order(stored, new)
        if new.body.seq == stored.body.seq + 1:
            try:
                verify_checkpoint_chain(stored.body, new.body)
            except CheckpointError as exc:
                raise StateError(
                    f"checkpoint seq {new.body.seq} does not follow the stored seq "
                    f"{stored.body.seq}: {exc.reason}",
                    _evidence(stored, new),
                ) from exc
        if consistency_from_stored is None:
            raise StateError(
                f"the stored checkpoint is seq {stored.body.seq} (tree size "
                f"{stored.body.tree_size}) and this one seq {new.body.seq} (tree size "
                f"{new.body.tree_size}): a consistency proof from the stored checkpoint is "
                "needed; verify an audit bundle exported with one"
            )
        try:
            verify_consistency(
                stored.body.tree_size,
                new.body.tree_size,
                stored.body.root_hash,
                new.body.root_hash,
                consistency_from_stored,
            )
        except ProofError as exc:
            raise StateError(
                f"checkpoint seq {new.body.seq} does not extend the stored seq "
                f"{stored.body.seq}: history was rewritten or the proof is wrong ({exc.reason})"
            ) from exc
        return self._with(new)

    def advance_chain(
        self, chain: Sequence[tuple[SignedCheckpoint, Sequence[bytes] | None]]
    ) -> AuditorState:
        """Advance through consecutive checkpoints of one origin, oldest first, each with the
        consistency proof from the one before it in `chain` (None for the first): what an
        audit bundle holds. Checkpoints older than the stored one are skipped (the chain reaches
        the stored one, and the stored one must be among them), and a proof is used only when
        the checkpoint before it is the stored one."""
        if not chain:
            raise ValueError("an empty checkpoint chain")
        state = self
        previous_is_stored = False
        for signed, proof in chain:
            stored = state.latest(signed.body.origin)
            if stored is not None and signed.body.seq < stored.body.seq:
                previous_is_stored = False
                continue
            state = state.advance(signed, proof if previous_is_stored else None)
            previous_is_stored = True
        # Every checkpoint older than the stored one: that is a rollback, reported as such.
        return state.advance(chain[-1][0])

    def to_bytes(self) -> bytes:
        return canonical_dumps(
            {
                "type": STATE_TYPE,
                "checkpoints": {
                    origin: signed.to_json() for origin, signed in self._checkpoints.items()
                },
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AuditorState:
        with reraise_as(StateError):
            obj = exact_object(loads_strict(data), frozenset({"type", "checkpoints"}), "state")
            if obj["type"] != STATE_TYPE:
                raise StateError(f"state type must be {STATE_TYPE!r}")
            held = obj["checkpoints"]
            if not isinstance(held, dict):
                raise StateError("state checkpoints must be an object keyed by origin")
            checkpoints = {origin: SignedCheckpoint.from_json(v) for origin, v in held.items()}
            try:
                return cls(checkpoints)
            except ValueError as exc:
                raise StateError(str(exc)) from exc

    def _with(self, new: SignedCheckpoint) -> AuditorState:
        return AuditorState({**self._checkpoints, new.body.origin: new})


def _check_order(stored: SignedCheckpoint, new: SignedCheckpoint) -> None:
    """Refuse a `new` that is not strictly newer than `stored` in seq, size and time."""
    old, cur = stored.body, new.body
    if cur.seq == old.seq or cur.tree_size == old.tree_size:
        same = f"seq {cur.seq}" if cur.seq == old.seq else f"tree size {cur.tree_size}"
        raise StateError(
            f"equivocation: two different signed checkpoints for {same} of {cur.origin}",
            _evidence(stored, new),
        )
    if (cur.seq < old.seq) != (cur.tree_size < old.tree_size):
        raise StateError(
            f"equivocation: checkpoint seq {cur.seq} has tree size {cur.tree_size}, but the "
            f"stored seq {old.seq} has tree size {old.tree_size}",
            _evidence(stored, new),
        )
    if cur.seq < old.seq:
        raise StateError(
            f"rollback: checkpoint seq {cur.seq} (tree size {cur.tree_size}) is older than the "
            f"stored seq {old.seq} (tree size {old.tree_size})"
        )
    if cur.issued_at <= old.issued_at:
        raise StateError(
            f"checkpoint seq {cur.seq} is not issued after the stored seq {old.seq}",
            _evidence(stored, new),
        )


def _evidence(stored: SignedCheckpoint, new: SignedCheckpoint) -> tuple[bytes, bytes]:
    return stored.to_bytes(), new.to_bytes()
