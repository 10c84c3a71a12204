"""The bytes of a posting's response. An idempotency key of a posting keeps only the entry's id,
and every replay renders the entry again (services/idempotency.py): these bytes are a stored
format. Changing them changes what every key posted so far replays, so they are pinned here;
if this test fails, the change breaks byte-for-byte replays of earlier postings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID

from finance.api.schemas import entry_response
from finance.domain.accounts import Side
from finance.domain.entries import PostedEntry, PostedLine

ENTRY = PostedEntry(
    id=UUID("0b8e5f1e-6a47-4d4c-9a39-2f1c8b7d6e50"),
    tenant_id="acme",
    sequence=41,
    hash=bytes(range(32)),
    prev_hash=bytes(range(32, 64)),
    posted_at=datetime(2025, 3, 9, 23, 59, 58, 123456, tzinfo=UTC),
    effective_date=date(2025, 3, 9),
    type="SALE",
    memo='café — 10 € \U0001f4b6 "quoted"',
    source="shop",
    source_id="order-7",
    metadata={"z": "1", "note": "naïve", "a": "2"},
    reversal_of=UUID("5f0c7c7e-54a1-4e3b-8f0e-1f2d3c4b5a69"),
    lines=(
        PostedLine(
            UUID(int=1),
            Side.DEBIT,
            9_223_372_036_854_775_807,
            "USD",
            3,
            9_223_372_036_854_775_807,
            0,
        ),
        PostedLine(
            UUID(int=2),
            Side.CREDIT,
            9_223_372_036_854_775_807,
            "USD",
            12,
            0,
            9_223_372_036_854_775_807,
        ),
    ),
)

PINNED = (
    b'{"id":"0b8e5f1e-6a47-4d4c-9a39-2f1c8b7d6e50","sequence":41,'
    b'"hash":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",'
    b'"prev_hash":"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",'
    b'"posted_at":"2025-03-09T23:59:58.123456Z","effective_date":"2025-03-09","type":"SALE",'
    b'"memo":"caf\\u00e9 \\u2014 10 \\u20ac \\ud83d\\udcb6 \\"quoted\\"","source":"shop",'
    b'"source_id":"order-7","metadata":{"a":"2","note":"na\\u00efve","z":"1"},'
    b'"reversal_of":"5f0c7c7e-54a1-4e3b-8f0e-1f2d3c4b5a69","lines":['
    b'{"account_id":"00000000-0000-0000-0000-000000000001","side":"debit",'
    b'"amount":9223372036854775807,"currency":"USD","account_posting_sequence":3},'
    b'{"account_id":"00000000-0000-0000-0000-000000000002","side":"credit",'
    b'"amount":9223372036854775807,"currency":"USD","account_posting_sequence":12}]}'
)


def test_a_posted_entry_renders_as_pinned() -> None:
    assert entry_response(ENTRY) == (201, PINNED)


def test_the_order_metadata_comes_back_in_does_not_matter() -> None:
    """JSONB gives keys back in its own order (shorter first), not the client's."""
    jsonb_order = {"a": "2", "z": "1", "note": "naïve"}
    assert entry_response(replace(ENTRY, metadata=jsonb_order)) == (201, PINNED)


def test_the_time_zone_posted_at_comes_back_in_does_not_matter() -> None:
    """The database gives timestamps back in its session's time zone."""
    for offset in (timedelta(hours=9), timedelta(hours=-5, minutes=-30)):
        moment = ENTRY.posted_at.astimezone(timezone(offset))
        assert entry_response(replace(ENTRY, posted_at=moment)) == (201, PINNED)
