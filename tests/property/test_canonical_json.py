"""`canonical_dumps` is `rfc8785.dumps`, only faster, for any value (the same bytes or the same
exception), and `loads_strict_items` accepts and refuses exactly what `loads_strict` does
(finance.proofs.strict_json)."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, date, datetime
from enum import IntEnum, StrEnum
from typing import Any
from uuid import UUID

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from finance.proofs.chain import canonical_bytes, entry_body
from finance.proofs.strict_json import (
    JSON_INT_MAX,
    StrictJsonError,
    _canonical_dumps_parsed,
    canonical_dumps,
    canonical_object,
    loads_strict,
    loads_strict_items,
)

# Characters from every range where the fast encoder could differ: control characters, the
# escapes, DEL, the line separator, Hangul just below the surrogates, lone surrogates and a
# surrogate pair spelled as two code points, the private use area that sorts differently in
# UTF-16, the last BMP character, and astral characters.
tricky = st.sampled_from(
    ["\x00", "\x1f", "\b", "\t", "\n", "\f", "\r", '"', "\\", "/", "\x7f", "\x80", "\u2028",
     "\ud7ff", "\ud800", "\udfff", "\ud83d\ude00", "\ue000", "\uffff", "\U0001f600",
     "\U00010000", "\U0010ffff", "a", "é"]
)  # fmt: skip
texts = st.lists(st.one_of(tricky, st.characters()), max_size=6).map("".join)
# What `loads_strict` can return, and all the C encoder is ever given unchecked.
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


class Label(str):
    pass


class Count(int):
    pass


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


class Ordered(OrderedDict[Any, Any]):
    pass


class Items(list[Any]):
    pass


# Subclasses that read differently to the two encoders: rfc8785 goes through int(), dict() and
# str.encode (to sort keys), the C encoder reads the underlying values and calls items().
class Seven(int):
    def __int__(self) -> int:
        return 7


class Hidden(dict[Any, Any]):
    def items(self) -> Any:
        return {}.items()


class Unsortable(str):
    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b""


# Everything else `rfc8785.dumps` might be handed: floats (NaN and the infinities too), integers
# on both sides of the safe range, subclasses of every JSON type, types it refuses, tuples, and
# keys that are not strings (which the C encoder would write as strings).
boundary_ints = st.sampled_from(
    [JSON_INT_MAX, JSON_INT_MAX + 1, -JSON_INT_MAX, -JSON_INT_MAX - 1, 2**63, -(2**64), 10**400]
)
odd_scalars = st.one_of(
    st.floats(),
    st.integers(),
    boundary_ints,
    st.builds(Label, texts),
    st.builds(Count, st.integers()),
    st.builds(Seven, st.integers()),
    st.just(Colour.RED),
    st.just(Level.HIGH),
    st.binary(max_size=3),
    st.just(object()),
)
keys = st.one_of(
    texts,
    texts,
    st.builds(Unsortable, texts),
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
)
anything = st.recursive(
    st.one_of(scalars, odd_scalars),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.lists(inner, max_size=4).map(Items),
        st.dictionaries(texts, inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
        st.dictionaries(texts, inner, max_size=4).map(Ordered),
        st.dictionaries(texts, inner, max_size=4).map(Hidden),
        st.frozensets(st.integers(), max_size=2),
    ),
    max_leaves=20,
)


def reference(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        return type(exc)


def outcome(dumps: Any, value: Any) -> bytes | tuple[type[BaseException], str]:
    """The bytes `dumps(value)` returns, or the type and message of what it raises."""
    try:
        result: bytes = dumps(value)
    except Exception as exc:  # noqa: BLE001 - any exception is an outcome to compare
        return type(exc), str(exc)
    return result


@settings(max_examples=1000)
@given(anything)
@example({"\ue000": 1, "\U0001f600": 2})  # UTF-16 order puts the emoji first
@example({"b": "\ud800"})
@example({"\ud800": 1})
@example({"\ud83d\ude00": 1})  # a surrogate pair as two code points is still not UTF-8
@example([JSON_INT_MAX, -JSON_INT_MAX])
@example([JSON_INT_MAX + 1])  # rfc8785 refuses it; the C encoder would write it
@example(-JSON_INT_MAX - 1)
@example([1.0, -0.0, 1e21, 5e-324])  # rfc8785 writes 1, 0, 1e+21, 5e-324; the C encoder not
@example(float("nan"))
@example({1: "a"})  # the C encoder would write the key as "1"
@example({None: 1, "a": 2})
@example({True: 1})
@example((1, "a"))
@example([True, False, None])
@example(Label("a"))
@example({Label("a"): 1})
@example(Count(5))
@example(Level.HIGH)
@example(Colour.RED)
@example({"a": Colour.RED})
@example(Ordered(b=1, a=2))
@example(Items([1]))
@example(Seven(1))
@example(Hidden(a=1))
@example({Unsortable("b"): 1, Unsortable("a"): 2})
@example(b"bytes")
@example("\x00\x1f\x7f\u2028\ud7ff\uffff\U0010ffff")
def test_canonical_dumps_is_rfc8785_for_any_value(value: Any) -> None:
    assert outcome(canonical_dumps, value) == outcome(rfc8785.dumps, value)


@settings(max_examples=300)
@given(
    sequence=st.one_of(st.integers(min_value=0, max_value=JSON_INT_MAX), boundary_ints),
    memo=st.none() | texts,
    source=st.none() | texts,
    metadata=st.dictionaries(texts, texts, max_size=4),
    amount=st.integers(min_value=1, max_value=2**63 - 1),
)
def test_entry_bodies_hash_the_bytes_rfc8785_writes(
    sequence: int, memo: str | None, source: str | None, metadata: dict[str, str], amount: int
) -> None:
    body = entry_body(
        ledger_id="acme",
        sequence=sequence,
        entry_uuid=UUID(int=sequence % 2**128),
        posted_at=datetime(2026, 1, 31, 9, 15, tzinfo=UTC),
        effective_date=date(2026, 1, 31),
        entry_type="SALE",
        memo=memo,
        source=source,
        source_id=memo,
        reversal_of=None,
        postings=[(UUID(int=1), "debit", amount, "USD"), (UUID(int=2), "credit", amount, "USD")],
        metadata=metadata,
    )
    assert outcome(canonical_bytes, body) == outcome(rfc8785.dumps, body)


@settings(max_examples=400)
@given(values)
@example({"\ue000": 1, "\U0001f600": 2})
@example({"b": "\ud800"})
@example({"\ud800": 1})
def test_canonical_dumps_parsed_is_rfc8785_for_parsed_values(value: Any) -> None:
    assert outcome(_canonical_dumps_parsed, value) == outcome(rfc8785.dumps, value)


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
