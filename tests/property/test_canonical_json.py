"""`canonical_dumps` is `rfc8785.dumps`, only faster, and `loads_strict_items` accepts and
refuses exactly what `loads_strict` does (finance.proofs.strict_json)."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from finance.proofs.strict_json import (
    JSON_INT_MAX,
    StrictJsonError,
    canonical_dumps,
    canonical_object,
    loads_strict,
    loads_strict_items,
)

# Characters from every range where the fast encoder could differ: control characters, the
# escapes, DEL, Hangul just below the surrogates, lone surrogates, the private use area that
# sorts differently in UTF-16, and astral characters.
tricky = st.sampled_from(
    ["\x00", "\x1f", "\b", "\t", "\n", '"', "\\", "/", "\x7f", "\u2028", "\ud7ff", "\ud800",
     "\udfff", "\ue000", "\uffff", "\U0001f600", "\U00010000", "a", "é"]
)  # fmt: skip
texts = st.lists(st.one_of(tricky, st.characters()), max_size=6).map("".join)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-JSON_INT_MAX, max_value=JSON_INT_MAX),
    texts,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=20,
)


def reference(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        return type(exc)


@settings(max_examples=400)
@given(values)
@example({"\ue000": 1, "\U0001f600": 2})  # UTF-16 order puts the emoji first
@example({"b": "\ud800"})
@example({"\ud800": 1})
def test_canonical_dumps_is_rfc8785(value: Any) -> None:
    expected = reference(value)
    if isinstance(expected, bytes):
        assert canonical_dumps(value) == expected
    else:
        with pytest.raises(expected):
            canonical_dumps(value)


@given(st.dictionaries(texts, values, max_size=5))
def test_canonical_object_composes_members(value: dict[str, Any]) -> None:
    expected = reference(value)
    if isinstance(expected, bytes):
        parts = [(key, rfc8785.dumps(item)) for key, item in value.items()]
        assert canonical_object(parts) == expected


@settings(max_examples=300)
@given(st.dictionaries(texts, values, max_size=4), st.lists(values, max_size=5))
def test_loads_strict_items_agrees_with_loads_strict(
    others: dict[str, Any], items: list[Any]
) -> None:
    document = {**others, "entries": items}
    data = reference(document)
    if not isinstance(data, bytes):
        return
    parsed, item_bytes = loads_strict_items(data, "entries")
    assert parsed == loads_strict(data) == document
    assert item_bytes == [rfc8785.dumps(item) for item in items]


@pytest.mark.parametrize(
    "data",
    [
        b'{"entries":[{"a":1,"a":1}]}',
        b'{"entries":[{"a":1}],"entries":[{"a":1}]}',
        b'{"entries":[{"a":1} ]}',
        b'{"entries":[{"a":1.0}]}',
        b'{"entries":[{"b":1,"a":2}]}',
        b'{"entries":[{"a":"\\u0041"}]}',
        b'{"entries":[{"a":"\\ud800"}]}',
        b'{"x":1,"entries":[]}',
        b'{"entries":[],"x":{"b":1,"a":1}}',
        b'{"entries":{"a":1},"x":1 }',
        b'[{"a":1},{"a":1}] ',
        b'{"entries":[{"\\ud800":1}]}',
        b'{"entries":[{"a":1.5}],"x":{"a":1,"a":1}}',
    ],
)
def test_loads_strict_items_refuses_what_loads_strict_refuses(data: bytes) -> None:
    with pytest.raises(StrictJsonError) as expected:
        loads_strict(data)
    with pytest.raises(StrictJsonError) as got:
        loads_strict_items(data, "entries")
    assert got.value.reason == expected.value.reason


@given(st.binary(max_size=60))
def test_loads_strict_items_never_accepts_what_loads_strict_refuses(data: bytes) -> None:
    try:
        expected = loads_strict(data)
    except StrictJsonError:
        with pytest.raises(StrictJsonError):
            loads_strict_items(data, "entries")
    else:
        assert loads_strict_items(data, "entries")[0] == expected
