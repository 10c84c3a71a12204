"""The fault schedule: every `interval_s`, the next kind in turn, the cheapest first (so that
a short run injects each kind early), until the run's time is up. One fault at a time; each
waits for the service to be ready again, and a fault the system does not recover from ends the
run."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

from finance.bench.http import HttpBenchError
from finance.torture.clients import Client
from finance.torture.history import FaultEvent
from finance.torture.postgres import OwnPostgres, PostgresError
from finance.torture.service import Service

KINDS = ("client_cut", "serve_kill", "postgres_restart")
# How many clients a client_cut asks to cut their next request.
CUTS_PER_FAULT = 3
# How long PostgreSQL stays down after an immediate stop, at most.
POSTGRES_DOWN_MAX_S = 1.0


class FaultScheduler:
    def __init__(
        self,
        service: Service,
        postgres: OwnPostgres,
        clients: Sequence[Client],
        *,
        interval_s: float,
        seed: int,
        stop: threading.Event,
        progress: Callable[[str], None],
    ) -> None:
        self.events: list[FaultEvent] = []
        self._service = service
        self._postgres = postgres
        self._clients = clients
        self._interval_s = interval_s
        self._rng = random.Random(seed)  # noqa: S311 - a schedule, not a secret
        self._stop = stop
        self._progress = progress
        self._started = time.monotonic()

    def run(self) -> None:
        turn = 0
        while not self._stop.wait(self._interval_s):
            kind = KINDS[turn % len(KINDS)]
            turn += 1
            at_s = time.monotonic() - self._started
            error = None
            try:
                self._inject(kind)
            except (HttpBenchError, PostgresError) as exc:
                error = str(exc)
            recovery_s = time.monotonic() - self._started - at_s
            if kind != "client_cut":  # cuts are counted by the clients that make them
                self.events.append(FaultEvent(kind, at_s, recovery_s, error))
                self._progress(f"{kind} at {at_s:.0f} s, ready again after {recovery_s:.1f} s")
            if error is not None:
                self._progress(f"{kind} at {at_s:.0f} s: no recovery: {error}")
                self._stop.set()

    def _inject(self, kind: str) -> None:
        if kind == "serve_kill":
            self._service.kill()
            self._service.start()
        elif kind == "postgres_restart":
            self._postgres.stop("immediate")
            time.sleep(self._rng.uniform(0, POSTGRES_DOWN_MAX_S))
            self._postgres.start()
            self._service.wait_ready()
        else:
            chosen = self._rng.sample(list(self._clients), min(CUTS_PER_FAULT, len(self._clients)))
            for client in chosen:
                client.cut_next.set()
