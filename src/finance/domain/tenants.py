"""Tenants: each owns one ledger (one hash chain) and sees nothing of the others."""

from __future__ import annotations

import re

from finance import limits
from finance.domain.errors import LedgerRejection, RejectCode
from finance.domain.metadata import check_text

# The same rule as tokens' `tenant` claim and the tenants table's CHECK.
_TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def check_tenant(tenant_id: str, name: str) -> None:
    if not _TENANT_ID.fullmatch(tenant_id):
        raise LedgerRejection(
            RejectCode.VALIDATION_FAILED,
            f"tenant id {tenant_id!r} must be 1..63 lowercase letters, digits, - or _,"
            " starting with a letter or digit",
        )
    if not name.strip():
        raise LedgerRejection(RejectCode.VALIDATION_FAILED, "tenant name must not be empty")
    check_text(name, field="tenant name", chars_max=limits.NAME_CHARS_MAX)
