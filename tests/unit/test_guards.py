"""Unit tests for the raw-bytes JSON depth guard (finance.api.guards.json_depth_exceeds)."""

from __future__ import annotations

import json

import pytest

from finance import limits
from finance.api.guards import has_nul, json_depth_exceeds


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    body: object = 1
    for _ in range(depth):
        body = {"k": body}
    return json.dumps(body).encode()


@pytest.mark.parametrize("depth_max", [1, 2, 5, limits.JSON_DEPTH_MAX])
def test_depth_exactly_at_the_limit_is_allowed(depth_max: int) -> None:
    assert not json_depth_exceeds(nested_arrays(depth_max), depth_max)
    assert not json_depth_exceeds(nested_objects(depth_max), depth_max)


@pytest.mark.parametrize("depth_max", [1, 2, 5, limits.JSON_DEPTH_MAX])
def test_one_level_deeper_than_the_limit_is_refused(depth_max: int) -> None:
    assert json_depth_exceeds(nested_arrays(depth_max + 1), depth_max)
    assert json_depth_exceeds(nested_objects(depth_max + 1), depth_max)


def test_mixed_arrays_and_objects_count_together() -> None:
    body = b'{"a": [{"b": [1]}]}'  # depth 4
    assert not json_depth_exceeds(body, 4)
    assert json_depth_exceeds(body, 3)


def test_siblings_do_not_add_up() -> None:
    body = b"[" + b",".join([nested_arrays(3)] * 50) + b"]"  # depth 4, many siblings
    assert not json_depth_exceeds(body, 4)
    assert json_depth_exceeds(body, 3)


def test_scalars_and_empty_body_have_no_depth() -> None:
    for body in (b"", b"1", b'"text"', b"null", b"true"):
        assert not json_depth_exceeds(body, 0)


def test_brackets_inside_strings_are_ignored() -> None:
    deep_text = b"[" * 100 + b"{" * 100
    body = b'{"memo": "' + deep_text + b'"}'
    assert not json_depth_exceeds(body, 1)
    assert json_depth_exceeds(body, 0)


def test_escaped_quote_does_not_end_the_string() -> None:
    # The string is  \"[[[[[  : the escaped quote keeps the scanner inside the string.
    body = b'{"memo": "\\"' + b"[" * 40 + b'"}'
    assert json.loads(body)["memo"] == '"' + "[" * 40
    assert not json_depth_exceeds(body, 1)


def test_escaped_backslash_before_quote_does_end_the_string() -> None:
    # The string is a single backslash; the brackets after it are real structure.
    body = b'["\\\\", ' + nested_arrays(3) + b"]"
    assert json.loads(body) == ["\\", [[[]]]]
    assert not json_depth_exceeds(body, 4)
    assert json_depth_exceeds(body, 3)


def test_unicode_escapes_and_multibyte_text_do_not_confuse_the_scanner() -> None:
    body = '{"memo": "caf\\u00e9 [ ü \\\\ ] \\u005b"}'.encode()
    assert not json_depth_exceeds(body, 1)


def test_nesting_after_a_string_is_still_counted() -> None:
    body = b'["[]]]]]", ' + nested_arrays(5) + b"]"  # depth 6; closers in the string ignored
    assert not json_depth_exceeds(body, 6)
    assert json_depth_exceeds(body, 5)


@pytest.mark.parametrize(
    "query",
    [b"a=%00", b"%00", b"a=b&c=%00d", b"a=\x00", b"\x00", b"cursor=abc%00"],
)
def test_a_nul_in_the_query_string_is_found(query: bytes) -> None:
    assert has_nul(query)


@pytest.mark.parametrize(
    "query", [b"", b"a=b", b"a=%2500", b"a=%0", b"a=%01", b"a=%C3%A9", b"a=00"]
)
def test_a_query_string_without_nul_passes(query: bytes) -> None:
    assert not has_nul(query)
