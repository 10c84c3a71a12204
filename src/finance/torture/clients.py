"""Bank clients: threads posting random transfers over HTTP, each with one keep-alive
connection (the standard library's `http.client`, as `finance.bench.http` uses, so the command
needs no HTTP library the service does not), each keeping the log of what it sent and what it
was told (`history.Posting`).

A request whose outcome is unknown (timeout, cut, connection error, 5xx) is retried with the
same Idempotency-Key and body, with capped exponential backoff, until a definite answer, the
attempt limit, or the end of the run.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from finance.bench.http import HOST, JOURNAL_PATH
from finance.torture.history import Attempt, LineKey, Outcome, Posting, classify

REQUEST_TIMEOUT_S = 10.0
ATTEMPTS_MAX = 100
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 1.0
# A cut waits up to this long after sending before it closes the connection, so that it
# lands anywhere from "not yet read by the server" to "committed, answer on the wire".
CUT_DELAY_MAX_S = 0.05
SOURCE = "torture"
EFFECTIVE_DATE = "2026-01-01"


@dataclass(frozen=True)
class Bank:
    """What the clients post between: asset accounts per currency, the token, the port."""

    port: int
    token: str
    accounts: Mapping[str, Sequence[str]]
    amount_max: int


@dataclass(frozen=True)
class RunEvents:
    """`stop_new`: start no new posting (the run's time is up). `stop_all`: give up retrying
    too (the grace period for unknown outcomes is over)."""

    stop_new: threading.Event
    stop_all: threading.Event


class Client:
    def __init__(self, index: int, bank: Bank, events: RunEvents, seed: int) -> None:
        self.index = index
        self.postings: list[Posting] = []
        self.cut_next = threading.Event()
        self._bank = bank
        self._events = events
        self._rng = random.Random(seed * 1_000_003 + index)  # noqa: S311 - test data
        self._connection: http.client.HTTPConnection | None = None
        self._serial = 0

    def run(self) -> None:
        """Post random transfers until the run's time is up."""
        try:
            while not self._events.stop_new.is_set():
                self.post(self._transfer())
        finally:
            self._close()

    def post(self, lines: tuple[LineKey, ...]) -> Posting:
        """Send one posting under a fresh key, retrying until a definite answer."""
        self._serial += 1
        posting = Posting(f"t-{self.index}-{self._serial}", self.index, lines)
        body = json.dumps(
            {
                "lines": [
                    {"account_id": a, "side": s, "amount": n, "currency": c} for a, s, n, c in lines
                ],
                "effective_date": EFFECTIVE_DATE,
                "source": SOURCE,
                "source_id": posting.key,
            }
        ).encode()
        self.postings.append(posting)
        for attempt_number in range(ATTEMPTS_MAX):
            if attempt_number and self._events.stop_all.is_set():
                break
            attempt = self._attempt(posting.key, body)
            posting.attempts.append(attempt)
            if attempt.outcome is not Outcome.UNKNOWN:
                break
            backoff = min(BACKOFF_FIRST_S * 2**attempt_number, BACKOFF_MAX_S)
            self._events.stop_all.wait(backoff * self._rng.uniform(0.5, 1.0))
        return posting

    def _transfer(self) -> tuple[LineKey, ...]:
        currency = self._rng.choice(sorted(self._bank.accounts))
        debit, credit = self._rng.sample(list(self._bank.accounts[currency]), 2)
        amount = self._rng.randint(1, self._bank.amount_max)
        return ((debit, "debit", amount, currency), (credit, "credit", amount, currency))

    def _attempt(self, key: str, body: bytes) -> Attempt:
        connection = self._connect()
        headers = {
            "Authorization": f"Bearer {self._bank.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        }
        try:
            if self.cut_next.is_set():
                self.cut_next.clear()
                return self._cut(connection, headers, body)
            connection.request("POST", JOURNAL_PATH, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except TimeoutError:
            self._close()
            return Attempt(Outcome.UNKNOWN, "timeout")
        except (OSError, http.client.HTTPException):
            self._close()
            return Attempt(Outcome.UNKNOWN, "connection")
        return classify(response.status, _lower(response.getheaders()), _parsed(data))

    def _cut(
        self, connection: http.client.HTTPConnection, headers: dict[str, str], body: bytes
    ) -> Attempt:
        """Close the connection in the middle of the request: one time in four with half the
        body sent (the service never sees a whole request), otherwise after all of it, a
        moment later, without reading the answer (the posting may have committed)."""
        try:
            connection.putrequest("POST", JOURNAL_PATH)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                connection.putheader(name, value)
            connection.endheaders()
            if self._rng.random() < 0.25:
                connection.send(body[: len(body) // 2])
            else:
                connection.send(body)
                self._events.stop_all.wait(self._rng.uniform(0, CUT_DELAY_MAX_S))
        except OSError:
            pass  # already cut by a fault on the other side: a cut all the same
        self._close()
        return Attempt(Outcome.UNKNOWN, "cut")

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                HOST, self._bank.port, timeout=REQUEST_TIMEOUT_S
            )
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _lower(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def _parsed(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
