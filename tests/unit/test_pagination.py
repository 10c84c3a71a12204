"""Unit tests for opaque pagination cursors (finance.api.pagination)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finance.api.pagination import decode_code_cursor, decode_int_cursor, encode_cursor, page_of
from finance.api.problems import InvalidCursor


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("after", [-1, 0, 1, 49, 2**31, 2**63 - 1])
def test_int_cursor_round_trips(after: int) -> None:
    assert decode_int_cursor(encode_cursor(after)) == after


@pytest.mark.parametrize("after", ["ACC-001", "assets:cash/eur", "0", "a.b_c:d/e-f", "a" * 128])
def test_code_cursor_round_trips(after: str) -> None:
    assert decode_code_cursor(encode_cursor(after)) == after


@given(st.integers(min_value=-1, max_value=2**63 - 1))
def test_int_cursor_round_trips_for_any_position(after: int) -> None:
    assert decode_int_cursor(encode_cursor(after)) == after


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9:._/-]{0,127}", fullmatch=True))
def test_code_cursor_round_trips_for_any_account_code(after: str) -> None:
    assert decode_code_cursor(encode_cursor(after)) == after


@pytest.mark.parametrize(
    "raw",
    [
        b'{"after":"\\u0000"}',  # NUL: PostgreSQL text cannot hold it
        b'{"after":"cash\\u0000"}',
        b'{"after":"\\ud800"}',  # a lone surrogate: not encodable as UTF-8
        b'{"after":"a\\udfff"}',
        b'{"after":""}',
        b'{"after":"-cash"}',
        b'{"after":"with space"}',
        b'{"after":"caf\\u00e9"}',
        b'{"after":"' + b"a" * 129 + b'"}',
    ],
)
def test_code_cursor_refuses_text_that_is_no_account_code(raw: bytes) -> None:
    """Decoded JSON can carry text the database cannot store; it never reaches a query."""
    with pytest.raises(InvalidCursor):
        decode_code_cursor(b64(raw))


def test_cursor_is_url_safe_and_unpadded() -> None:
    for after in (0, 7, "x", "??>>", "ÿÿÿ"):
        cursor = encode_cursor(after)
        assert "=" not in cursor
        assert "+" not in cursor
        assert "/" not in cursor


def test_no_cursor_means_first_page() -> None:
    assert decode_int_cursor(None) is None
    assert decode_code_cursor(None) is None


GARBAGE = [
    "",
    "!!!!",
    "not a cursor",
    "é",
    "%%%%",
    b64(b"not json"),
    b64(b"\xff\xfe\xfd"),  # not UTF-8
    b64(b"[]"),
    b64(b'"after"'),
    b64(b"17"),
    b64(b"null"),
    b64(b"{}"),
    b64(b'{"before":1}'),
    b64(b'{"after":1,"extra":2}'),
    b64(b'{"after":1'),  # truncated JSON
    encode_cursor(1)[:-3],  # truncated base64
    "A",  # a single base64 character cannot encode anything
]


@pytest.mark.parametrize("cursor", GARBAGE)
def test_garbage_int_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_int_cursor(cursor)


@pytest.mark.parametrize("cursor", GARBAGE)
def test_garbage_code_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_code_cursor(cursor)


@pytest.mark.parametrize(
    "after",
    [True, False, 1.5, 1.0, -2, -100, "1", [1], {"n": 1}],
)
def test_int_cursor_refuses_wrong_types_and_positions_before_the_start(after: object) -> None:
    cursor = b64(json.dumps({"after": after}).encode())
    with pytest.raises(InvalidCursor):
        decode_int_cursor(cursor)


@pytest.mark.parametrize("after", [1, 0, True, 1.5, ["a"], {"a": "b"}])
def test_code_cursor_refuses_non_strings(after: object) -> None:
    cursor = b64(json.dumps({"after": after}).encode())
    with pytest.raises(InvalidCursor):
        decode_code_cursor(cursor)


def test_an_int_cursor_is_not_a_code_cursor() -> None:
    with pytest.raises(InvalidCursor):
        decode_code_cursor(encode_cursor(5))
    with pytest.raises(InvalidCursor):
        decode_int_cursor(encode_cursor("5"))


def test_page_of_without_an_extra_row_is_the_last_page() -> None:
    assert page_of([1, 2, 3], 3, lambda n: n) == ([1, 2, 3], None)
    assert page_of([1, 2], 3, lambda n: n) == ([1, 2], None)
    assert page_of([], 3, lambda n: n) == ([], None)


def test_page_of_with_an_extra_row_points_after_the_last_row_shown() -> None:
    rows = [{"seq": 10}, {"seq": 11}, {"seq": 12}, {"seq": 13}]
    page, cursor = page_of(rows, 3, lambda row: row["seq"])
    assert page == rows[:3]
    assert cursor is not None
    assert decode_int_cursor(cursor) == 12  # the extra row (13) is not skipped


def test_page_of_with_string_positions() -> None:
    page, cursor = page_of(["a", "b", "c"], 2, lambda code: code)
    assert page == ["a", "b"]
    assert cursor is not None
    assert decode_code_cursor(cursor) == "b"


@given(st.lists(st.integers(), max_size=30, unique=True), st.integers(min_value=1, max_value=10))
def test_walking_pages_visits_every_row_once(rows: list[int], limit: int) -> None:
    ordered = sorted(rows)
    seen: list[int] = []
    after: int | None = None
    for _ in range(len(ordered) + 2):
        remaining = [r for r in ordered if after is None or r > after]
        page, cursor = page_of(remaining[: limit + 1], limit, lambda n: n)
        seen.extend(page)
        if cursor is None:
            break
        after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["after"]
    assert seen == ordered
