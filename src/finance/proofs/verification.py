"""How the verifiers report a failed check (docs/proofs.md section 8): one exception naming the
check that failed first, so `finance verify` prints one line and exits 1 whatever the module
that found the fault.

    invalid: chain: entries[37] has entry_id 138, expected 137
    ^^^^^^^  ^^^^^  the detail
    (CLI)    the check: parse, schema, checkpoint, statement, expect, chain, merkle, inclusion,
             state, freshness
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from finance.limits import CHECKPOINT_FUTURE_SKEW_MAX_S
from finance.proofs.chain import rfc3339_utc
from finance.proofs.checkpoint import CheckpointBody
from finance.proofs.errors import InvalidProof


class VerificationFailed(InvalidProof):
    """A verifier's check failed. `reason` is "check: detail". `evidence` holds the JCS bytes
    of signed checkpoints that together prove the log misbehaved (equivocation); the auditor
    should keep them."""

    def __init__(self, check: str, detail: str, evidence: tuple[bytes, ...] = ()) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail
        self.evidence = evidence


@contextmanager
def step(check: str) -> Iterator[None]:
    """Report any proof error raised inside as a failure of `check`, keeping its evidence."""
    try:
        yield
    except VerificationFailed:
        raise
    except InvalidProof as exc:
        evidence = getattr(exc, "evidence", ())
        raise VerificationFailed(check, exc.reason, tuple(evidence)) from exc


def check_freshness(body: CheckpointBody, now: datetime, max_age: timedelta) -> None:
    """`--max-age`: the checkpoint was issued at most `max_age` before `now`, and not
    implausibly after it (a log serving a stale head hides its newest entries)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if body.issued_at > now + timedelta(seconds=CHECKPOINT_FUTURE_SKEW_MAX_S):
        raise VerificationFailed(
            "freshness",
            f"checkpoint seq {body.seq} is dated {rfc3339_utc(body.issued_at)}, after this "
            f"machine's clock ({rfc3339_utc(now)})",
        )
    if now - body.issued_at > max_age:
        raise VerificationFailed(
            "freshness",
            f"checkpoint seq {body.seq} was issued at {rfc3339_utc(body.issued_at)}, more than "
            f"{int(max_age.total_seconds())} s ago",
        )
