"""Strict canonical JSON parsing, strict base64 (docs/proofs.md 3.3, verifier step 1) and
`canonical_dumps`, which must write exactly what rfc8785 writes."""

from __future__ import annotations

import base64
import gc
import re
from typing import Any

import pytest
import rfc8785

from finance.proofs import strict_json
from finance.proofs.strict_json import (
    JSON_INT_MAX,
    StrictJsonError,
    b64decode_hash,
    b64decode_strict,
    canonical_dumps,
    loads_strict,
)
from tests.proofs_support import rfc8785_fallback_forbidden


def test_canonical_input_round_trips() -> None:
    obj: dict[str, Any] = {"b": [1, -2, None, True, "é\n"], "a": {"z": "x", "y": JSON_INT_MAX}}
    data = rfc8785.dumps(obj)
    assert loads_strict(data) == obj


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"tree_size":1000.0}', "non-integer number"),
        (b'{"tree_size":1e3}', "non-integer number"),
        (b'{"a":1,"a":2}', "duplicate object key"),
        (b'{"a":NaN}', "NaN"),
        (b'{"a":Infinity}', "Infinity"),
        (b'{"a":-Infinity}', "-Infinity"),
        (b'{"a":9007199254740992}', "outside"),
        (b'{"a":-9007199254740992}', "outside"),
        (b'{"a":' + b"9" * 5000 + b"}", "outside"),
        (b'{"a": 1}', "canonical"),
        (b'{"a":1}\n', "canonical"),
        (b'{"b":1,"a":2}', "canonical"),
        (b'{"a":"\\u0041"}', "canonical"),
        (b'{"a":-0}', "canonical"),
        (b'{"a":"\xff"}', "UTF-8"),
        (b'\xef\xbb\xbf{"a":1}', "not JSON"),
        (b'{"a":"\\ud800"}', "canonicalized"),
        (b'{"a":', "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
    ],
)
def test_refuses_non_strict_input(data: bytes, reason: str) -> None:
    with pytest.raises(StrictJsonError) as info:
        loads_strict(data)
    assert reason in info.value.reason


def test_largest_safe_integers_are_accepted() -> None:
    data = rfc8785.dumps([JSON_INT_MAX, -JSON_INT_MAX])
    assert loads_strict(data) == [JSON_INT_MAX, -JSON_INT_MAX]


def test_float_is_refused_even_though_jcs_writes_it_as_an_integer() -> None:
    # 1000.0 and 1000 share their JCS bytes, so the canonical check alone would let it through.
    assert rfc8785.dumps({"tree_size": 1000.0}) == b'{"tree_size":1000}'
    with pytest.raises(StrictJsonError, match="non-integer"):
        loads_strict(b'{"tree_size":1000.0}')


def test_hash_decoding_accepts_exactly_32_bytes_of_standard_base64() -> None:
    digest = bytes(range(32))
    assert b64decode_hash(base64.b64encode(digest).decode()) == digest


@pytest.mark.parametrize(
    "value",
    [
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        base64.b64encode(bytes(32)).decode().rstrip("="),  # padding missing
        base64.urlsafe_b64encode(b"\xff" * 32).decode(),  # URL-safe alphabet
        " " + base64.b64encode(bytes(32)).decode(),
        base64.b64encode(bytes(32)).decode()[:-2] + "B=",  # non-zero padding bits
        base64.b64encode(bytes(32)),  # bytes, not str
        None,
        32,
    ],
)
def test_hash_decoding_refuses_anything_else(value: object) -> None:
    with pytest.raises(StrictJsonError):
        b64decode_hash(value)


def test_b64decode_strict_without_length_accepts_any_canonical_value() -> None:
    assert b64decode_strict("AAEC") == b"\x00\x01\x02"
    with pytest.raises(StrictJsonError, match="canonical"):
        b64decode_strict("AAEB=")  # decodes, but is not how any byte string is encoded


def test_parsing_pauses_the_cyclic_collector_and_restores_it() -> None:
    """The parse of a large package runs without cyclic collections (docs/performance.md), and
    the collector is enabled again afterwards, whether the input parsed or was refused."""
    seen: list[bool] = []

    def spy(text: str) -> int:
        seen.append(gc.isenabled())
        return int(text)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(strict_json, "_bounded_int", spy)
        loads_strict(b'{"a":1}')
        with pytest.raises(StrictJsonError):
            loads_strict(b'{"a":1,"b":2.5}')
    assert seen == [False, False]
    assert gc.isenabled()


def test_parsing_leaves_a_pause_of_the_caller_in_place() -> None:
    gc.disable()
    try:
        loads_strict(b'{"a":1}')
        assert not gc.isenabled()
    finally:
        gc.enable()


# canonical_dumps: rfc8785.dumps at C speed ------------------------------------------------------

EVERY_CHARACTER = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


def test_every_character_is_written_as_rfc8785_writes_it() -> None:
    expected = rfc8785.dumps(EVERY_CHARACTER)
    with rfc8785_fallback_forbidden():
        assert canonical_dumps(EVERY_CHARACTER) == expected


def test_keys_below_u_d800_sort_as_rfc8785_sorts_them_without_falling_back() -> None:
    """Below U+D800 a code point is one UTF-16 code unit, so the C encoder's order is RFC 8785's;
    prefixes and multi-character keys are in the mix."""
    keys = [chr(c) for c in range(0xD800)] + ["ab", "a", "a\x00", "\ud7ff\x01", "é", "ée"]
    value = {key: index for index, key in enumerate(reversed(keys))}
    expected = rfc8785.dumps(value)
    with rfc8785_fallback_forbidden():
        assert canonical_dumps(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2},  # by code point the other way round
        [JSON_INT_MAX + 1],  # rfc8785 refuses it, the C encoder would write it
        {"a": 1.5},  # the two write floats differently
        {1: "a"},  # rfc8785 refuses it, the C encoder would write the key as "1"
        ["\ud800"],  # rfc8785 refuses it in its own words
    ],
)
def test_what_the_fast_path_cannot_vouch_for_is_left_to_rfc8785(value: Any) -> None:
    reference = rfc8785.dumps
    calls: list[object] = []

    def spy(arg: Any) -> bytes:
        calls.append(arg)
        return reference(arg)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rfc8785, "dumps", spy)
        try:
            expected = reference(value)
        except rfc8785.CanonicalizationError as exc:
            with pytest.raises(type(exc), match=re.escape(str(exc))):
                canonical_dumps(value)
        else:
            assert canonical_dumps(value) == expected
    assert calls == [value]


def test_a_cyclic_value_fails_as_in_rfc8785() -> None:
    value: list[Any] = []
    value.append(value)
    with pytest.raises(RecursionError):
        rfc8785.dumps(value)
    with pytest.raises(RecursionError):
        canonical_dumps(value)


def test_deep_nesting_is_written_as_rfc8785_writes_it() -> None:
    value: Any = "x"
    for depth in range(100):
        value = [value] if depth % 2 else {"k": value}
    assert canonical_dumps(value) == rfc8785.dumps(value)
