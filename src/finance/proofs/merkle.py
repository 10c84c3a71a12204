"""RFC 9162 (RFC 6962) Merkle trees over the ledger's chain hashes (docs/proofs.md, 2.A-2.G).

    leaf_hash(d)   = SHA-256(0x00 || d)          d is a 32-byte chain hash
    node_hash(l,r) = SHA-256(0x01 || l || r)
    MTH(D[n])      = node_hash(MTH(D[0:k]), MTH(D[k:n])),  k = largest power of two < n

Builders (`root`, `inclusion_path`, `consistency_proof`, `MerkleLog`) run on our own data and
raise `ValueError` when called wrongly. Verifiers run on untrusted input and raise `ProofError`;
they take every size and root as given, so callers must take `tree_size` and `root` from a
verified, signed checkpoint, never from the proof itself (proofs.md 2.G: an inclusion proof
re-labelled with another tree size can still verify).

Every range whose root the RFC recursion needs is "right-aligned": it starts at a multiple of the
smallest power of two >= its length. Such a range is the perfect subtrees for the set bits of its
length, largest first, folded from the right; that is why one frontier fold (`_fold_right`)
serves `root`, `Frontier.root` and `MerkleLog`, and why no function recurses deeper than log n.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from finance.proofs.errors import InvalidProof

HASH_BYTES: Final = 32
# A tree of fewer than 2^64 leaves has inclusion and consistency proofs of at most 64 hashes; a
# longer proof is garbage or an attempt to make the verifier work (C2SP caps witnesses at 63).
PROOF_HASHES_MAX: Final = 64
# RFC 9162 sizes and indices are uint64. Bounding them keeps Python's unbounded ints from turning
# a hostile size into a long shift loop.
TREE_SIZE_MAX: Final = 2**64 - 1

LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

# Computes MTH(D[lo:hi]) for a right-aligned range; lets the proof builders run unchanged on a
# plain list of leaves or on MerkleLog's cached subtrees.
RangeRoot = Callable[[int, int], bytes]


class ProofError(InvalidProof):
    """A proof, root or frontier did not verify; `reason` says which check failed."""


def leaf_hash(data: bytes) -> bytes:
    """The Merkle leaf of one chain hash. The 0x00 prefix keeps leaves apart from nodes."""
    if len(data) != HASH_BYTES:
        raise ValueError(f"leaf input must be {HASH_BYTES} bytes, got {len(data)}")
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node. The 0x01 prefix stops a node from being passed off as a leaf."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The RFC's k: the largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold_right(subtree_roots: Sequence[bytes]) -> bytes:
    """Root of a right-aligned range from its perfect-subtree roots, largest first."""
    if not subtree_roots:
        return EMPTY_ROOT
    result = subtree_roots[-1]
    for left in reversed(subtree_roots[:-1]):
        result = node_hash(left, result)
    return result


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_BYTES:
        raise ValueError(f"{what} must be {HASH_BYTES} bytes, got {len(value)}")


def _check_leaves(leaf_hashes: Sequence[bytes]) -> None:
    for position, value in enumerate(leaf_hashes):
        _check_hash(value, f"leaf hash {position}")


# --- Compact range ("frontier", proofs.md 2.F) -------------------------------------------------


class Frontier:
    """The perfect-subtree roots covering leaves [0, size), one per set bit of size, largest
    first. It is all a verifier needs to go on appending leaves and to compute the root, which is
    how a range proof starts mid-ledger without the earlier entries."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int, hashes: Iterable[bytes]) -> None:
        # Built from untrusted packages, so the shape is checked here, before any hashing: a
        # frontier of the wrong length would otherwise fail late, or not at all in append.
        _check_size(size, "frontier size")
        stack = list(hashes)
        if len(stack) != size.bit_count():
            raise ProofError(f"frontier of size {size} needs {size.bit_count()} hashes")
        for value in stack:
            _require_hash(value, "frontier hash")
        self._size = size
        self._hashes = stack

    @classmethod
    def empty(cls) -> Frontier:
        return cls(0, ())

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Largest subtree first (proofs.md 3.3 `left_frontier`)."""
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash; each trailing 1-bit of the new size merges two equal subtrees."""
        _check_hash(leaf, "leaf hash")
        if self._size >= TREE_SIZE_MAX:
            raise ValueError("frontier is full")
        self._hashes.append(leaf)
        self._size += 1
        carry = self._size
        while carry & 1 == 0:
            right = self._hashes.pop()
            self._hashes[-1] = node_hash(self._hashes[-1], right)
            carry >>= 1

    def root(self) -> bytes:
        """RFC 9162 MTH of every leaf appended so far."""
        return _fold_right(self._hashes)

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, hashes={len(self._hashes)})"


def frontier_of(leaf_hashes: Iterable[bytes]) -> Frontier:
    frontier = Frontier.empty()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier


# --- Building roots and proofs from a list of leaves -------------------------------------------


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 MTH in O(n) hashing and O(log n) memory: a frontier fold, no recursion."""
    return frontier_of(leaf_hashes).root()


def _list_range_root(leaf_hashes: Sequence[bytes]) -> RangeRoot:
    def range_root(lo: int, hi: int) -> bytes:
        frontier = Frontier.empty()
        for position in range(lo, hi):
            frontier.append(leaf_hashes[position])
        return frontier.root()

    return range_root


def inclusion_path(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[n]), leaf upward. O(n): each sibling is hashed once."""
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    _check_leaves(leaf_hashes)
    return _path(index, size, _list_range_root(leaf_hashes))


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(old_size, D[n]) where `leaf_hashes` is the new tree's leaves."""
    size = len(leaf_hashes)
    if not 0 < old_size <= size:
        raise ValueError(f"old size {old_size} must be in 1..{size}")
    _check_leaves(leaf_hashes)
    return _subproof(old_size, size, _list_range_root(leaf_hashes))


def _path(index: int, size: int, range_root: RangeRoot) -> list[bytes]:
    """PATH unrolled top-down: the RFC appends each level's sibling after the deeper path, so the
    siblings are collected from the top and reversed at the end."""
    lo, hi = 0, size
    siblings: list[bytes] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            siblings.append(range_root(lo + k, hi))
            hi = lo + k
        else:
            siblings.append(range_root(lo, lo + k))
            lo += k
    siblings.reverse()
    return siblings


def _subproof(old_size: int, size: int, range_root: RangeRoot) -> list[bytes]:
    """SUBPROOF(m, D, true) unrolled top-down. `whole` is the RFC's b flag: while it holds, the
    old tree is a prefix sharing our left edge, so the verifier knows its root already."""
    lo, hi, m, whole = 0, size, old_size, True
    proof: list[bytes] = []
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(range_root(lo + k, hi))
            hi = lo + k
        else:
            proof.append(range_root(lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        proof.append(range_root(lo, hi))
    proof.reverse()
    return proof


# --- Verifying (untrusted input) ---------------------------------------------------------------


def _check_size(value: int, what: str) -> None:
    # bool is an int in Python; a JSON `true` must not pass as tree size 1.
    if type(value) is not int or not 0 <= value <= TREE_SIZE_MAX:
        raise ProofError(f"{what} must be an integer in 0..2^64-1")


def _require_hash(value: bytes, what: str) -> None:
    # Without this, the RFC algorithm accepts an empty leaf against an empty root (vector
    # inclusion/single-entry/empty-root-and-leaf.json).
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise ProofError(f"{what} must be {HASH_BYTES} bytes")


def _require_proof(proof: Sequence[bytes]) -> None:
    if len(proof) > PROOF_HASHES_MAX:
        raise ProofError(f"proof has more than {PROOF_HASHES_MAX} hashes")
    for value in proof:
        _require_hash(value, "proof hash")


def _shift_to_odd(fn: int, sn: int) -> tuple[int, int]:
    """Skip the levels where fn's node is a lone right edge promoted without a sibling."""
    while fn & 1 == 0 and fn != 0:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, path: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2. Returns None when `leaf_hash` is leaf `leaf_index` of the tree of size
    `tree_size` whose root is `root`; raises ProofError otherwise."""
    _check_size(leaf_index, "leaf index")
    _check_size(tree_size, "tree size")
    _require_hash(leaf_hash, "leaf hash")
    _require_hash(root, "root")
    _require_proof(path)
    if leaf_index >= tree_size:
        raise ProofError(f"leaf index {leaf_index} is outside a tree of size {tree_size}")
    if _root_from_path(leaf_index, tree_size, leaf_hash, path) != root:
        raise ProofError("inclusion proof does not lead to the root")


def _root_from_path(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    fn, sn, result = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            fn, sn = _shift_to_odd(fn, sn)
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return result


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2 with the transparency-dev guards: the tree of size `size2` and root
    `root2` extends the tree of size `size1` and root `root1`, or ProofError."""
    _check_size(size1, "size1")
    _check_size(size2, "size2")
    _require_hash(root1, "root1")
    _require_hash(root2, "root2")
    _require_proof(proof)
    # Meaningless (any tree extends the empty one), and load-bearing: size1 - 1 == -1 would keep
    # its low bit set through every right shift below and loop forever.
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if size1 > size2:
        raise ProofError(f"size1 {size1} is larger than size2 {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if root1 != root2:
            raise ProofError("equal sizes with different roots")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    old_root, new_root = _roots_from_consistency(size1, size2, root1, proof)
    if old_root != root1 or new_root != root2:
        raise ProofError("consistency proof does not lead to both roots")


def _roots_from_consistency(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    # When size1 is a power of two the old tree is one subtree of the new one; the RFC leaves its
    # root out of the proof because the verifier already holds it.
    path = [root1, *proof] if size1.bit_count() == 1 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_root = new_root = path[0]
    for sibling in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            old_root = node_hash(sibling, old_root)
            new_root = node_hash(sibling, new_root)
            fn, sn = _shift_to_odd(fn, sn)
        else:
            new_root = node_hash(new_root, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    return old_root, new_root


# --- An incremental log that answers for every historical size ---------------------------------


class MerkleLog:
    """An append-only tree that keeps every complete subtree, so roots and proofs for any past
    size cost O(log^2 n) hashes instead of the O(n) of the list functions.

    Storage: level h is one bytearray of the 32-byte roots of the complete subtrees
    [i * 2^h, (i + 1) * 2^h); level 0 holds the leaves. That is n + n/2 + n/4 + ... < 2n hashes,
    about 64 bytes per leaf (64 MB for 1,000,000 leaves, plus bytearray growth slack) and no
    per-hash Python objects. Incomplete subtrees are never stored: they change with each append
    and are recomputed from at most log n stored ones. Not thread-safe: one writer, as in the
    ledger's per-ledger append lock.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        _check_hash(leaf, "leaf hash")
        if self._size >= TREE_SIZE_MAX:
            raise ValueError("log is full")
        self._levels[0] += leaf
        self._size += 1
        level, index = 0, self._size - 1
        # A right child completes its parent; keep climbing while each new node is a right child.
        while index & 1:
            parent = node_hash(self._node(level, index - 1), self._node(level, index))
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level + 1] += parent
            level, index = level + 1, index >> 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for leaf in leaf_hashes:
            self.append(leaf)

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self._size:
            raise ValueError(f"leaf index {index} is outside a log of size {self._size}")
        return self._node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (default: all of them)."""
        size = self._size if size is None else size
        self._check_size(size)
        return self._range_root(0, size)

    def inclusion_path(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of size {size}")
        return _path(index, size, self._range_root)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        self._check_size(new_size)
        if not 0 < old_size <= new_size:
            raise ValueError(f"old size {old_size} must be in 1..{new_size}")
        return _subproof(old_size, new_size, self._range_root)

    def frontier(self, size: int) -> Frontier:
        """The compact range [0, size), e.g. a range proof's `left_frontier`."""
        self._check_size(size)
        return Frontier(size, self._perfect_roots(0, size))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise ValueError(f"size {size} is outside 0..{self._size}")

    def _node(self, level: int, index: int) -> bytes:
        start = index * HASH_BYTES
        return bytes(self._levels[level][start : start + HASH_BYTES])

    def _perfect_roots(self, lo: int, hi: int) -> list[bytes]:
        """The complete subtrees of a right-aligned range, one per set bit of its length."""
        roots: list[bytes] = []
        position = lo
        for level in reversed(range((hi - lo).bit_length())):
            if (hi - lo) >> level & 1:
                if position % (1 << level):
                    raise ValueError(f"range [{lo}, {hi}) is not right-aligned")
                roots.append(self._node(level, position >> level))
                position += 1 << level
        return roots

    def _range_root(self, lo: int, hi: int) -> bytes:
        return _fold_right(self._perfect_roots(lo, hi))
