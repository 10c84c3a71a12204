"""finance.proofs.tiles agrees with finance.proofs.merkle.MerkleLog: proofs, frontiers and roots
assembled from stored tiles are the ones the reference log computes, for every size, and they
read only O(log n) hashes, all from the sealed part of the tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.proofs.merkle import MerkleLog, leaf_hash
from finance.proofs.tiles import (
    TILE_HEIGHT,
    Reads,
    Subtree,
    TileBuilder,
    TileLayout,
    consistency_ranges,
    frontier_ranges,
    inclusion_ranges,
    range_subtrees,
)

SMALL_MAX = 700
BIG = 65_536 + 600


def leaves_of(size: int) -> list[bytes]:
    return [leaf_hash(hashlib.sha256(i.to_bytes(8, "big")).digest()) for i in range(size)]


class Store:
    """What the database would hold after sealing `size` leaves: the leaves and the stored
    subtree roots the builder emitted."""

    def __init__(self, leaves: list[bytes], size: int, layout: TileLayout, cuts: list[int]):
        builder = TileBuilder(0, (), layout)
        self.nodes: dict[Subtree, bytes] = {}
        position = 0
        for cut in [*sorted(c for c in cuts if 0 < c < size), size]:
            builder.extend(leaves[position:cut])
            completed = builder.take_completed()
            assert [s for s, _ in completed] == layout.completed(position, cut)
            for subtree, value in completed:
                assert subtree not in self.nodes
                self.nodes[subtree] = value
            position = cut
        self.builder = builder
        self.leaves = dict(enumerate(leaves[:size]))
        self.layout = layout
        self.size = size

    def fetch(self, ranges: tuple[tuple[int, int], ...]) -> list[bytes]:
        reads = self.layout.reads(ranges)
        self.check_reads(reads)
        nodes = {s: self.nodes[s] for s in reads.nodes}
        leaves = {i: self.leaves[i] for i in reads.leaves}
        return self.layout.range_roots(ranges, nodes, leaves)

    def check_reads(self, reads: Reads) -> None:
        """Reads touch only what sealing stored, and few of them: fewer than 2^T per height
        pair of subtrees, so O(log n)."""
        assert all(s.end <= self.size and self.layout.is_stored(s.height) for s in reads.nodes)
        assert all(0 <= i < self.size for i in reads.leaves)
        levels = self.size.bit_length() // self.layout.tile_height + 1
        assert len(reads) <= 2 * (1 << self.layout.tile_height) * levels


@pytest.fixture(scope="module")
def big_log() -> tuple[list[bytes], MerkleLog]:
    leaves = leaves_of(BIG)
    return leaves, MerkleLog(leaves)


def check_everything(store: Store, log: MerkleLog, probes: list[int]) -> None:
    size = store.size
    assert store.builder.root() == log.root(size)
    assert store.builder.frontier == log.frontier(size).hashes
    assert store.fetch(frontier_ranges(size)) == list(log.frontier(size).hashes)
    assert store.fetch(((0, size),)) == [log.root(size)]
    for probe in probes:
        index = probe % size
        assert store.fetch(inclusion_ranges(index, size)) == log.inclusion_path(index, size)
        old = probe % size + 1
        assert store.fetch(consistency_ranges(old, size)) == log.consistency_proof(old, size)
        # Frontiers and roots of every earlier size come from the same tiles.
        assert store.fetch(frontier_ranges(old)) == list(log.frontier(old).hashes)


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=SMALL_MAX),
    tile_height=st.sampled_from([1, 2, 3, 4, 8]),
    cuts=st.lists(st.integers(min_value=1, max_value=SMALL_MAX), max_size=6),
    probes=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=6),
)
def test_proofs_from_tiles_match_the_merkle_log(
    size: int, tile_height: int, cuts: list[int], probes: list[int]
) -> None:
    leaves = leaves_of(size)
    store = Store(leaves, size, TileLayout(tile_height), cuts)
    check_everything(store, MerkleLog(leaves), probes)


def test_every_small_size_and_index_with_two_level_tiles() -> None:
    """Exhaustive below 70 leaves with T=2: subtrees of 1, 2 and 3 tile levels."""
    leaves = leaves_of(70)
    log = MerkleLog(leaves)
    layout = TileLayout(2)
    for size in range(1, 71):
        store = Store(leaves, size, layout, [size // 3, size // 2])
        for index in range(size):
            path = store.fetch(inclusion_ranges(index, size))
            assert path == log.inclusion_path(index, size)
            proof = store.fetch(consistency_ranges(index + 1, size))
            assert proof == log.consistency_proof(index + 1, size)


@pytest.mark.parametrize(
    "size", [255, 256, 257, 511, 512, 513, 65_535, 65_536, 65_537, 65_536 + 256, BIG]
)
def test_sizes_around_tile_boundaries(big_log: tuple[list[bytes], MerkleLog], size: int) -> None:
    leaves, log = big_log
    store = Store(leaves, size, TileLayout(TILE_HEIGHT), [size // 2, 65_535, 256, 300])
    probes = [0, 1, 254, 255, 256, 257, 65_535, 65_536, size - 1, size // 2]
    check_everything(store, log, probes)
    if size >= 65_536:
        assert Subtree(16, 0) in store.nodes
        assert store.nodes[Subtree(16, 0)] == log.root(65_536)


def test_reads_at_65536_leaves_stay_small(big_log: tuple[list[bytes], MerkleLog]) -> None:
    """One inclusion path in a 65,537-leaf tree: a few hundred hashes, not 65,537 leaves."""
    layout = TileLayout()
    reads = layout.reads(inclusion_ranges(70, 65_537))
    assert len(reads) < 520
    assert reads.nodes <= {Subtree(8, i) for i in range(256)}


@settings(max_examples=200, deadline=None)
@given(
    old=st.integers(min_value=0, max_value=5_000),
    grow=st.integers(min_value=0, max_value=5_000),
    tile_height=st.sampled_from([1, 2, 3, 8]),
)
def test_completed_lists_each_stored_subtree_ending_in_the_batch(
    old: int, grow: int, tile_height: int
) -> None:
    layout = TileLayout(tile_height)
    new = old + grow
    expected = sorted(
        (
            Subtree(h, i)
            for h in range(tile_height, new.bit_length() + 1, tile_height)
            for i in range(new >> h)
            if old < Subtree(h, i).end <= new
        ),
        key=lambda s: (s.end, s.height),
    )
    assert layout.completed(old, new) == expected


@settings(max_examples=300, deadline=None)
@given(lo_exp=st.integers(0, 20), k=st.integers(0, 50), length=st.integers(1, 2**20))
def test_range_subtrees_cover_the_range_exactly(lo_exp: int, k: int, length: int) -> None:
    block = 1 << (length - 1).bit_length()
    lo = k * block
    subtrees = range_subtrees(lo, lo + length)
    assert [s.height for s in subtrees] == sorted((s.height for s in subtrees), reverse=True)
    position = lo
    for subtree in subtrees:
        assert subtree.start == position
        position = subtree.end
    assert position == lo + length
    assert len(subtrees) == length.bit_count()


def test_misaligned_and_empty_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="right-aligned"):
        range_subtrees(1, 3)
    with pytest.raises(ValueError, match="empty"):
        range_subtrees(4, 4)
    with pytest.raises(ValueError, match="outside"):
        inclusion_ranges(5, 5)
    with pytest.raises(ValueError, match="old size"):
        consistency_ranges(0, 5)
    with pytest.raises(ValueError, match="old size"):
        consistency_ranges(6, 5)


def test_a_missing_or_malformed_hash_is_an_error_not_a_wrong_root() -> None:
    layout = TileLayout(2)
    leaves = leaves_of(16)
    ranges = inclusion_ranges(3, 16)
    reads = layout.reads(ranges)
    nodes = {s: MerkleLog(leaves).root(s.end) for s in reads.nodes if s.start == 0}
    with pytest.raises(ValueError, match="not fetched"):
        layout.range_roots(ranges, nodes, {i: leaves[i] for i in reads.leaves})
    short = dict.fromkeys(reads.leaves, b"x")
    with pytest.raises(ValueError, match="bytes"):
        layout.range_roots(ranges, {}, short)


def test_builder_refuses_a_frontier_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="frontier"):
        TileBuilder(3, [bytes(32)])
    with pytest.raises(ValueError, match="32"):
        TileBuilder(1, [b"short"])
    with pytest.raises(ValueError, match="empty"):
        TileBuilder(0, ()).root()


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 600), more=st.integers(0, 600), tile_height=st.sampled_from([2, 8]))
def test_a_builder_resumed_from_a_stored_frontier_continues_the_same_tree(
    size: int, more: int, tile_height: int
) -> None:
    """The sealer keeps only the frontier between rounds; resuming from it must give the same
    roots and tiles as never stopping."""
    leaves = leaves_of(size + more)
    layout = TileLayout(tile_height)
    first = TileBuilder(0, (), layout)
    first.extend(leaves[:size])
    early = first.take_completed()
    resumed = TileBuilder(first.size, first.frontier, layout)
    resumed.extend(leaves[size:])
    straight = TileBuilder(0, (), layout)
    straight.extend(leaves)
    assert resumed.root() == straight.root() == MerkleLog(leaves).root()
    assert early + resumed.take_completed() == straight.take_completed()
