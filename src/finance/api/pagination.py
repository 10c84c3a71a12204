"""Opaque cursors: base64url of a small JSON object, so clients cannot depend on their form."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import Query

from finance import limits
from finance.api.problems import InvalidCursor
from finance.domain.accounts import is_account_code

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]
Cursor = Annotated[str | None, Query(max_length=limits.CURSOR_CHARS_MAX)]


def page_of(
    fetched: list[T], limit: int, position: Callable[[T], int | str]
) -> tuple[list[T], str | None]:
    """Split a fetch of `limit + 1` rows into the page and the cursor of the next page: the
    extra row only says that there is more."""
    if len(fetched) <= limit:
        return fetched, None
    page = fetched[:limit]
    return page, encode_cursor(position(page[-1]))


def encode_cursor(after: int | str) -> str:
    raw = json.dumps({"after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_int_cursor(cursor: str | None) -> int | None:
    after = _decode(cursor)
    if after is None:
        return None
    if not isinstance(after, int) or isinstance(after, bool) or after < -1:
        raise InvalidCursor
    return after


def decode_code_cursor(cursor: str | None) -> str | None:
    """A cursor after an account code. Only a valid code is accepted: JSON can smuggle a NUL
    or a lone surrogate (`"\\u0000"`, `"\\ud800"`) into the decoded text, which the
    database cannot take and which this API never issues."""
    after = _decode(cursor)
    if after is None:
        return None
    if not isinstance(after, str) or not is_account_code(after):
        raise InvalidCursor
    return after


def decode_uuid_cursor(cursor: str | None) -> UUID | None:
    after = _decode(cursor)
    if after is None:
        return None
    try:
        return UUID(after) if isinstance(after, str) else _refuse()
    except ValueError as exc:
        raise InvalidCursor from exc


def _refuse() -> UUID:
    raise InvalidCursor


def _decode(cursor: str | None) -> object:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor from exc
    if not isinstance(data, dict) or set(data) != {"after"} or data["after"] is None:
        raise InvalidCursor
    return data["after"]
