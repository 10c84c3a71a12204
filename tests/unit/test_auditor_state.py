"""The auditor's state: equivocation, rollback, consistency from the stored checkpoint, chains of
checkpoints, and the file that keeps it (docs/proofs.md section 6; design proofs.md 3.3 step 7,
3.5)."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from finance.adapters import state_file
from finance.adapters.state_file import StateFileError, load_state, save_state
from finance.proofs.checkpoint import SignedCheckpoint, sign_checkpoint
from finance.proofs.state import STATE_TYPE, AuditorState, StateError
from finance.proofs.strict_json import loads_strict
from tests.proofs_support import SIGNER_ID, SyntheticLedger

SIZES = (8, 24, 40, 64)
LEDGER = SyntheticLedger(64)
CPS = [LEDGER.issue(size) for size in SIZES]  # seq 0..3


def rewrite(body: dict[str, Any]) -> None:
    body["memo"] = "rewritten"


# Entry 10 rewritten and re-signed with the real key: seq 0 (size 8) is the same as the real
# one, every later checkpoint differs.
REWRITTEN = SyntheticLedger(64, signer=LEDGER.signer, edit=rewrite, edit_at=10)
FORGED = [REWRITTEN.issue(size) for size in SIZES]


def proof(old: int, new: int, ledger: SyntheticLedger = LEDGER) -> list[bytes]:
    return ledger.log.consistency_proof(CPS[old].body.tree_size, CPS[new].body.tree_size)


def state_at(index: int) -> AuditorState:
    return AuditorState({LEDGER.origin: CPS[index]})


def refused(
    state: AuditorState, new: SignedCheckpoint, path: list[bytes] | None = None
) -> StateError:
    with pytest.raises(StateError) as info:
        state.advance(new, path)
    return info.value


def test_first_use_adopts_the_checkpoint() -> None:
    state = AuditorState().advance(CPS[1])
    assert state.latest(LEDGER.origin) == CPS[1]
    assert list(state) == [CPS[1]]


def test_the_same_checkpoint_leaves_the_state_as_it_is() -> None:
    state = state_at(2)
    assert state.advance(CPS[2]) is state


def test_a_newer_checkpoint_with_a_valid_proof_advances() -> None:
    assert state_at(0).advance(CPS[1], proof(0, 1)) == state_at(1)
    # Across a gap in seq too: the proof is from the stored tree to the new one.
    assert state_at(0).advance(CPS[3], proof(0, 3)) == state_at(3)


def test_a_newer_checkpoint_without_a_proof_needs_a_bundle() -> None:
    error = refused(state_at(0), CPS[2])
    assert error.reason == (
        "the stored checkpoint is seq 0 (tree size 8) and this one seq 2 (tree size 40): a "
        "consistency proof from the stored checkpoint is needed; verify an audit bundle "
        "exported with one"
    )
    assert error.evidence == ()


def test_a_wrong_proof_is_refused() -> None:
    error = refused(state_at(0), CPS[2], proof(0, 1))
    assert error.reason.startswith("checkpoint seq 2 does not extend the stored seq 0")


def test_rewritten_history_fails_consistency_from_an_older_stored_checkpoint() -> None:
    """The forger's own consistency proof, from the real size-24 tree to the forged size-64
    one, cannot verify: entry 10 changed every root over it."""
    forged_proof = REWRITTEN.log.consistency_proof(24, 64)
    error = refused(state_at(1), FORGED[3], forged_proof)
    assert error.reason.startswith(
        "checkpoint seq 3 does not extend the stored seq 1: history was rewritten or the proof "
        "is wrong"
    )
    # Not a rewrite of what the auditor saw at size 8: that part is the same history.
    assert FORGED[0] == CPS[0]


def test_equivocation_same_seq() -> None:
    error = refused(state_at(2), FORGED[2])
    assert error.reason == (
        "equivocation: two different signed checkpoints for seq 2 of finance.test/acme"
    )
    assert error.evidence == (CPS[2].to_bytes(), FORGED[2].to_bytes())


def test_equivocation_same_tree_size_another_seq() -> None:
    body = dataclasses.replace(
        CPS[2].body, seq=9, issued_at=CPS[2].body.issued_at + timedelta(days=1)
    )
    again = sign_checkpoint(body, [(SIGNER_ID, LEDGER.signer)])
    error = refused(state_at(2), again, [])
    assert error.reason == (
        "equivocation: two different signed checkpoints for tree size 40 of finance.test/acme"
    )
    assert len(error.evidence) == 2


def test_seq_and_size_must_grow_together() -> None:
    body = dataclasses.replace(CPS[1].body, seq=7)
    out_of_order = sign_checkpoint(body, [(SIGNER_ID, LEDGER.signer)])
    error = refused(state_at(2), out_of_order)
    assert error.reason == (
        "equivocation: checkpoint seq 7 has tree size 24, but the stored seq 2 has tree size 40"
    )
    assert error.evidence == (CPS[2].to_bytes(), out_of_order.to_bytes())


def test_rollback() -> None:
    error = refused(state_at(2), CPS[1])
    assert error.reason == (
        "rollback: checkpoint seq 1 (tree size 24) is older than the stored seq 2 (tree size 40)"
    )
    assert error.evidence == ()


def test_time_must_move_forward() -> None:
    body = dataclasses.replace(CPS[3].body, issued_at=CPS[1].body.issued_at)
    stale = sign_checkpoint(body, [(SIGNER_ID, LEDGER.signer)])
    error = refused(state_at(1), stale, proof(1, 3))
    assert error.reason == "checkpoint seq 3 is not issued after the stored seq 1"
    assert len(error.evidence) == 2


def test_the_next_seq_must_chain_to_the_stored_body() -> None:
    error = refused(state_at(1), FORGED[2], REWRITTEN.log.consistency_proof(24, 40))
    assert error.reason.startswith(
        "checkpoint seq 2 does not follow the stored seq 1: prev_checkpoint is not the hash"
    )
    assert error.evidence == (CPS[1].to_bytes(), FORGED[2].to_bytes())


def test_one_state_follows_several_logs() -> None:
    other = SyntheticLedger(5, ledger_id="globex")
    other_cp = other.issue()
    state = state_at(1).advance(other_cp)
    assert state.latest("finance.test/globex") == other_cp
    assert state.latest(LEDGER.origin) == CPS[1]
    assert state.advance(CPS[2], proof(1, 2)).latest("finance.test/globex") == other_cp


# --- A chain of checkpoints, as an audit bundle carries it -------------------------------------


def chain(first: int, last: int) -> list[tuple[SignedCheckpoint, list[bytes] | None]]:
    return [
        (CPS[index], None if index == first else proof(index - 1, index))
        for index in range(first, last + 1)
    ]


@pytest.mark.parametrize(
    ("stored", "first", "last"),
    [(None, 0, 3), (0, 0, 3), (1, 0, 3), (2, 1, 3), (3, 0, 3), (0, 0, 1)],
)
def test_advance_chain(stored: int | None, first: int, last: int) -> None:
    state = AuditorState() if stored is None else state_at(stored)
    assert state.advance_chain(chain(first, last)) == state_at(last)


def test_advance_chain_refusals() -> None:
    with pytest.raises(StateError, match="rollback"):
        state_at(3).advance_chain(chain(0, 2))
    with pytest.raises(StateError, match="consistency proof from the stored checkpoint is needed"):
        state_at(0).advance_chain(chain(2, 3))
    forged = [
        (
            FORGED[index],
            None if index == 0 else REWRITTEN.log.consistency_proof(SIZES[index - 1], SIZES[index]),
        )
        for index in range(4)
    ]
    with pytest.raises(StateError, match="equivocation") as info:
        state_at(1).advance_chain(forged)
    assert info.value.evidence == (CPS[1].to_bytes(), FORGED[1].to_bytes())
    with pytest.raises(ValueError, match="empty"):
        state_at(1).advance_chain([])


# --- The state file ----------------------------------------------------------------------------


def test_state_bytes_are_canonical_and_round_trip() -> None:
    other = SyntheticLedger(3, ledger_id="globex")
    state = state_at(2).advance(other.issue())
    data = state.to_bytes()
    assert rfc8785.dumps(json.loads(data)) == data
    document = loads_strict(data)
    assert document["type"] == STATE_TYPE == "finance/auditor-state/v1"
    assert sorted(document["checkpoints"]) == ["finance.test/acme", "finance.test/globex"]
    assert document["checkpoints"]["finance.test/acme"] == CPS[2].to_json()
    assert AuditorState.from_bytes(data) == state


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{}", "state: missing fields"),
        (b'{"checkpoints":{},"type":"other"}', "state type must be"),
        (b'{"checkpoints":[],"type":"finance/auditor-state/v1"}', "keyed by origin"),
        (b'{"checkpoints":{}, "type":"finance/auditor-state/v1"}', "canonical"),
    ],
)
def test_malformed_state(data: bytes, reason: str) -> None:
    with pytest.raises(StateError, match=reason):
        AuditorState.from_bytes(data)


def test_a_checkpoint_stored_under_another_origin_is_refused() -> None:
    data = rfc8785.dumps(
        {"type": STATE_TYPE, "checkpoints": {"finance.test/globex": CPS[0].to_json()}}
    )
    with pytest.raises(StateError, match=r"stored under 'finance\.test/globex'"):
        AuditorState.from_bytes(data)


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert load_state(path) == AuditorState()
    save_state(path, state_at(1))
    assert load_state(path) == state_at(1)
    save_state(path, state_at(2))
    assert load_state(path) == state_at(2)
    assert path.read_bytes() == state_at(2).to_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left behind


def test_state_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_bytes(b"{not json")
    with pytest.raises(StateFileError, match="is not a valid state: not JSON"):
        load_state(corrupt)
    with pytest.raises(StateFileError, match="cannot read state file"):
        load_state(tmp_path)  # a directory
    with pytest.raises(StateFileError, match="cannot write state file"):
        save_state(tmp_path / "missing" / "state.json", state_at(0))
    big = tmp_path / "big.json"
    save_state(big, state_at(0))
    monkeypatch.setattr(state_file, "AUDITOR_STATE_BYTES_MAX", 10)
    with pytest.raises(StateFileError, match="larger than 10 bytes"):
        load_state(big)


def test_a_failed_save_keeps_the_old_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    save_state(path, state_at(1))

    def fail(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StateFileError, match="No space left on device"):
        save_state(path, state_at(2))
    assert load_state(path) == state_at(1)
    assert os.listdir(tmp_path) == ["state.json"]
