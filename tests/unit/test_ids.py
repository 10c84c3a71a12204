from __future__ import annotations

import uuid

from finance.services.ids import new_entry_id


def test_entry_ids_are_plain_uuid7_in_creation_order() -> None:
    ids = [new_entry_id() for _ in range(10_000)]
    assert {type(entry_id) for entry_id in ids} == {uuid.UUID}
    assert {entry_id.version for entry_id in ids} == {7}
    # Time-ordered, and ordered within a millisecond too: consecutive entries are neighbours
    # in the (tenant_id, id) indexes.
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
