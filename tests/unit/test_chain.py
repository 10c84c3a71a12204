"""Unit tests for the per-ledger hash chain (finance.proofs.chain, proofs.md section 3.1)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
import rfc8785

from finance.proofs.chain import (
    ENTRY_PREFIX,
    ENTRY_SCHEMA,
    GENESIS_PREFIX,
    ChainVerifier,
    canonical_bytes,
    chain_hash,
    entry_body,
    genesis_hash,
    rfc3339_utc,
)
from finance.proofs.strict_json import JSON_INT_MAX
from tests.proofs_support import rfc8785_fallback_forbidden

LEDGER = "acme"
CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)
ENTRY_UUID = UUID("00000000-0000-4000-8000-000000000001")
CASH = UUID("00000000-0000-4000-8000-00000000000a")
REVENUE = UUID("00000000-0000-4000-8000-00000000000b")

# Known-answer vector, computed once from the implementation and pinned: any change to the body
# layout, the canonicalization, the prefixes or the timestamp format changes these bytes, which
# would silently fork every existing chain.
KNOWN_GENESIS_HEX = "5f6d4f0d8b5dbd16e0302270608d726f9d456e16e4fc3064803cb3369aba174e"
KNOWN_CANONICAL = (
    b'{"effective_date":"2025-01-02","entry_id":0,"id":"00000000-0000-4000-8000-000000000001",'
    b'"ledger_id":"acme","memo":"Invoice 42 \xe2\x80\x93 caf\xc3\xa9","metadata":{"a":"1","b":"2"},'
    b'"posted_at":"2025-01-02T03:04:05.678901Z","postings":[{"account":'
    b'"00000000-0000-4000-8000-00000000000a","amount":"125000","currency":"USD","side":"debit"},'
    b'{"account":"00000000-0000-4000-8000-00000000000b","amount":"125000","currency":"USD",'
    b'"side":"credit"}],"reversal_of":null,"schema":"finance/entry/v1","source":"shop",'
    b'"source_id":"order-42","type":"SALE"}'
)
KNOWN_HASH_HEX = "9522d69d991f1aa6ee0e12bca049b2fe0db5236e01dbe78093863f4cc207c0c2"


def sample_body(
    *,
    sequence: int = 0,
    amount: int = 125_000,
    memo: str | None = "Invoice 42 \u2013 caf\u00e9",
    ledger_id: str = LEDGER,
    entry_uuid: UUID = ENTRY_UUID,
    reversal_of: UUID | None = None,
) -> dict[str, Any]:
    return entry_body(
        ledger_id=ledger_id,
        sequence=sequence,
        entry_uuid=entry_uuid,
        posted_at=datetime(2025, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC),
        effective_date=date(2025, 1, 2),
        entry_type="SALE",
        memo=memo,
        source="shop",
        source_id="order-42",
        reversal_of=reversal_of,
        postings=[(CASH, "debit", amount, "USD"), (REVENUE, "credit", amount, "USD")],
        metadata={"b": "2", "a": "1"},
    )


def independent_jcs(body: dict[str, Any]) -> bytes:
    """JCS for bodies of strings, small integers and nulls, without the rfc8785 package."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# Timestamps -----------------------------------------------------------------------------------


def test_rfc3339_has_fixed_microsecond_precision_and_z_suffix() -> None:
    assert rfc3339_utc(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05.000000Z"
    assert (
        rfc3339_utc(datetime(2025, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))
        == "2025-12-31T23:59:59.999999Z"
    )


@pytest.mark.parametrize(
    ("year", "text"), [(1, "0001"), (999, "0999"), (1000, "1000"), (9999, "9999")]
)
def test_rfc3339_year_always_has_four_digits(year: int, text: str) -> None:
    # RFC 3339 date-fullyear is 4DIGIT; strftime("%Y") does not pad on glibc.
    moment = datetime(year, 6, 1, tzinfo=UTC)
    assert rfc3339_utc(moment) == f"{text}-06-01T00:00:00.000000Z"


def test_rfc3339_converts_other_offsets_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2025, 1, 1, 1, 30, 0, 5, tzinfo=plus_two)
    assert rfc3339_utc(moment) == "2024-12-31T23:30:00.000005Z"


def test_same_instant_in_different_zones_hashes_the_same() -> None:
    utc = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    tokyo = utc.astimezone(timezone(timedelta(hours=9)))
    assert genesis_hash(LEDGER, utc) == genesis_hash(LEDGER, tokyo)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2025, 1, 2, 3, 4, 5)  # naive on purpose
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339_utc(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        genesis_hash(LEDGER, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        entry_body(
            ledger_id=LEDGER,
            sequence=0,
            entry_uuid=ENTRY_UUID,
            posted_at=naive,
            effective_date=date(2025, 1, 2),
            entry_type="SALE",
            memo=None,
            source=None,
            source_id=None,
            reversal_of=None,
            postings=[],
            metadata={},
        )


# Body shape -----------------------------------------------------------------------------------


def test_entry_body_shape() -> None:
    other = UUID("00000000-0000-4000-8000-0000000000ff")
    body = sample_body(sequence=7, reversal_of=other)
    assert body == {
        "schema": "finance/entry/v1",
        "ledger_id": "acme",
        "entry_id": 7,
        "id": "00000000-0000-4000-8000-000000000001",
        "posted_at": "2025-01-02T03:04:05.678901Z",
        "effective_date": "2025-01-02",
        "type": "SALE",
        "memo": "Invoice 42 \u2013 caf\u00e9",
        "source": "shop",
        "source_id": "order-42",
        "reversal_of": str(other),
        "postings": [
            {"account": str(CASH), "side": "debit", "amount": "125000", "currency": "USD"},
            {"account": str(REVENUE), "side": "credit", "amount": "125000", "currency": "USD"},
        ],
        "metadata": {"a": "1", "b": "2"},
    }
    assert body["schema"] == ENTRY_SCHEMA


def test_entry_body_keeps_postings_in_line_order() -> None:
    body = entry_body(
        ledger_id=LEDGER,
        sequence=0,
        entry_uuid=ENTRY_UUID,
        posted_at=CREATED_AT,
        effective_date=date(2025, 1, 1),
        entry_type="JOURNAL",
        memo=None,
        source=None,
        source_id=None,
        reversal_of=None,
        postings=[(REVENUE, "credit", 5, "EUR"), (CASH, "debit", 5, "EUR")],
        metadata={},
    )
    assert [p["account"] for p in body["postings"]] == [str(REVENUE), str(CASH)]
    assert body["memo"] is None
    assert body["reversal_of"] is None


def test_entry_body_copies_metadata() -> None:
    metadata = {"k": "v"}
    body = entry_body(
        ledger_id=LEDGER,
        sequence=0,
        entry_uuid=ENTRY_UUID,
        posted_at=CREATED_AT,
        effective_date=date(2025, 1, 1),
        entry_type="JOURNAL",
        memo=None,
        source=None,
        source_id=None,
        reversal_of=None,
        postings=[],
        metadata=metadata,
    )
    metadata["k"] = "changed"
    assert body["metadata"] == {"k": "v"}


def walk(value: object) -> list[object]:
    found: list[object] = [value]
    if isinstance(value, dict):
        for item in value.values():
            found.extend(walk(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(walk(item))
    return found


def test_amounts_are_strings_and_no_float_reaches_the_canonical_bytes() -> None:
    huge = 2**63 - 1  # above 2^53: as a JSON number it would lose precision in many readers
    canonical = canonical_bytes(sample_body(amount=huge))
    assert f'"amount":"{huge}"'.encode() in canonical
    parsed = json.loads(canonical, parse_float=lambda text: pytest.fail(f"float {text}"))
    for posting in parsed["postings"]:
        assert isinstance(posting["amount"], str)
        assert int(posting["amount"]) == huge
    for value in walk(parsed):
        assert not isinstance(value, float)
        if isinstance(value, int) and not isinstance(value, bool):
            assert abs(value) <= 2**53 - 1


# Hashes ---------------------------------------------------------------------------------------


def test_genesis_hash_matches_an_independent_computation() -> None:
    expected = hashlib.sha256(
        b"finance/genesis/v1\n" + b'{"created_at":"2025-01-01T00:00:00.000000Z","ledger_id":"acme"}'
    ).digest()
    assert GENESIS_PREFIX == b"finance/genesis/v1\n"
    assert genesis_hash(LEDGER, CREATED_AT) == expected


def test_genesis_hash_differs_per_ledger_and_per_creation_time() -> None:
    hashes = {
        genesis_hash("acme", CREATED_AT),
        genesis_hash("globex", CREATED_AT),
        genesis_hash("acme2", CREATED_AT),
        genesis_hash("acme", CREATED_AT + timedelta(microseconds=1)),
    }
    assert len(hashes) == 4
    assert all(len(h) == 32 for h in hashes)


def test_chain_hash_is_sha256_of_prefix_prev_and_jcs_body() -> None:
    prev = genesis_hash(LEDGER, CREATED_AT)
    body = sample_body()
    expected = hashlib.sha256(b"finance/entry/v1\n" + prev + rfc8785.dumps(body)).digest()
    assert ENTRY_PREFIX == b"finance/entry/v1\n"
    assert chain_hash(prev, body) == expected
    # And without the rfc8785 package at all, for this strings-and-small-ints body.
    assert rfc8785.dumps(body) == independent_jcs(body)
    assert canonical_bytes(body) == independent_jcs(body)
    independent = hashlib.sha256(b"finance/entry/v1\n" + prev + independent_jcs(body)).digest()
    assert chain_hash(prev, body) == independent


def test_known_answer_vector() -> None:
    genesis = genesis_hash(LEDGER, CREATED_AT)
    body = sample_body()
    assert genesis.hex() == KNOWN_GENESIS_HEX
    assert canonical_bytes(body) == KNOWN_CANONICAL
    assert chain_hash(genesis, body).hex() == KNOWN_HASH_HEX


def test_canonical_bytes_do_not_depend_on_key_order() -> None:
    body = sample_body()
    reordered = dict(reversed(list(body.items())))
    assert canonical_bytes(reordered) == canonical_bytes(body)


# Every character a client can put in a memo, a source or metadata, including the ones JSON
# escapes, the ones it does not (DEL, U+2028), the last before the surrogates, the private use
# area, a byte order mark and astral characters.
AWKWARD_TEXT = (
    '\x00\x01\x1f\b\t\n\f\r"\\/\x7f\x80\u2028\ud7ff\ue000\ufeff\uffff\U0001f389\U0010ffff'
)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"memo": None, "reversal_of": "00000000-0000-4000-8000-0000000000ff"},
        {"memo": AWKWARD_TEXT},
        {"memo": "", "ledger_id": "ACME-\u00e9\u4e2d"},
        {"entry_id": JSON_INT_MAX},
        {"metadata": {"": "", "clé": AWKWARD_TEXT, "注文": "1", "b": "\n", "a\u00ff": "\x00"}},
        {"source": AWKWARD_TEXT, "source_id": AWKWARD_TEXT, "type": AWKWARD_TEXT},
        {"postings": sample_body(amount=2**63 - 1)["postings"] * 50},
    ],
)
def test_entry_bodies_canonicalize_as_rfc8785_without_falling_back(changes: dict[str, Any]) -> None:
    body = sample_body() | changes
    expected = rfc8785.dumps(body)
    with rfc8785_fallback_forbidden():
        assert canonical_bytes(body) == expected


def test_metadata_keys_that_sort_differently_in_utf16_are_still_in_rfc8785_order() -> None:
    body = sample_body()
    body["metadata"] = {"\ue000": "private use", "\U0001f389": "astral", "a": "ascii"}
    assert canonical_bytes(body) == rfc8785.dumps(body)
    assert b'"metadata":{"a":"ascii","\xf0\x9f\x8e\x89":"astral","\xee\x80\x80":' in (
        canonical_bytes(body)
    )


def test_an_entry_id_beyond_2_53_is_refused_as_rfc8785_refuses_it() -> None:
    prev = genesis_hash(LEDGER, CREATED_AT)
    with pytest.raises(rfc8785.IntegerDomainError):
        chain_hash(prev, sample_body(sequence=JSON_INT_MAX + 1))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_chain_hash_refuses_a_prev_hash_of_the_wrong_size(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        chain_hash(b"\x00" * length, sample_body())


def test_chain_hash_changes_with_every_input() -> None:
    prev = genesis_hash(LEDGER, CREATED_AT)
    base = chain_hash(prev, sample_body())
    variants = [
        chain_hash(genesis_hash("other", CREATED_AT), sample_body()),
        chain_hash(prev, sample_body(sequence=1)),
        chain_hash(prev, sample_body(amount=125_001)),
        chain_hash(prev, sample_body(memo=None)),
        chain_hash(prev, sample_body(memo="")),
        chain_hash(prev, sample_body(ledger_id="acme2")),
        chain_hash(prev, sample_body(entry_uuid=UUID(int=5))),
        chain_hash(prev, sample_body(reversal_of=UUID(int=6))),
    ]
    assert base not in variants
    assert len(set(variants)) == len(variants)


# The verifier ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    sequence: int
    prev_hash: bytes
    hash: bytes
    body: dict[str, Any]


def build_chain(count: int) -> tuple[bytes, list[Row]]:
    genesis = genesis_hash(LEDGER, CREATED_AT)
    rows: list[Row] = []
    prev = genesis
    for sequence in range(count):
        body = sample_body(sequence=sequence, amount=100 + sequence, entry_uuid=UUID(int=sequence))
        digest = chain_hash(prev, body)
        rows.append(Row(sequence, prev, digest, body))
        prev = digest
    return genesis, rows


def verify(genesis: bytes, rows: list[Row]) -> tuple[ChainVerifier, list[tuple[int, str]]]:
    verifier = ChainVerifier(genesis)
    problems: list[tuple[int, str]] = []
    for row in rows:
        problem = verifier.feed(row.sequence, row.prev_hash, row.hash, row.body)
        if problem is not None:
            problems.append((problem.sequence, problem.detail))
            break
    return verifier, problems


def test_an_intact_chain_verifies_to_its_head() -> None:
    genesis, rows = build_chain(5)
    verifier, problems = verify(genesis, rows)
    assert problems == []
    assert verifier.finish(5, rows[-1].hash) is None


def test_an_empty_chain_verifies_to_genesis() -> None:
    genesis = genesis_hash(LEDGER, CREATED_AT)
    verifier = ChainVerifier(genesis)
    assert verifier.finish(0, genesis) is None
    problem = verifier.finish(0, b"\x00" * 32)
    assert problem is not None
    assert problem.sequence == 0


def test_verifier_catches_a_changed_body() -> None:
    genesis, rows = build_chain(5)
    tampered = dict(rows[2].body)
    tampered["postings"] = [dict(p, amount="999") for p in tampered["postings"]]
    rows[2] = Row(2, rows[2].prev_hash, rows[2].hash, tampered)
    _, problems = verify(genesis, rows)
    assert problems == [(2, "stored hash does not match the entry's contents")]


def test_verifier_catches_a_rewrite_with_recomputed_hash_at_the_next_link() -> None:
    genesis, rows = build_chain(5)
    tampered = dict(rows[2].body, memo="rewritten")
    rows[2] = Row(2, rows[2].prev_hash, chain_hash(rows[2].prev_hash, tampered), tampered)
    _, problems = verify(genesis, rows)
    assert problems == [(3, "prev_hash does not link to the previous entry")]


def test_verifier_catches_a_swapped_order() -> None:
    genesis, rows = build_chain(5)
    rows[1], rows[2] = rows[2], rows[1]
    _, problems = verify(genesis, rows)
    assert len(problems) == 1
    assert problems[0][0] == 1


def test_verifier_catches_swapped_bodies_relabelled_to_fit_the_positions() -> None:
    genesis, rows = build_chain(5)
    one, two = rows[1], rows[2]
    rows[1] = Row(1, one.prev_hash, one.hash, dict(two.body, entry_id=1))
    rows[2] = Row(2, two.prev_hash, two.hash, dict(one.body, entry_id=2))
    _, problems = verify(genesis, rows)
    assert problems == [(1, "stored hash does not match the entry's contents")]


def test_verifier_catches_a_missing_entry() -> None:
    genesis, rows = build_chain(5)
    del rows[3]
    _, problems = verify(genesis, rows)
    assert problems == [(3, "expected entry 3, found 4")]


def test_verifier_catches_a_missing_entry_with_renumbered_sequences() -> None:
    genesis, rows = build_chain(5)
    del rows[3]
    last = rows[3]
    rows[3] = Row(3, last.prev_hash, last.hash, last.body)
    _, problems = verify(genesis, rows)
    assert problems == [(3, "prev_hash does not link to the previous entry")]


def test_verifier_catches_a_wrong_prev_link() -> None:
    genesis, rows = build_chain(5)
    bad_prev = hashlib.sha256(b"elsewhere").digest()
    # The stored hash is consistent with the forged link: only the link itself is wrong.
    rows[2] = Row(2, bad_prev, chain_hash(bad_prev, rows[2].body), rows[2].body)
    _, problems = verify(genesis, rows)
    assert problems == [(2, "prev_hash does not link to the previous entry")]


def test_verifier_catches_a_chain_from_another_ledger() -> None:
    _, rows = build_chain(3)
    _, problems = verify(genesis_hash("other", CREATED_AT), rows)
    assert problems == [(0, "prev_hash does not link to the previous entry")]


def test_verifier_does_not_advance_past_a_problem() -> None:
    genesis, rows = build_chain(3)
    verifier = ChainVerifier(genesis)
    assert verifier.feed(0, rows[0].prev_hash, rows[0].hash, rows[0].body) is None
    assert verifier.feed(2, rows[2].prev_hash, rows[2].hash, rows[2].body) is not None
    assert verifier.expected_sequence == 1
    assert verifier.expected_prev == rows[0].hash


def test_finish_catches_a_head_hash_mismatch() -> None:
    genesis, rows = build_chain(4)
    verifier, problems = verify(genesis, rows)
    assert problems == []
    problem = verifier.finish(4, rows[2].hash)
    assert problem is not None
    assert (problem.sequence, problem.detail) == (4, "ledger head hash is not the last hash")


@pytest.mark.parametrize("next_sequence", [3, 5, 0])
def test_finish_catches_a_head_count_mismatch(next_sequence: int) -> None:
    genesis, rows = build_chain(4)
    verifier, problems = verify(genesis, rows)
    assert problems == []
    problem = verifier.finish(next_sequence, rows[-1].hash)
    assert problem is not None
    assert problem.sequence == 4
    assert f"ledger head says {next_sequence} entries, the chain has 4" == problem.detail


def test_finish_catches_a_truncated_tail() -> None:
    genesis, rows = build_chain(5)
    verifier, problems = verify(genesis, rows[:3])
    assert problems == []
    problem = verifier.finish(5, rows[-1].hash)
    assert problem is not None
    assert problem.sequence == 3
