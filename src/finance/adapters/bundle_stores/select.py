"""Choose the audit bundle store from the settings, once, at start-up: S3 with Object Lock when
FINANCE_EXPORT_BUCKET is set, otherwise the local directory FINANCE_EXPORT_DIR (default
`<data_dir>/exports`)."""

from __future__ import annotations

from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from finance.adapters.bundle_stores.local import LocalBundleStore
from finance.adapters.bundle_stores.s3 import S3BundleStore
from finance.config import Settings
from finance.services.bundle_store import BundleStore, BundleStoreError

S3_CONNECT_TIMEOUT_S: Final = 5.0
# A bundle of up to 1 GiB goes up in one PUT; the read timeout is per socket read, not per upload.
S3_READ_TIMEOUT_S: Final = 60.0
S3_RETRIES_MAX: Final = 5


def open_bundle_store(settings: Settings) -> BundleStore:
    """The configured store; BundleStoreError (one readable line) if it cannot be used."""
    if settings.export_bucket is None:
        return LocalBundleStore(settings.export_directory)
    return S3BundleStore(
        s3_client(settings.export_endpoint),
        settings.export_bucket,
        retention_days=settings.export_retention_days,
        prefix=settings.export_prefix,
        kms_key_id=settings.export_kms_key_id,
    )


def s3_client(endpoint: str | None) -> Any:
    """A boto3 S3 client with the standard credential and region chain. An explicit endpoint
    (S3-compatible stores, test servers) is addressed path-style, which they all understand."""
    config = Config(
        connect_timeout=S3_CONNECT_TIMEOUT_S,
        read_timeout=S3_READ_TIMEOUT_S,
        retries={"max_attempts": S3_RETRIES_MAX, "mode": "standard"},
        s3={"addressing_style": "path"} if endpoint else None,
    )
    try:
        return boto3.client("s3", endpoint_url=endpoint, config=config)
    except BotoCoreError as exc:
        raise BundleStoreError(f"cannot create the S3 client: {exc}") from exc
