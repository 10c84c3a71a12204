"""Where the hashes of a Merkle proof come from when the tree is kept as tiles (docs/proofs.md
section 4). Pure arithmetic: no I/O; the caller fetches what `TileLayout.reads` names and
hands the hashes back to `TileLayout.range_roots`.

What is stored: the roots of the perfect subtrees whose height is a positive multiple of the tile
height T (8 in the database): one hash per 2^8 leaves, one per 2^16 leaves, and so on, about
n / 255 hashes for n leaves. Every other perfect subtree of height h = q*T + r (0 <= r < T) is
recomputed from the 2^r stored roots of height q*T below it, or from its 2^r leaves when q == 0.
So any subtree costs fewer than 2^T reads, and an inclusion path, a consistency proof or a
frontier, which need at most two subtrees per height, cost O(2^T * log n / T) reads in a handful
of batched queries, whatever the size of the ledger.

Every range whose root a proof needs is "right-aligned": it starts at a multiple of the smallest
power of two >= its length, so it is exactly the perfect subtrees for the set bits of its length,
largest first, folded from the right (as in `merkle`). Ranges are half-open `(lo, hi)` pairs of
leaf indices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from finance.proofs.merkle import HASH_BYTES, node_hash

TILE_HEIGHT: Final = 8

Range = tuple[int, int]


@dataclass(frozen=True, order=True)
class Subtree:
    """The perfect subtree over leaves [index * 2^height, (index + 1) * 2^height)."""

    height: int
    index: int

    def __post_init__(self) -> None:
        if self.height < 0 or self.index < 0:
            raise ValueError(f"invalid subtree ({self.height}, {self.index})")

    @property
    def start(self) -> int:
        return self.index << self.height

    @property
    def end(self) -> int:
        return (self.index + 1) << self.height


def range_subtrees(lo: int, hi: int) -> tuple[Subtree, ...]:
    """The perfect subtrees of the right-aligned range [lo, hi), largest first."""
    if not 0 <= lo < hi:
        raise ValueError(f"range [{lo}, {hi}) is empty or negative")
    length = hi - lo
    if lo % (1 << (length - 1).bit_length()):
        raise ValueError(f"range [{lo}, {hi}) is not right-aligned")
    found = []
    position = lo
    for height in reversed(range(length.bit_length())):
        if length >> height & 1:
            found.append(Subtree(height, position >> height))
            position += 1 << height
    return tuple(found)


def _split(n: int) -> int:
    """RFC 9162's k: the largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> tuple[Range, ...]:
    """The ranges whose roots make up PATH(index, D[size]) (RFC 9162 2.1.3.1), leaf upward."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    lo, hi = 0, size
    ranges: list[Range] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return tuple(ranges)


def consistency_ranges(old_size: int, new_size: int) -> tuple[Range, ...]:
    """The ranges whose roots make up PROOF(old_size, D[new_size]) (RFC 9162 2.1.4.1)."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"old size {old_size} must be in 1..{new_size}")
    lo, hi, m, whole = 0, new_size, old_size, True
    ranges: list[Range] = []
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        # The old tree is not a prefix sharing our left edge: its last subtree must be listed.
        ranges.append((lo, hi))
    ranges.reverse()
    return tuple(ranges)


def frontier_ranges(size: int) -> tuple[Range, ...]:
    """One range per hash of the frontier of [0, size) (docs/proofs.md section 4.1)."""
    if size == 0:
        return ()
    return tuple((subtree.start, subtree.end) for subtree in range_subtrees(0, size))


@dataclass(frozen=True)
class Reads:
    """What to fetch: stored subtree roots, and Merkle leaf hashes by leaf index."""

    nodes: frozenset[Subtree] = field(default_factory=frozenset)
    leaves: frozenset[int] = field(default_factory=frozenset)

    def __len__(self) -> int:
        return len(self.nodes) + len(self.leaves)


class TileLayout:
    """Which subtrees are stored (heights that are positive multiples of `tile_height`) and how
    every other one is rebuilt from them. Tests use small tile heights to reach several tile
    levels with few leaves; the database uses TILE_HEIGHT."""

    __slots__ = ("tile_height",)

    def __init__(self, tile_height: int = TILE_HEIGHT) -> None:
        if not 1 <= tile_height <= 16:
            raise ValueError("tile height must be in 1..16")
        self.tile_height = tile_height

    def is_stored(self, height: int) -> bool:
        return height > 0 and height % self.tile_height == 0

    def _parts(self, subtree: Subtree) -> tuple[int, range]:
        """The height and indices of the stored roots (or leaves, height 0) it is built from."""
        base = subtree.height - subtree.height % self.tile_height
        spread = subtree.height - base
        first = subtree.index << spread
        return base, range(first, first + (1 << spread))

    def reads(self, ranges: Iterable[Range]) -> Reads:
        """Every stored root and leaf that the roots of `ranges` are computed from."""
        nodes: set[Subtree] = set()
        leaves: set[int] = set()
        for lo, hi in ranges:
            for subtree in range_subtrees(lo, hi):
                base, indices = self._parts(subtree)
                if base == 0:
                    leaves.update(indices)
                else:
                    nodes.update(Subtree(base, index) for index in indices)
        return Reads(frozenset(nodes), frozenset(leaves))

    def subtree_root(
        self, subtree: Subtree, nodes: Mapping[Subtree, bytes], leaves: Mapping[int, bytes]
    ) -> bytes:
        base, indices = self._parts(subtree)
        try:
            level = [leaves[i] if base == 0 else nodes[Subtree(base, i)] for i in indices]
        except KeyError as exc:
            raise ValueError(f"hash of {exc.args[0]} at height {base} was not fetched") from exc
        for value in level:
            if len(value) != HASH_BYTES:
                raise ValueError(f"a fetched hash is {len(value)} bytes, not {HASH_BYTES}")
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        return level[0]

    def range_roots(
        self,
        ranges: Sequence[Range],
        nodes: Mapping[Subtree, bytes],
        leaves: Mapping[int, bytes],
    ) -> list[bytes]:
        """The root of each range, in order, from the fetched hashes (ValueError if one is
        missing): a proof's hashes when `ranges` is one of the `*_ranges` above."""
        roots = []
        for lo, hi in ranges:
            parts = [self.subtree_root(s, nodes, leaves) for s in range_subtrees(lo, hi)]
            result = parts[-1]
            for left in reversed(parts[:-1]):
                result = node_hash(left, result)
            roots.append(result)
        return roots

    def completed(self, old_size: int, new_size: int) -> list[Subtree]:
        """The stored subtrees that growing the tree from old_size to new_size completes, in
        the order they complete (by end, then height)."""
        if not 0 <= old_size <= new_size:
            raise ValueError(f"cannot grow a tree from {old_size} to {new_size}")
        found: list[Subtree] = []
        height = self.tile_height
        while (1 << height) <= new_size:
            first = old_size >> height  # the first index whose end is past old_size
            found.extend(Subtree(height, i) for i in range(first, new_size >> height))
            height += self.tile_height
        found.sort(key=lambda s: (s.end, s.height))
        return found


class TileBuilder:
    """Extends the frontier of [0, size) leaf by leaf, as a sealer does with new entries, and
    records the root of every stored subtree an append completes. Only the frontier
    (popcount(size) hashes) is kept, so a sealer never needs the earlier leaves."""

    __slots__ = ("_completed", "_frontier", "_layout", "_size")

    def __init__(
        self, size: int, frontier: Sequence[bytes], layout: TileLayout | None = None
    ) -> None:
        if size < 0 or len(frontier) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {size.bit_count()} hashes")
        for value in frontier:
            if len(value) != HASH_BYTES:
                raise ValueError(f"frontier hashes are {HASH_BYTES} bytes")
        self._size = size
        self._frontier = list(frontier)
        self._layout = layout or TileLayout()
        self._completed: list[tuple[Subtree, bytes]] = []

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        return tuple(self._frontier)

    def append(self, leaf: bytes) -> None:
        if len(leaf) != HASH_BYTES:
            raise ValueError(f"leaf hashes are {HASH_BYTES} bytes")
        self._frontier.append(leaf)
        self._size += 1
        height, carry = 0, self._size
        # Each trailing zero bit of the new size merges the two youngest subtrees.
        while carry & 1 == 0:
            right = self._frontier.pop()
            self._frontier[-1] = node_hash(self._frontier[-1], right)
            height, carry = height + 1, carry >> 1
            if self._layout.is_stored(height):
                subtree = Subtree(height, (self._size >> height) - 1)
                self._completed.append((subtree, self._frontier[-1]))

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def take_completed(self) -> list[tuple[Subtree, bytes]]:
        """The stored subtrees completed since the last call, in completion order."""
        taken, self._completed = self._completed, []
        return taken

    def root(self) -> bytes:
        if not self._frontier:
            raise ValueError("the empty tree has no checkpoint root")
        result = self._frontier[-1]
        for left in reversed(self._frontier[:-1]):
            result = node_hash(left, result)
        return result
