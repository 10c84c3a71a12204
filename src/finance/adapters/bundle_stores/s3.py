"""Audit bundles in an S3 bucket with Object Lock in COMPLIANCE mode (docs/operations.md, "Audit
export store"): once written, no one, the bucket owner and the AWS root user included, can delete
or overwrite the object version until its retention date.

* The bucket must have Object Lock enabled (which AWS only allows at bucket creation, and which
  turns on versioning); the store refuses to start otherwise.
* Each bundle is put with `ObjectLockMode=COMPLIANCE` and `ObjectLockRetainUntilDate` = now +
  FINANCE_EXPORT_RETENTION_DAYS, its SHA-256 as `ChecksumSHA256` (S3 refuses the upload if the
  bytes it received hash otherwise), and SSE-KMS when FINANCE_EXPORT_KMS_KEY_ID is set.
* No overwrite: the put is conditional (`If-None-Match: *`), so of two racing writers exactly one
  creates the object and the other gets 412. A head request first saves re-uploading a bundle
  that is already there. Even a store that ignored the condition could not destroy a bundle:
  with Object Lock the bucket is versioned, so a second put only adds a newer version, and the
  first stays locked; `location` names the exact version that was written.
* After the put, the version's lock headers are read back; a version stored without the lock
  asked for (a bucket policy, a proxy, a store that ignores the headers) is an error.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from finance.services.bundle_store import (
    BUNDLE_SUFFIX,
    BundleConflict,
    BundleNotFound,
    BundleStoreError,
    StoredBundle,
    checked_name,
)

LOCK_MODE: Final = "COMPLIANCE"
CONTENT_TYPE: Final = "application/x-tar"
_PRECONDITION_CODES: Final = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_MISSING_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Client(Protocol):
    """The calls used from a boto3 `s3` client (boto3 clients are built at run time)."""

    def get_object_lock_configuration(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def head_object(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def put_object(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def get_object(self, **kwargs: Any) -> Mapping[str, Any]: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class S3BundleStore:
    """Bundles as `s3://<bucket>/<prefix>/<name>.tar`, locked in COMPLIANCE mode.

    The constructor checks the bucket's Object Lock configuration, so a missing bucket, missing
    permissions or a bucket without Object Lock stop the process at start-up."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        retention_days: int,
        prefix: str = "",
        kms_key_id: str | None = None,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._retention = timedelta(days=retention_days)
        self._kms_key_id = kms_key_id
        self._now = now
        self._require_object_lock()

    def key_of(self, name: str) -> str:
        file_name = f"{checked_name(name)}{BUNDLE_SUFFIX}"
        return f"{self._prefix}/{file_name}" if self._prefix else file_name

    def put(self, name: str, data: bytes) -> StoredBundle:
        key = self.key_of(name)
        digest = hashlib.sha256(data).digest()
        existing = self._head(key)
        if existing is not None:
            return self._compare(key, existing, digest, len(data))
        # Whole seconds: S3 keeps the retain-until date to the second, and the read-back check
        # compares it with what was asked.
        retain_until = (self._now() + self._retention).astimezone(UTC).replace(microsecond=0)
        request: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "Body": data,
            "ContentType": CONTENT_TYPE,
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": base64.b64encode(digest).decode("ascii"),
            "ObjectLockMode": LOCK_MODE,
            "ObjectLockRetainUntilDate": retain_until,
            "IfNoneMatch": "*",
        }
        if self._kms_key_id is not None:
            request["ServerSideEncryption"] = "aws:kms"
            request["SSEKMSKeyId"] = self._kms_key_id
        try:
            response = self._client.put_object(**request)
        except ClientError as exc:
            if _code(exc) in _PRECONDITION_CODES:
                # A racing writer created the object after our head request.
                raced = self._head(key)
                if raced is not None:
                    return self._compare(key, raced, digest, len(data))
            raise self._error(f"cannot put {key}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"cannot put {key}", exc) from exc
        version_id = response.get("VersionId")
        if not version_id:
            raise BundleStoreError(
                f"s3://{self._bucket}/{key} was stored without a version id: is Object Lock "
                "really enabled on the bucket?"
            )
        self._confirm_lock(key, str(version_id), retain_until, digest)
        return StoredBundle(self._location(key, str(version_id)), digest.hex(), len(data), False)

    def get(self, name: str) -> bytes:
        key = self.key_of(name)
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            return bytes(response["Body"].read())
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                raise BundleNotFound(f"no bundle s3://{self._bucket}/{key}") from exc
            raise self._error(f"cannot get {key}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"cannot get {key}", exc) from exc

    def _require_object_lock(self) -> None:
        what = "cannot read the bucket's Object Lock configuration"
        try:
            response = self._client.get_object_lock_configuration(Bucket=self._bucket)
        except ClientError as exc:
            if _code(exc) != "ObjectLockConfigurationNotFoundError":
                raise self._error(what, exc) from exc
            response = {}
        except BotoCoreError as exc:
            raise self._error(what, exc) from exc
        enabled = response.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        if enabled != "Enabled":
            raise BundleStoreError(
                f"S3 bucket {self._bucket!r} does not have Object Lock enabled: audit bundles "
                "need a write-once bucket. Create one with Object Lock enabled "
                "(aws s3api create-bucket --object-lock-enabled-for-bucket ...) and point "
                "FINANCE_EXPORT_BUCKET at it"
            )

    def _head(self, key: str, version_id: str | None = None) -> Mapping[str, Any] | None:
        request = {"Bucket": self._bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id is not None:
            request["VersionId"] = version_id
        try:
            return self._client.head_object(**request)
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                return None
            raise self._error(f"cannot read {key}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"cannot read {key}", exc) from exc

    def _compare(self, key: str, head: Mapping[str, Any], digest: bytes, size: int) -> StoredBundle:
        """Identical bytes already stored are success (exports are deterministic); a different
        object under the name is a conflict. The stored SHA-256 checksum decides; an object
        stored without one is downloaded and hashed."""
        version_id = str(head.get("VersionId") or "")
        stored = head.get("ChecksumSHA256")
        if isinstance(stored, str) and "-" not in stored:  # "-N": a multipart composite
            same = stored == base64.b64encode(digest).decode("ascii") and (
                head.get("ContentLength") == size
            )
        else:
            response = self._client.get_object(
                Bucket=self._bucket, Key=key, **({"VersionId": version_id} if version_id else {})
            )
            same = hashlib.sha256(response["Body"].read()).digest() == digest
        location = self._location(key, version_id)
        if not same:
            raise BundleConflict(f"{location} already holds a different bundle; it was left alone")
        self._require_locked(key, head, minimum=None)
        return StoredBundle(location, digest.hex(), size, already_stored=True)

    def _confirm_lock(
        self, key: str, version_id: str, retain_until: datetime, digest: bytes
    ) -> None:
        head = self._head(key, version_id)
        if head is None:
            raise BundleStoreError(f"s3://{self._bucket}/{key} vanished right after the put")
        self._require_locked(key, head, minimum=retain_until)
        stored = head.get("ChecksumSHA256")
        if stored is not None and stored != base64.b64encode(digest).decode("ascii"):
            raise BundleStoreError(f"s3://{self._bucket}/{key} reports another SHA-256 checksum")
        if self._kms_key_id is not None and head.get("ServerSideEncryption") != "aws:kms":
            raise BundleStoreError(f"s3://{self._bucket}/{key} was not encrypted with SSE-KMS")

    def _require_locked(self, key: str, head: Mapping[str, Any], minimum: datetime | None) -> None:
        mode = head.get("ObjectLockMode")
        until = head.get("ObjectLockRetainUntilDate")
        where = f"s3://{self._bucket}/{key}"
        if mode != LOCK_MODE or not isinstance(until, datetime):
            raise BundleStoreError(
                f"{where} is not locked in {LOCK_MODE} mode (lock mode {mode!r})"
            )
        # A bundle found already stored (minimum None) may be past its retention date: it is
        # still the same bytes, and its lock mode shows it was written under a lock.
        if minimum is not None and until < minimum:
            raise BundleStoreError(
                f"{where} is retained only until {until.isoformat()}, not {minimum.isoformat()}"
            )

    def _location(self, key: str, version_id: str) -> str:
        location = f"s3://{self._bucket}/{key}"
        return f"{location}?versionId={version_id}" if version_id else location

    def _error(self, what: str, exc: Exception) -> BundleStoreError:
        detail = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        return BundleStoreError(f"S3 bucket {self._bucket!r}: {what}: {detail} ({exc})")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
