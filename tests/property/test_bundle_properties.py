"""Properties of finance.proofs.bundle: any file set builds into a bundle that reads back to the
same files, and damaging a bundle anywhere either changes nothing the manifest covers (tar
metadata such as mtime) or is refused with a BundleError, never another exception and never
different files."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from finance.proofs.bundle import BundleError, CheckpointRef, build_bundle, read_bundle
from finance.proofs.signatures import TrustStore
from finance.proofs.signing import Algorithm, public_key_pem
from tests.signers import MemorySigner

SIGNER = MemorySigner()
TRUST = TrustStore.from_pems(
    [(public_key_pem(SIGNER.public_key_spki()).encode(), Algorithm.ED25519)]
)
REF = CheckpointRef(7, 64, b"\x05" * 32, datetime(2026, 1, 1, tzinfo=UTC))

segments = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,11}", fullmatch=True)
paths = st.lists(segments, min_size=1, max_size=3).map("/".join)
file_sets = st.dictionaries(paths, st.binary(max_size=300), max_size=6).filter(
    lambda files: (
        not any(other.startswith(path + "/") for path in files for other in files)
        and not {"manifest.json", "manifest.sig.json"} & set(files)
    )
)


def build(files: dict[str, bytes]) -> bytes:
    return build_bundle("acme", 3, 40, REF, files, [("finance.local", SIGNER)], "test")[1]


@settings(max_examples=60, deadline=None)
@given(file_sets)
def test_every_file_set_round_trips_deterministically(files: dict[str, bytes]) -> None:
    data = build(files)
    assert build(dict(reversed(list(files.items())))) == data
    assert dict(read_bundle(data, TRUST).files) == files


FILES = {"entries/00000000003-00000000040.jsonl": b"{}\n" * 40, "proofs/range-3-40.json": b"{}"}
GOOD = build(FILES)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=4),
    st.one_of(st.none(), st.integers(0, len(GOOD) - 1)),
)
def test_damage_is_refused_or_harmless(
    edits: list[tuple[int, int]], truncate_at: int | None
) -> None:
    damaged = bytearray(GOOD)
    for position, value in edits:
        damaged[position] = value
    if truncate_at is not None:
        del damaged[truncate_at:]
    try:
        bundle = read_bundle(bytes(damaged), TRUST)
    except BundleError:
        return
    assert dict(bundle.files) == FILES
