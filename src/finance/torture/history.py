"""What each client sent and what it was told: pure values, no I/O.

A *posting* is one idempotency key with one body, sent once or more (retries repeat the key and
the body). Each send is an *attempt* whose outcome is one of three classes:

* acknowledged: 201, or 200 with `Idempotent-Replayed`: the posting exists, with this id;
* refused: a 4xx problem with a stable code (e.g. `overdraft`): this attempt posted nothing;
* unknown: a timeout, a cut, a connection error or a 5xx: the posting may or may not have
  committed, so the client retries with the same key and body.

A client stops retrying at the first definite answer (acknowledged or refused) or when the run
ends, so a posting's last attempt tells its outcome.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

# One line as the checker compares it: account id, side, amount in minor units, currency.
LineKey = tuple[str, str, int, str]

# Statuses that are not a definite refusal although they are 4xx: the request may be retried.
_RETRYABLE_4XX = frozenset({408, 429})


class Outcome(enum.StrEnum):
    ACKNOWLEDGED = "acknowledged"
    REFUSED = "refused"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Attempt:
    """One send of a posting. `reason` is the problem code of an answer, or why there was
    none (`timeout`, `cut`, `connection`); `entry_id` and `lines` are those of an
    acknowledgement."""

    outcome: Outcome
    reason: str
    status: int | None = None
    entry_id: UUID | None = None
    lines: tuple[LineKey, ...] = ()
    replayed: bool = False


@dataclass
class Posting:
    """One idempotency key, its body's lines, and every attempt in order."""

    key: str
    client: int
    lines: tuple[LineKey, ...]
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        """The class of the last attempt (a posting never attempted counts as unknown: it
        may have been on the wire when the run ended)."""
        return self.attempts[-1].outcome if self.attempts else Outcome.UNKNOWN

    @property
    def acknowledgement(self) -> Attempt | None:
        return next((a for a in self.attempts if a.outcome is Outcome.ACKNOWLEDGED), None)

    def had_unknown_attempt_before_last(self) -> bool:
        """Whether an earlier attempt may still have been in flight when the last one was
        answered (see `checker`: a refusal it can supersede)."""
        return any(a.outcome is Outcome.UNKNOWN for a in self.attempts[:-1])


def classify(status: int, headers: Mapping[str, str], body: Any) -> Attempt:
    """The outcome class of an HTTP answer to POST /v1/journal (`body` parsed JSON, or None)."""
    if status in (200, 201):
        try:
            entry_id, lines = UUID(str(body["id"])), lines_of(body["lines"])
        except (TypeError, KeyError, ValueError):
            # A success the client cannot read tells it nothing: retrying gets a replay.
            return Attempt(Outcome.UNKNOWN, f"http_{status}_unreadable", status=status)
        replayed = headers.get("idempotent-replayed", "").lower() == "true"
        return Attempt(
            Outcome.ACKNOWLEDGED,
            "replayed" if replayed else "created",
            status=status,
            entry_id=entry_id,
            lines=lines,
            replayed=replayed,
        )
    code = body.get("code") if isinstance(body, dict) else None
    if 400 <= status < 500 and status not in _RETRYABLE_4XX and isinstance(code, str):
        return Attempt(Outcome.REFUSED, code, status=status)
    return Attempt(Outcome.UNKNOWN, f"http_{status}" if code is None else str(code), status=status)


def lines_of(lines: Iterable[Mapping[str, Any]]) -> tuple[LineKey, ...]:
    """Request or response lines (`account_id`, `side`, `amount`, `currency`) as LineKeys."""
    return tuple(
        (str(line["account_id"]), str(line["side"]), int(line["amount"]), str(line["currency"]))
        for line in lines
    )


@dataclass(frozen=True)
class FaultEvent:
    """A fault the scheduler injected; `error` when the system did not come back from it."""

    kind: str
    at_s: float
    recovery_s: float
    error: str | None = None
