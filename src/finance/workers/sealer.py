"""The sealer: a thread of `finance serve` that turns new entries into signed checkpoints.

Every FINANCE_SEAL_INTERVAL seconds it asks the database which tenants have entries past their
last checkpoint or checkpoints waiting for the signer, then for each (at most
SEAL_TENANTS_PER_ROUND_MAX per round) seals one checkpoint and signs what is queued. Sealers on
several replicas share the work: a tenant whose head another sealer holds is skipped. When the
signer fails, the round stops signing (checkpoints keep being sealed and queue in order) and the
next round tries again; `Proofs.status` says why meanwhile, for /readyz.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import structlog

from finance import limits
from finance.services.proofs import Proofs

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RoundReport:
    tenants: int
    sealed: int
    signed: int
    signing_error: str | None
    failed_tenants: int


class Sealer:
    def __init__(
        self,
        proofs: Proofs,
        *,
        interval_s: float,
        tenants_max: int = limits.SEAL_TENANTS_PER_ROUND_MAX,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the seal interval must be positive")
        self.proofs = proofs
        self.interval_s = interval_s
        self.tenants_max = tenants_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_round(self) -> RoundReport:
        """One pass over the tenants with work. A failure for one tenant is logged and does not
        stop the others; a signer failure stops the signing, not the sealing."""
        backlog = self.proofs.backlog(self.tenants_max)
        sealed = signed = failed = 0
        signing_error: str | None = None
        for item in backlog:
            try:
                if item.unsealed_entries and self.proofs.seal(item.tenant_id) is not None:
                    sealed += 1
                if signing_error is None:
                    outcome = self.proofs.sign_pending(item.tenant_id)
                    signed += len(outcome.signed)
                    signing_error = outcome.error
            except Exception:  # logged; the other tenants still get sealed
                failed += 1
                log.exception("sealer.tenant_failed", tenant=item.tenant_id)
        self.proofs.unsigned_summary()  # refreshes the unsigned-checkpoints gauges
        report = RoundReport(len(backlog), sealed, signed, signing_error, failed)
        if sealed or signed or signing_error or failed:
            log.info(
                "sealer.round",
                tenants=report.tenants,
                sealed=sealed,
                signed=signed,
                signing_error=signing_error,
                failed_tenants=failed,
            )
        return report

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="finance-sealer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = limits.SEALER_STOP_TIMEOUT_S) -> None:
        """Ask the thread to stop after its current round, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("sealer.stop_timeout", timeout_s=timeout_s)
            self._thread = None

    def _loop(self) -> None:
        log.info("sealer.started", interval_s=self.interval_s)
        while not self._stop.is_set():
            try:
                self.run_round()
            except Exception:  # e.g. the database is down: retry next round
                log.exception("sealer.round_failed")
            self._stop.wait(self.interval_s)
        log.info("sealer.stopped")
