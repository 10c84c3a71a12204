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

`rfc8785.dumps` is pure Python and costs about five times the C `json` encoder, which matters
when a verifier canonicalizes a 100,000-entry package and when every posting hashes its entry
body. `canonical_dumps` is therefore `rfc8785.dumps` for any value, on the C encoder whenever it
provably writes the same bytes and by `rfc8785` otherwise (see its doc); the parser checks its
input with a variant that trusts the parser's own output.
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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
    parsed = _parse(bytes(data), duplicate_hook=True)
    with _refusing():
        canonical = _canonical_dumps_parsed(parsed)
    if canonical != bytes(data):
        raise StrictJsonError(_NOT_CANONICAL)
    return parsed


def loads_strict_items(data: bytes, member: str) -> tuple[Any, list[bytes]]:
    """`loads_strict(data)`, also returning the canonical bytes of each item of the top-level
    array `data[member]` (empty if there is none).

    For a range package whose entries must each be hashed as JCS bytes: each entry is
    canonicalized once, and the whole input is checked against those bytes composed with the
    other members (RFC 8785 serializes an object as its sorted members, each value exactly as it
    serializes alone), instead of canonicalizing every entry twice. The first pass skips the
    duplicate-key hook, which is the slowest part of the parse: a duplicate key leaves the parsed
    object one member short, so its canonical bytes cannot equal the input. Any mismatch is
    re-parsed by `loads_strict` to name the exact fault."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError("loads_strict_items wants bytes")
    data = bytes(data)
    try:
        parsed, items, canonical = _parse_items(data, member)
    except StrictJsonError:
        loads_strict(data)  # the reason loads_strict gives, which checks in another order
        raise
    if canonical != data:
        loads_strict(data)  # raises with the precise reason (duplicate key, whitespace...)
        raise StrictJsonError(_NOT_CANONICAL)
    return parsed, items


def _parse_items(data: bytes, member: str) -> tuple[Any, list[bytes], bytes]:
    parsed = _parse(data, duplicate_hook=False)
    items: list[bytes] = []
    with _refusing():
        if isinstance(parsed, dict) and isinstance(parsed.get(member), list):
            items = [_canonical_dumps_parsed(item) for item in parsed[member]]
            joined = b"[" + b",".join(items) + b"]"
            canonical = canonical_object(
                (key, joined if key == member else _canonical_dumps_parsed(value))
                for key, value in parsed.items()
            )
        else:
            canonical = _canonical_dumps_parsed(parsed)
    return parsed, items, canonical


# The C encoder with RFC 8785's separators. sort_keys orders members by code point, RFC 8785 by
# UTF-16 code unit. check_circular is off (it costs a dict operation per container) because
# nothing cyclic reaches it: parsed JSON is a tree, and `_is_plain` bounds the depth it accepts.
_FAST_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False,
    separators=(",", ":"),
    sort_keys=True,
    allow_nan=False,
    check_circular=False,
)
# A UTF-8 lead byte of a code point from U+D000 up, where the two orders can part: by code point
# U+E000..U+FFFF sort before U+10000 and above, in UTF-16 after them (surrogates are D800..DFFF).
_HIGH_CODE_POINT: Final = re.compile(rb"[\xed-\xff]")
# A key character from U+D800 up. Below it a code point is its own single UTF-16 code unit, so
# keys without one sort alike by code point (sort_keys) and by UTF-16 code unit (RFC 8785).
_KEY_ORDER_HAZARD: Final = re.compile(r"[^\x00-\ud7ff]")
# Deeper than any Finance object nests (a receipt: receipt, entry, postings, posting). A deeper
# or cyclic value is left to rfc8785, so the walk below always ends.
_PLAIN_DEPTH_MAX: Final = 32
_NOT_CANONICAL: Final = "input is not RFC 8785 canonical JSON (whitespace, order or escapes)"


def canonical_dumps(value: Any) -> bytes:
    """`rfc8785.dumps(value)` for any value: the same bytes, or the same exception.

    The C encoder writes RFC 8785's bytes exactly for what `_is_plain` accepts: the same
    separators, integers as plain digits, and the same string escapes (the two-character forms
    for \\b \\f \\n \\r \\t \\" \\\\, lower-case \\u00xx for the other control characters,
    every other character as UTF-8), members in the same order since no key holds a code point
    from U+D800 up. Everything else goes to `rfc8785`: floats (written differently), integers
    outside +-(2^53 - 1) and non-string keys (which rfc8785 refuses and the C encoder writes),
    subclasses, other types, deep nesting and lone surrogates (UTF-8 cannot encode them).
    tests/property/test_canonical_json.py checks the two against each other."""
    if _is_plain(value, _PLAIN_DEPTH_MAX):
        try:
            return _FAST_ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 refuses it, in its own words
    return rfc8785.dumps(value)


def _is_plain(value: Any, depth_left: int) -> bool:
    """Whether `value` is made only of dicts (keys as `_KEY_ORDER_HAZARD` allows), lists, tuples,
    strings, booleans, None and integers within +-(2^53 - 1), each of exactly that type (a
    subclass can override what either encoder reads), nested at most `depth_left` deep."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        in_range: bool = -JSON_INT_MAX <= value <= JSON_INT_MAX
        return in_range
    if depth_left == 0:
        return False
    if kind is dict:
        for key in value:
            if type(key) is not str or not (key.isascii() or not _KEY_ORDER_HAZARD.search(key)):
                return False
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return False
    for item in items:
        # Strings are most of an entry body: testing them here saves a call for each.
        if type(item) is not str and not _is_plain(item, depth_left - 1):
            return False
    return True


def _canonical_dumps_parsed(value: Any) -> bytes:
    """`canonical_dumps` for a value `_parse` returned, which is made only of what the C encoder
    writes as RFC 8785 does (dicts with string keys, lists, strings, integers within
    +-(2^53 - 1), booleans and None), so it skips the walk over the value. Only the member order
    can differ, and only for keys with code points from U+E000, so any output holding a code
    point from U+D000 up is redone by `rfc8785`, as is a lone surrogate (which `rfc8785`
    refuses, with CanonicalizationError or UnicodeEncodeError)."""
    try:
        fast = _FAST_ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: let rfc8785 refuse it in its own words
        return rfc8785.dumps(value)
    if fast.isascii() or _HIGH_CODE_POINT.search(fast) is None:
        return fast
    return rfc8785.dumps(value)


def canonical_object(members: Iterable[tuple[str, bytes]]) -> bytes:
    """An object's RFC 8785 bytes from `(key, canonical bytes of the value)` pairs: lets a
    builder assemble a large object from parts it has already canonicalized."""
    # surrogatepass: a lone surrogate still sorts here, and canonical_dumps(key) refuses it.
    ordered = sorted(members, key=lambda member: member[0].encode("utf-16-be", "surrogatepass"))
    return b"{" + b",".join(canonical_dumps(key) + b":" + value for key, value in ordered) + b"}"


@contextmanager
def _refusing() -> Iterator[None]:
    """What `rfc8785` refuses to canonicalize, as StrictJsonError."""
    try:
        yield
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        # e.g. a lone surrogate written as a \ud800 escape: not representable in UTF-8.
        raise StrictJsonError(f"cannot be canonicalized: {exc}") from exc
    except RecursionError as exc:
        raise StrictJsonError("JSON nested too deeply") from exc


def _parse(data: bytes, *, duplicate_hook: bool) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrictJsonError("input is not valid UTF-8") from exc
    try:
        with _cyclic_gc_paused():
            return json.loads(
                text,
                object_pairs_hook=_refuse_duplicate_keys if duplicate_hook else None,
                parse_float=_refuse_float,
                parse_int=_bounded_int,
                parse_constant=_refuse_constant,
            )
    except json.JSONDecodeError as exc:
        raise StrictJsonError(f"not JSON: {exc.msg} at offset {exc.pos}") from exc
    except RecursionError as exc:
        raise StrictJsonError("JSON nested too deeply") from exc


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while `json.loads` builds a document.

    A 100,000-entry package parses into about 400,000 dicts and lists. The collector runs every
    700 new containers and every so often walks all of them (and everything else the process
    holds) looking for reference cycles, which parsed JSON cannot contain: its objects are freed
    by reference counting like any others. The pause is process-wide, so it is as short as the
    parse; a collection that fell due meanwhile runs at the next allocation after it."""
    if not gc.isenabled():  # someone else's pause: theirs to end
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
