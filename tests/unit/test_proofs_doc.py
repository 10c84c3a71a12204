"""docs/proofs.md specifies the chain byte for byte: recomputing a hash from the document's
formulas, with nothing but hashlib and an RFC 8785 encoder, gives what finance.proofs.chain
computes. If the format changes, the document (and its schema name) must change with it."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import rfc8785

from finance.domain.accounts import Side
from finance.proofs import chain

DOC = Path(__file__).resolve().parents[2] / "docs" / "proofs.md"

ENTRY = UUID("0b9e5f0c-6a1e-4b8e-9a55-0f6f3d1c2a77")
CASH = UUID("5d1f7a4e-0000-4000-8000-000000000001")
EQUITY = UUID("9a02c3b1-0000-4000-8000-000000000002")


def test_the_document_exists_with_the_section_the_code_cites() -> None:
    text = DOC.read_text(encoding="utf-8")
    cited = re.search(r"docs/proofs\.md, section (\d+(?:\.\d+)*)", chain.__doc__ or "")
    assert cited is not None
    assert re.search(rf"^#+ {re.escape(cited.group(1))} ", text, re.MULTILINE)
    for prefix in ("finance/entry/v1\\n", "finance/genesis/v1\\n"):
        assert prefix in text
    assert chain.ENTRY_PREFIX == b"finance/entry/v1\n"
    assert chain.GENESIS_PREFIX == b"finance/genesis/v1\n"
    assert chain.ENTRY_SCHEMA == "finance/entry/v1"


def test_genesis_is_as_documented() -> None:
    created = datetime(2026, 1, 31, 10, 15, tzinfo=timezone(timedelta(hours=1)))
    documented = hashlib.sha256(
        b"finance/genesis/v1\n"
        + rfc8785.dumps({"ledger_id": "acme", "created_at": "2026-01-31T09:15:00.000000Z"})
    ).digest()
    assert chain.genesis_hash("acme", created) == documented


def test_an_entry_hash_is_as_documented() -> None:
    genesis = chain.genesis_hash("acme", datetime(2026, 1, 1, tzinfo=UTC))
    body = chain.entry_body(
        ledger_id="acme",
        sequence=0,
        entry_uuid=ENTRY,
        posted_at=datetime(2026, 1, 31, 9, 15, 0, 7, tzinfo=UTC),
        effective_date=date(2026, 1, 31),
        entry_type="CAPITAL",
        memo="Owner investment",
        source=None,
        source_id=None,
        reversal_of=None,
        postings=[
            (CASH, Side.DEBIT, 2**63 - 1, "USD"),
            (EQUITY, Side.CREDIT, 2**63 - 1, "USD"),
        ],
        metadata={"invoice": "2026-0007"},
    )
    documented_body: dict[str, Any] = {
        "schema": "finance/entry/v1",
        "ledger_id": "acme",
        "entry_id": 0,
        "id": str(ENTRY),
        "posted_at": "2026-01-31T09:15:00.000007Z",
        "effective_date": "2026-01-31",
        "type": "CAPITAL",
        "memo": "Owner investment",
        "source": None,
        "source_id": None,
        "reversal_of": None,
        "postings": [
            {"account": str(CASH), "side": "debit", "amount": "9223372036854775807",
             "currency": "USD"},
            {"account": str(EQUITY), "side": "credit", "amount": "9223372036854775807",
             "currency": "USD"},
        ],
        "metadata": {"invoice": "2026-0007"},
    }  # fmt: skip
    assert body == documented_body
    documented = hashlib.sha256(
        b"finance/entry/v1\n" + genesis + rfc8785.dumps(documented_body)
    ).digest()
    assert chain.chain_hash(genesis, body) == documented


def test_checkpoints_and_receipts_are_as_documented() -> None:
    from finance.proofs.checkpoint import CHECKPOINT_PREFIX, CheckpointBody, body_hash
    from finance.proofs.receipt import RECEIPT_TYPE

    text = DOC.read_text(encoding="utf-8")
    assert '"finance/checkpoint/v1\\n" ‖ JCS(body)' in text
    assert CHECKPOINT_PREFIX == b"finance/checkpoint/v1\n"
    assert f'"type": "{RECEIPT_TYPE}"' in text
    body = CheckpointBody(
        origin="finance.local/acme",
        tree_size=1000,
        root_hash=bytes(range(32)),
        chain_head=bytes(range(32, 64)),
        seq=42,
        prev_checkpoint=bytes(32),
        issued_at=datetime(2026, 1, 31, 9, 15, 1, tzinfo=UTC),
    )
    documented: dict[str, str | int] = {
        "type": "finance/checkpoint/v1",
        "origin": "finance.local/acme",
        "tree_size": 1000,
        "root_hash": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "chain_head": "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=",
        "seq": 42,
        "prev_checkpoint": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "issued_at": "2026-01-31T09:15:01.000000Z",
    }
    section = text[text.index("### 4.2 Checkpoints") : text.index("### 4.3 ")]
    assert set(re.findall(r'^  "(\w+)":', section, re.MULTILINE)) == set(documented)
    expected = hashlib.sha256(b"finance/checkpoint/v1\n" + rfc8785.dumps(documented)).digest()
    assert body_hash(body) == expected
