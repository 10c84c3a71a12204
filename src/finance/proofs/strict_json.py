"""Strict parsing of signed JSON objects (docs/proofs.md, section 3.3, verifier step 1).

A verifier must read exactly the bytes that were signed and nothing else, so `loads_strict` accepts
only input that is already RFC 8785 canonical JSON (the form every Finance proof object is written
in) and refuses, never repairs, anything else:

* bytes that are not UTF-8;
* an object with the same key twice (Python's `json` would silently keep the last one);
* NaN, Infinity and -Infinity, which are not JSON at all;
* any number with a fraction or exponent: Finance objects hold no floats, and `1000.0` has the same
  JCS bytes as `1000`, so it must be caught here rather than by a later type check;
* integers outside +-(2^53 - 1), which other JSON implementations cannot represent exactly;
* input whose bytes differ from `rfc8785.dumps(parsed)`: whitespace, key order, escapes.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final, NoReturn

import rfc8785

from finance.proofs.errors import InvalidProof

JSON_INT_MAX: Final = 2**53 - 1
HASH_BYTES: Final = 32
# Enough digits for -(2^53 - 1); a longer digit string is refused before it is converted, so a
# hostile number cannot make int() work through thousands of digits.
_INT_DIGITS_MAX: Final = len(str(-JSON_INT_MAX))


class StrictJsonError(InvalidProof):
    """The input is not strict canonical JSON (or not the expected base64); `reason` says why."""


def loads_strict(data: bytes) -> Any:
    """Parse `data`, which must be RFC 8785 canonical JSON with no floats; see the module doc."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError("loads_strict wants bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrictJsonError("input is not valid UTF-8") from exc
    try:
        parsed = json.loads(
            text,
            object_pairs_hook=_refuse_duplicate_keys,
            parse_float=_refuse_float,
            parse_int=_bounded_int,
            parse_constant=_refuse_constant,
        )
    except json.JSONDecodeError as exc:
        raise StrictJsonError(f"not JSON: {exc.msg} at offset {exc.pos}") from exc
    except RecursionError as exc:
        raise StrictJsonError("JSON nested too deeply") from exc
    try:
        canonical = rfc8785.dumps(parsed)
    except rfc8785.CanonicalizationError as exc:
        # e.g. a lone surrogate written as a \ud800 escape: not representable in UTF-8.
        raise StrictJsonError(f"cannot be canonicalized: {exc}") from exc
    except RecursionError as exc:
        raise StrictJsonError("JSON nested too deeply") from exc
    if canonical != bytes(data):
        raise StrictJsonError("input is not RFC 8785 canonical JSON (whitespace, order or escapes)")
    return parsed


def b64decode_strict(value: object, *, length: int | None = None) -> bytes:
    """Decode standard base64 (RFC 4648 section 4, `+/`, with `=` padding) written canonically.

    Refuses non-strings, other alphabets, missing padding, whitespace and non-zero padding bits (so
    each byte string has exactly one accepted spelling), and, if `length` is given, any other
    decoded length."""
    if not isinstance(value, str):
        raise StrictJsonError("base64 value must be a string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StrictJsonError("not standard padded base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise StrictJsonError("base64 is not in canonical form")
    if length is not None and len(raw) != length:
        raise StrictJsonError(f"base64 value must decode to {length} bytes, got {len(raw)}")
    return raw


def b64decode_hash(value: object) -> bytes:
    """A SHA-256 hash written as standard padded base64: exactly 32 bytes."""
    return b64decode_strict(value, length=HASH_BYTES)


def b64encode(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise StrictJsonError(f"duplicate object key {key!r}")
        result[key] = value
    return result


def _refuse_float(text: str) -> NoReturn:
    raise StrictJsonError(f"non-integer number {text[:40]!r} is not allowed")


def _refuse_constant(name: str) -> NoReturn:
    raise StrictJsonError(f"{name} is not JSON")


def _bounded_int(text: str) -> int:
    if len(text) > _INT_DIGITS_MAX:
        raise StrictJsonError("integer outside +-(2^53 - 1)")
    number = int(text)
    if not -JSON_INT_MAX <= number <= JSON_INT_MAX:
        raise StrictJsonError("integer outside +-(2^53 - 1)")
    return number
