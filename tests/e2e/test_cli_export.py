"""`finance export` and `finance exports list`, run as the real command against a real ledger:
the bundle lands read-only in the local store or locked in S3 (moto's server with Object Lock),
re-running gives the same bytes and records nothing new, bad input is one line and exit 2."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from finance.adapters.bundle_stores.select import s3_client
from finance.adapters.postgres.ledger_store import PostgresLedgerStore
from finance.domain.accounts import AccountType
from finance.proofs.bundle import bundle_sha256
from tests.e2e.helpers import environment, ok, one_error_line, run
from tests.integration.helpers import new_tenant, open_account, post_many
from tests.kms_server import DUMMY_AWS_ENV, kms_server


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-export")


@pytest.fixture(scope="module")
def tenant(store: PostgresLedgerStore) -> str:
    tenant = new_tenant(store)
    cash = open_account(store, tenant, "cash")
    equity = open_account(store, tenant, "equity", AccountType.EQUITY)
    post_many(store, tenant, 8, cash, equity)
    return tenant


def test_export_writes_a_read_only_bundle_that_verifies(
    tenant: str, data_dir: Path, database_url: str
) -> None:
    env = environment(data_dir, database_url)
    printed = ok(env, "export", "--tenant", tenant, "--from", "1", "--to", "6")
    lines = printed.out.splitlines()
    assert lines[0] == f"exported: {tenant} entries 1..6 (6) against checkpoint 0"
    path = Path(lines[1].removeprefix("bundle "))
    assert path.parent == data_dir / "exports"
    assert path.name == f"bundle-{tenant}-00000000001-00000000006-000000.tar"
    data = path.read_bytes()
    assert lines[2] == f"sha256 {bundle_sha256(data)} ({len(data)} bytes)"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444

    key = data_dir / "key.pem"
    key.write_text(ok(env, "signer", "public-key").out)
    verified = ok(
        env,
        "verify",
        str(path),
        "--public-key",
        str(key),
        "--expect-start",
        "1",
        "--expect-end",
        "6",
    )
    assert verified.out.startswith(f"valid: ledger {tenant} entries 1..6 (6)")

    # Again: the same bytes, reported as already stored, one record.
    again = json.loads(
        ok(env, "export", "--tenant", tenant, "--from", "1", "--to", "6", "--json").out
    )
    assert again["already_stored"] is True
    assert again["bundle_sha256"] == bundle_sha256(data)
    assert path.read_bytes() == data
    listed = json.loads(ok(env, "exports", "list", "--tenant", tenant, "--json").out)
    assert [(r["start_id"], r["end_id"], r["location"]) for r in listed] == [(1, 6, str(path))]


def test_export_by_dates(tenant: str, data_dir: Path, database_url: str) -> None:
    env = environment(data_dir, database_url)
    today = datetime.now(UTC).date().isoformat()
    record = json.loads(
        ok(env, "export", "--tenant", tenant, "--from", today, "--to", today, "--json").out
    )
    assert (record["start_id"], record["end_id"]) == (0, 7)


def test_export_refusals_are_one_line(tenant: str, data_dir: Path, database_url: str) -> None:
    env = environment(data_dir, database_url)
    cases: list[tuple[list[str], int, str]] = [
        (["--from", "1", "--to", "2026-01-01"], 2, "error: --from '1' --to '2026-01-01': give two"),
        (["--from", "2026-02-30", "--to", "2026-03-01"], 2, "error: --from/--to: "),
        (["--from", "3", "--to", "99"], 1, "error: entry_not_found: entry 99 does not exist"),
        (["--from", "5", "--to", "4"], 1, "error: validation_failed: the range 5..4"),
        (["--from", "2020-01-01", "--to", "2020-01-02"], 1, "error: entry_not_found: no entry"),
        (["--from", "0", "--to", "1", "--since-checkpoint", "7"], 1, "error: checkpoint_not_found"),
    ]
    for args, code, starts in cases:
        one_error_line(run(env, "export", "--tenant", tenant, *args), code, starts)
    one_error_line(
        run(env, "export", "--tenant", "nobody-here", "--from", "0", "--to", "0"),
        1,
        "error: entry_not_found: entry 0 does not exist",
    )


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    # moto's server answers every AWS service on one endpoint, S3 included.
    with kms_server() as server:
        yield server.endpoint


def test_export_to_s3_is_locked_in_compliance_mode(
    tenant: str,
    data_dir: Path,
    database_url: str,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    s3: Any = s3_client(s3_endpoint)
    s3.create_bucket(Bucket="audit-exports", ObjectLockEnabledForBucket=True)
    env = environment(
        data_dir,
        database_url,
        FINANCE_EXPORT_BUCKET="audit-exports",
        FINANCE_EXPORT_ENDPOINT=s3_endpoint,
        FINANCE_EXPORT_PREFIX="finance/exports",
        FINANCE_EXPORT_RETENTION_DAYS="3650",
        **DUMMY_AWS_ENV,
    )
    record = json.loads(
        ok(env, "export", "--tenant", tenant, "--from", "2", "--to", "7", "--json").out
    )
    key = f"finance/exports/bundle-{tenant}-00000000002-00000000007-000000.tar"
    head = s3.head_object(Bucket="audit-exports", Key=key)
    assert record["location"] == f"s3://audit-exports/{key}?versionId={head['VersionId']}"
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"].year >= datetime.now(UTC).year + 9
    body = s3.get_object(Bucket="audit-exports", Key=key)["Body"].read()
    assert bundle_sha256(body) == record["bundle_sha256"]
    # A second run finds the locked object and writes nothing new.
    again = json.loads(
        ok(env, "export", "--tenant", tenant, "--from", "2", "--to", "7", "--json").out
    )
    assert again["already_stored"] is True
    versions = s3.list_object_versions(Bucket="audit-exports", Prefix=key)["Versions"]
    assert len(versions) == 1
