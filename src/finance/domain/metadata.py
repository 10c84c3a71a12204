"""String metadata attached to accounts and entries: small, flat, strings only."""

from __future__ import annotations

from collections.abc import Mapping

from finance import limits
from finance.domain.errors import LedgerRejection, RejectCode


def check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Return a plain dict copy, or refuse metadata that is not a small map of strings."""
    if metadata is None:
        return {}
    if len(metadata) > limits.METADATA_KEYS_MAX:
        raise _invalid(f"metadata has more than {limits.METADATA_KEYS_MAX} keys")
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise _invalid("metadata keys and values must be strings")
        if not key or len(key) > limits.METADATA_KEY_CHARS_MAX:
            raise _invalid(f"metadata keys must be 1..{limits.METADATA_KEY_CHARS_MAX} characters")
        if not _storable(key) or not _storable(value):
            raise _invalid("metadata must be valid Unicode text without NUL characters")
        if len(value) > limits.METADATA_VALUE_CHARS_MAX:
            raise _invalid(
                f"metadata value of {key!r} is longer than {limits.METADATA_VALUE_CHARS_MAX}"
            )
        checked[key] = value
    return checked


def check_text(value: str | None, *, field: str, chars_max: int) -> str | None:
    """Optional free text: bounded, and free of NUL (which PostgreSQL text cannot store)."""
    if value is None:
        return None
    if len(value) > chars_max:
        raise _invalid(f"{field} is longer than {chars_max} characters")
    if not _storable(value):
        raise _invalid(f"{field} must be valid Unicode text without NUL characters")
    return value


def _storable(text: str) -> bool:
    """PostgreSQL text holds no NUL, and UTF-8 (hence JSON and the hash) holds no lone
    surrogates, which a Python str can carry."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _invalid(detail: str) -> LedgerRejection:
    return LedgerRejection(RejectCode.VALIDATION_FAILED, detail)
