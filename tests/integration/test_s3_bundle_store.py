"""The S3 bundle store against moto's S3 server (a real HTTP endpoint on 127.0.0.1, reached through
boto3 exactly as in production, FINANCE_EXPORT_ENDPOINT style): bundles are locked in COMPLIANCE
mode until the retention date, a locked version cannot be deleted, nothing is overwritten, and a
bucket without Object Lock is refused."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from finance.adapters.bundle_stores.local import LocalBundleStore
from finance.adapters.bundle_stores.s3 import S3BundleStore
from finance.adapters.bundle_stores.select import open_bundle_store, s3_client
from finance.config import Settings
from finance.services.bundle_store import (
    BundleConflict,
    BundleNotFound,
    BundleStore,
    BundleStoreError,
    StoredBundle,
)

NAME = "bundle-acme-00000000100-00000000499-000042"
# The store's clock, frozen for exact dates; it must be the real time, because S3 (and moto)
# enforce the lock against their own clock.
NOW = datetime.now(UTC).replace(microsecond=750_000)
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real account: fake keys, and no profile or config file from the machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name in list(os.environ):
        if name.startswith("FINANCE_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint: str) -> Any:
    return s3_client(endpoint)


def new_bucket(s3: Any, *, object_lock: bool = True) -> str:
    name = f"exports-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
    return name


@pytest.fixture
def bucket(s3: Any) -> str:
    return new_bucket(s3)


def store_for(s3: Any, bucket: str, **options: Any) -> S3BundleStore:
    options.setdefault("retention_days", 30)
    options.setdefault("now", lambda: NOW)
    return S3BundleStore(s3, bucket, **options)


def test_a_bundle_is_locked_in_compliance_mode_until_the_retention_date(
    s3: Any, bucket: str
) -> None:
    store: BundleStore = store_for(s3, bucket, prefix="finance/exports", retention_days=2557)
    data = b"bundle bytes" * 100
    stored = store.put(NAME, data)
    key = f"finance/exports/{NAME}.tar"
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert stored == StoredBundle(
        f"s3://{bucket}/{key}?versionId={head['VersionId']}",
        hashlib.sha256(data).hexdigest(),
        len(data),
        already_stored=False,
    )
    assert head["ObjectLockMode"] == "COMPLIANCE"
    retain_until = (NOW + timedelta(days=2557)).replace(microsecond=0)
    assert head["ObjectLockRetainUntilDate"] == retain_until
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert head["ContentType"] == "application/x-tar"
    assert store.get(NAME) == data


def test_a_locked_version_cannot_be_deleted(s3: Any, bucket: str) -> None:
    store_for(s3, bucket).put(NAME, b"evidence")
    key = f"{NAME}.tar"
    version = s3.head_object(Bucket=bucket, Key=key)["VersionId"]
    for bypass in (False, True):  # COMPLIANCE: not even with the governance bypass
        with pytest.raises(ClientError) as refused:
            s3.delete_object(
                Bucket=bucket, Key=key, VersionId=version, BypassGovernanceRetention=bypass
            )
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # (Real S3 also refuses to shorten a COMPLIANCE retention; moto 5.2 does not model that.)
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
    assert body == b"evidence"


def test_an_overwrite_is_refused(s3: Any, bucket: str) -> None:
    store = store_for(s3, bucket)
    first = store.put(NAME, b"first")
    with pytest.raises(BundleConflict, match="already holds a different bundle"):
        store.put(NAME, b"second")
    key = f"{NAME}.tar"
    # The store's conditional put, sent directly, is what S3 refuses...
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    # ...and even an unconditional put only adds a version: the locked first one stays.
    s3.put_object(Bucket=bucket, Key=key, Body=b"second", ChecksumAlgorithm="SHA256")
    version = first.location.split("versionId=")[1]
    assert s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == b"first"
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert len(versions) == 2


def test_the_same_bundle_again_is_already_stored(s3: Any, bucket: str) -> None:
    store = store_for(s3, bucket)
    first = store.put(NAME, b"deterministic")
    again = store.put(NAME, b"deterministic")
    assert again.already_stored
    assert (again.location, again.sha256, again.size) == (first.location, first.sha256, 13)
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=f"{NAME}.tar")["Versions"]) == 1


def test_a_writer_that_loses_the_race_after_its_check_gets_a_conflict(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rival's object appears between our head request and our put: S3's If-None-Match
    refuses the put, and only the rival's version exists."""
    store = store_for(s3, bucket)
    real_head = S3BundleStore._head
    calls = 0

    def rival_after_first_head(self: S3BundleStore, key: str, version_id: str | None = None) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            result = real_head(self, key, version_id)
            store_for(s3, bucket).put(NAME, b"rival")
            return result
        return real_head(self, key, version_id)

    monkeypatch.setattr(S3BundleStore, "_head", rival_after_first_head)
    with pytest.raises(BundleConflict):
        store.put(NAME, b"ours")
    versions = s3.list_object_versions(Bucket=bucket, Prefix=f"{NAME}.tar")["Versions"]
    assert len(versions) == 1
    assert store.get(NAME) == b"rival"


def test_of_racing_writers_exactly_one_wins(s3: Any, bucket: str) -> None:
    writers = 6
    barrier = threading.Barrier(writers)
    results: list[StoredBundle | Exception] = [RuntimeError("not run")] * writers

    def write(index: int) -> None:
        store = store_for(s3_client_like(s3), bucket)
        barrier.wait()
        try:
            results[index] = store.put(NAME, f"writer {index}".encode())
        except BundleConflict as exc:
            results[index] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, result in enumerate(results) if isinstance(result, StoredBundle)]
    assert len(winners) == 1, results
    assert all(isinstance(r, BundleConflict) for i, r in enumerate(results) if i != winners[0])
    assert store_for(s3, bucket).get(NAME) == f"writer {winners[0]}".encode()


def s3_client_like(s3: Any) -> Any:
    """A separate client per thread, as separate processes would have."""
    return s3_client(s3.meta.endpoint_url)


def test_sse_kms_is_requested_and_confirmed(s3: Any, bucket: str) -> None:
    key_id = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    store_for(s3, bucket, kms_key_id=key_id).put(NAME, b"secret ledger")
    head = s3.head_object(Bucket=bucket, Key=f"{NAME}.tar")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_id


def test_a_bucket_without_object_lock_is_refused(s3: Any) -> None:
    plain = new_bucket(s3, object_lock=False)
    with pytest.raises(BundleStoreError, match=f"{plain}' does not have Object Lock enabled"):
        store_for(s3, plain)
    with pytest.raises(BundleStoreError, match="NoSuchBucket"):
        store_for(s3, "no-such-bucket-here")


def test_a_missing_bundle_and_bad_names(s3: Any, bucket: str) -> None:
    store = store_for(s3, bucket)
    with pytest.raises(BundleNotFound):
        store.get(NAME)
    with pytest.raises(ValueError, match="does not match"):
        store.put("../escape", b"x")


def test_an_object_stored_without_the_lock_is_reported(s3: Any, bucket: str) -> None:
    """If whatever sits in front of S3 drops the lock headers, the read-back notices."""

    class DropsLockHeaders:
        def __getattr__(self, name: str) -> Any:
            return getattr(s3, name)

        def put_object(self, **request: Any) -> Any:
            for header in ("ObjectLockMode", "ObjectLockRetainUntilDate"):
                request.pop(header)
            return s3.put_object(**request)

    store = S3BundleStore(DropsLockHeaders(), bucket, retention_days=30, now=lambda: NOW)
    with pytest.raises(BundleStoreError, match="is not locked in COMPLIANCE mode"):
        store.put(NAME, b"unlocked")


def test_open_bundle_store_follows_the_settings(
    endpoint: str, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = open_bundle_store(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalBundleStore)
    assert local.directory == tmp_path / "exports"
    monkeypatch.setenv("FINANCE_EXPORT_BUCKET", bucket)
    monkeypatch.setenv("FINANCE_EXPORT_ENDPOINT", endpoint)
    monkeypatch.setenv("FINANCE_EXPORT_PREFIX", "audit/")
    monkeypatch.setenv("FINANCE_EXPORT_RETENTION_DAYS", "10")
    remote = open_bundle_store(Settings())
    assert isinstance(remote, S3BundleStore)
    before = datetime.now(UTC)
    remote.put(NAME, b"configured")
    head = s3.head_object(Bucket=bucket, Key=f"audit/{NAME}.tar")
    until = head["ObjectLockRetainUntilDate"]
    assert before + timedelta(days=10, seconds=-1) <= until <= datetime.now(UTC) + timedelta(10)
    monkeypatch.setenv("FINANCE_EXPORT_BUCKET", "plain-" + bucket[:40])
    s3.create_bucket(Bucket="plain-" + bucket[:40])
    with pytest.raises(BundleStoreError, match="does not have Object Lock enabled"):
        open_bundle_store(Settings())
