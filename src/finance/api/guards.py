"""Request guards that run before any routing or parsing (pure ASGI middleware).

* Body size: refused from Content-Length when declared, and counted while reading when not.
  A batch of entries has a limit of its own (`limits.BATCH_BODY_BYTES_MAX`).
* JSON nesting depth: measured on the raw bytes, so hostile input never reaches a recursive
  parser (Python's json module would blow the stack on deep enough nesting).
* Query strings: a NUL character (raw or `%00`) is refused on every request. No parameter of
  this API can hold one, and PostgreSQL text cannot store it, so it would otherwise travel
  to the database and come back as a driver error.
* Read-only mode (`FINANCE_WRITE_MODE=readonly`, the runbook's posting freeze): every write
  is a 503 problem while reads carry on.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NoReturn

from finance import limits
from finance.api.problems import problem, read_only_problem
from finance.api.schemas import JOURNAL_BATCH_PATH

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Paths whose bodies may be larger than limits.BODY_BYTES_MAX.
_BODY_BYTES_MAX_BY_PATH = {JOURNAL_BATCH_PATH: limits.BATCH_BODY_BYTES_MAX}


def body_bytes_max(path: str) -> int:
    return _BODY_BYTES_MAX_BY_PATH.get(path, limits.BODY_BYTES_MAX)


def json_depth_exceeds(body: bytes, depth_max: int) -> bool:
    """True when arrays/objects nest deeper than `depth_max` (brackets inside strings ignored)."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > depth_max:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


class RequestGuard:
    def __init__(self, app: ASGIApp, *, read_only: bool) -> None:
        self.app = app
        self.read_only = read_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_nul(scope.get("query_string", b"")):
            refused = problem(
                400, "invalid_query", "the query string must not contain NUL characters (%00)"
            )
            await refused(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        if self.read_only and scope["path"].startswith("/v1/"):
            await read_only_problem()(scope, receive, send)
            return
        size_max = body_bytes_max(scope["path"])
        body = await _read_body(scope, receive, size_max)
        if body is None:
            too_large = problem(
                413, "body_too_large", f"request bodies are limited to {size_max} bytes"
            )
            await too_large(scope, receive, send)
            return
        if body and not _is_json(scope):
            unsupported = problem(
                415, "unsupported_media_type", "request bodies must be sent as application/json"
            )
            await unsupported(scope, receive, send)
            return
        if json_depth_exceeds(body, limits.JSON_DEPTH_MAX):
            too_deep = problem(
                400, "json_too_deep", f"JSON nesting is limited to {limits.JSON_DEPTH_MAX} levels"
            )
            await too_deep(scope, receive, send)
            return
        if body and not _parses(body):
            malformed = problem(
                400,
                "malformed_json",
                "the request body is not valid UTF-8 JSON (RFC 8259: no NaN or Infinity,"
                " no key twice in an object)",
            )
            await malformed(scope, receive, send)
            return
        await self.app(scope, _replay(body), send)


def has_nul(query_string: bytes) -> bool:
    """A NUL in the raw query string or percent-encoded in it (`%00`; hex digits have no case)."""
    return b"\x00" in query_string or b"%00" in query_string


def _parses(body: bytes) -> bool:
    """Strict UTF-8 JSON within Python's limits (an integer of more than 4300 digits is a
    ValueError, invalid UTF-8 a UnicodeDecodeError): refused here with one clear code rather
    than by the framework's generic parse error.

    Strict also means RFC 8259 JSON, which Python's parser is not by default: `NaN` and
    `Infinity` are no JSON values, and an object that names a key twice is refused rather
    than silently keeping the last value (another parser on the way, a proxy or a client's
    audit log, may keep the first, and the two would disagree on what was posted)."""
    try:
        json.loads(
            body.decode("utf-8"), parse_constant=_not_json, object_pairs_hook=_without_repeats
        )
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False
    return True


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not a JSON value")


def _without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a key appears twice in an object")
    return found


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media_type: bytes = value.split(b";", 1)[0].strip().lower()
            return media_type == b"application/json" or media_type.endswith(b"+json")
    return False


async def _read_body(scope: Scope, receive: Receive, size_max: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed `size_max` bytes."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                if int(value) > size_max:
                    return None
            except ValueError:
                return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > size_max:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
