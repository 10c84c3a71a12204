"""The auditor's state file on disk (docs/proofs.md section 7): read whole, replaced atomically.

A crash while saving must leave either the old state or the new one, never a torn file that would
make the next run start over from "first use" (which would accept a rolled-back log). So the new
state is written to a temporary file in the same directory, fsynced, renamed over the old one, and
the directory is fsynced so the rename itself survives a crash.

Two verifiers sharing one state file at the same time may each save; the last rename wins and
the other's advance is lost (never a corrupt file). An auditor runs them one after another.
"""

from __future__ import annotations

from pathlib import Path

from finance.files import replace_file
from finance.limits import AUDITOR_STATE_BYTES_MAX
from finance.proofs.errors import InvalidProof
from finance.proofs.state import AuditorState

STATE_FILE_MODE = 0o644


class StateFileError(Exception):
    """The state file cannot be read, parsed or written; the message names the file."""


def load_state(path: Path) -> AuditorState:
    """The state saved at `path`, or an empty one if there is no file yet (first use)."""
    try:
        with path.open("rb") as file:
            data = file.read(AUDITOR_STATE_BYTES_MAX + 1)
    except FileNotFoundError:
        return AuditorState()
    except OSError as exc:
        raise StateFileError(f"cannot read state file {path}: {exc.strerror}") from exc
    if len(data) > AUDITOR_STATE_BYTES_MAX:
        raise StateFileError(f"state file {path} is larger than {AUDITOR_STATE_BYTES_MAX} bytes")
    try:
        return AuditorState.from_bytes(data)
    except InvalidProof as exc:
        raise StateFileError(f"state file {path} is not a valid state: {exc.reason}") from exc


def save_state(path: Path, state: AuditorState) -> None:
    """Replace the file at `path` with `state`, atomically and durably."""
    try:
        replace_file(path, state.to_bytes(), mode=STATE_FILE_MODE)
    except OSError as exc:
        raise StateFileError(f"cannot write state file {path}: {exc.strerror}") from exc
