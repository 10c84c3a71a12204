"""One torture run, start to finish: a PostgreSQL and a `finance serve` of its own in a
temporary directory, a tenant with accounts funded from equity, concurrent clients, faults on
a schedule, a grace period for unknown outcomes, the final read and the check. Everything it
started is stopped and the directory removed at the end, also on error or Ctrl-C."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finance.adapters.postgres.db import Database
from finance.adapters.postgres.embedded import ensure_database, ensure_service_login
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.adapters.postgres.migrate import migrate
from finance.adapters.signers.local import LocalSigner
from finance.bench.http import issue_token
from finance.domain.accounts import AccountSpec, AccountType
from finance.proofs.signatures import TrustedKey, TrustStore
from finance.services import ledger
from finance.services.ports import LedgerTransaction
from finance.torture.checker import Report, check
from finance.torture.clients import Bank, Client, RunEvents
from finance.torture.faults import FaultScheduler
from finance.torture.history import FaultEvent, LineKey
from finance.torture.postgres import OwnPostgres, PostgresError
from finance.torture.reader import read_snapshot, wait_sealed
from finance.torture.service import Service

CURRENCIES = ("USD", "EUR")
FUNDING_MINOR = 20_000
# Transfers of up to a quarter of an account's funding: a no-overdraft account's balance is a
# random walk that reaches zero within about a hundred of its postings, so overdrafts are
# refused in every run, even a short one on a slow machine, while most postings go through.
AMOUNT_MAX_MINOR = FUNDING_MINOR // 4
# After the run's time, clients keep retrying postings of unknown outcome for this long.
GRACE_S = 20.0
SEALED_TIMEOUT_S = 60.0
JOIN_TIMEOUT_S = 30.0
TENANT = "torture"


@dataclass(frozen=True)
class TortureConfig:
    seconds: float
    clients: int
    accounts: int
    seed: int
    fault_interval_s: float


@dataclass
class TortureResult:
    config: TortureConfig
    report: Report
    faults: list[FaultEvent]
    elapsed_s: float

    def to_json(self) -> dict[str, Any]:
        figures = self.report.figures
        return {
            "sent": figures["sent"],
            "acknowledged": figures["acknowledged"],
            "faults_injected": figures["faults_injected"],
            "violations": [v.to_json() for v in self.report.listed()],
            "figures": figures,
            "faults": [asdict(f) for f in self.faults],
            "config": asdict(self.config),
            "elapsed_s": round(self.elapsed_s, 1),
        }


def run_torture(config: TortureConfig, progress: Callable[[str], None]) -> TortureResult:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="finance-torture-"))
    postgres = OwnPostgres(workdir)
    service: Service | None = None
    events = RunEvents(threading.Event(), threading.Event())
    try:
        postgres.init()
        postgres.start()
        admin_url = ensure_database(postgres.admin_uri, "finance")
        migrate(admin_url)
        service_conninfo = ensure_service_login(admin_url)
        accounts = _open_accounts(admin_url, service_conninfo, config.accounts)
        service = Service(workdir, service_conninfo)
        service.start()
        progress(f"finance serve on 127.0.0.1:{service.port}, PostgreSQL on {postgres.port}")
        token = issue_token(workdir, TENANT)
        bank = Bank(service.port, token, accounts.assets, AMOUNT_MAX_MINOR)
        funder = Client(0, bank, events, config.seed)
        for lines in _funding(accounts):
            funder.post(lines)
        clients = [Client(i, bank, events, config.seed) for i in range(1, config.clients + 1)]
        faults = FaultScheduler(
            service,
            postgres,
            clients,
            interval_s=config.fault_interval_s,
            seed=config.seed,
            stop=events.stop_new,
            progress=progress,
        )
        _drive(config, events, clients, faults, progress)
        postings = [p for c in [funder, *clients] for p in c.postings]
        if not wait_sealed(admin_url, TENANT, SEALED_TIMEOUT_S):
            progress(f"the sealer did not cover every entry within {SEALED_TIMEOUT_S:.0f} s")
        trust = _trust(LocalSigner(service.signer_key))
        service.stop()
        report = check(postings, read_snapshot(admin_url, TENANT), trust, faults.events)
        return TortureResult(config, report, faults.events, time.monotonic() - started)
    finally:
        events.stop_new.set()
        events.stop_all.set()
        if service is not None:
            service.stop()
        _stop_postgres(postgres)
        shutil.rmtree(workdir, ignore_errors=True)


def _drive(
    config: TortureConfig,
    events: RunEvents,
    clients: Sequence[Client],
    faults: FaultScheduler,
    progress: Callable[[str], None],
) -> None:
    """Run the clients and the faults for the run's time, then give the clients GRACE_S to
    settle postings whose outcome is unknown."""
    threads = [
        threading.Thread(target=c.run, name=f"client-{c.index}", daemon=True) for c in clients
    ]
    threads.append(threading.Thread(target=faults.run, name="faults", daemon=True))
    for thread in threads:
        thread.start()
    progress(f"{len(clients)} clients posting for {config.seconds:.0f} s")
    try:
        # A fault the system does not recover from sets stop_new early.
        events.stop_new.wait(config.seconds)
        events.stop_new.set()
        grace_end = time.monotonic() + GRACE_S
        for thread in threads:
            thread.join(timeout=max(0.0, grace_end - time.monotonic()))
    finally:
        # Also on Ctrl-C or an error: the fault thread may be restarting PostgreSQL or the
        # service, and must be done before the caller stops them for good.
        events.stop_new.set()
        events.stop_all.set()
        for thread in threads:
            thread.join(timeout=JOIN_TIMEOUT_S)


@dataclass(frozen=True)
class Accounts:
    """Account ids by currency: the equity account that funds, and the asset accounts."""

    equity: Mapping[str, str]
    assets: Mapping[str, Sequence[str]]


def _open_accounts(admin_url: str, service_conninfo: str, count: int) -> Accounts:
    """The tenant, one equity account per currency and `count` asset accounts spread over the
    currencies, every other one of a currency with no overdraft (its credits may not exceed
    its debits). Opened through the service layer directly: only the postings are under test."""
    now = datetime.now(UTC)

    def open_all(tx: LedgerTransaction) -> Accounts:
        equity: dict[str, str] = {}
        assets: dict[str, list[str]] = {c: [] for c in CURRENCIES}
        for currency in CURRENCIES:
            spec = AccountSpec(f"EQUITY-{currency}", "Equity", AccountType.EQUITY, currency)
            equity[currency] = str(ledger.open_account(tx, spec, uuid.uuid4(), now).id)
        for n in range(count):
            currency = CURRENCIES[n % len(CURRENCIES)]
            spec = AccountSpec(
                f"A{n:05d}-{currency}",
                f"Account {n}",
                AccountType.ASSET,
                currency,
                credits_must_not_exceed_debits=(n // len(CURRENCIES)) % 2 == 0,
            )
            assets[currency].append(str(ledger.open_account(tx, spec, uuid.uuid4(), now).id))
        return Accounts(equity, assets)

    database = Database(service_conninfo, admin_conninfo=admin_url, pool_max=2)
    database.open()
    try:
        store = PostgresLedgerStore(database)
        store(TENANT, lambda tx: ledger.create_tenant(tx, "Torture", now))
        return store(TENANT, open_all)
    finally:
        database.close()


def _funding(accounts: Accounts) -> list[tuple[LineKey, ...]]:
    """One posting per asset account: FUNDING_MINOR from its currency's equity account."""
    return [
        (
            (asset, "debit", FUNDING_MINOR, currency),
            (accounts.equity[currency], "credit", FUNDING_MINOR, currency),
        )
        for currency, ids in accounts.assets.items()
        for asset in ids
    ]


def _trust(signer: LocalSigner) -> TrustStore:
    """The trust store of an auditor who pinned the service's signing key."""
    return TrustStore([TrustedKey(signer.key_id, signer.alg, signer.public_key_spki())])


def _stop_postgres(postgres: OwnPostgres) -> None:
    """A clean stop, or an immediate one when that fails; nothing when it is not running."""
    for mode in ("fast", "immediate"):
        try:
            if postgres.running():
                postgres.stop(mode)
            return
        except PostgresError:
            continue
