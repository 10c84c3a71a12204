"""The one exception family of the proof formats, so a verifier can report any failed check the
same way (one line naming it) without knowing which module found it."""

from __future__ import annotations


class InvalidProof(Exception):
    """A proof object is malformed or does not verify; `reason` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
