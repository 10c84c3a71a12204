"""Properties of finance.proofs.merkle: generated proofs verify, tampered proofs fail, and the
frontier and the incremental log agree with the list functions (docs/proofs.md 2.B-2.G)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from finance.proofs.merkle import (
    Frontier,
    MerkleLog,
    ProofError,
    consistency_proof,
    frontier_of,
    inclusion_path,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

SIZE_MAX = 300
EXHAUSTIVE_SIZE_MAX = 40
MILLION = 1_000_000

sizes = st.integers(min_value=1, max_value=SIZE_MAX)
salts = st.binary(max_size=4)
hashes = st.binary(min_size=32, max_size=32)
slow_settings = settings(max_examples=40, deadline=None)


def leaves_of(size: int, salt: bytes = b"") -> list[bytes]:
    """Distinct leaf hashes, so no two subtrees are equal and swapping siblings always shows."""
    return [leaf_hash(hashlib.sha256(salt + i.to_bytes(8, "big")).digest()) for i in range(size)]


def fails(check: Callable[[], None]) -> bool:
    try:
        check()
    except ProofError:
        return True
    return False


def split(n: int) -> int:
    """RFC 9162's k, written the slow obvious way: the largest power of two below n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def inclusion_shape(index: int, size: int) -> tuple[str, ...] | None:
    """Which side of each k-split the leaf falls on, from the top: all an inclusion proof
    commits to. Two (index, size) labels with the same shape accept the same proof."""
    if not 0 <= index < size:
        return None
    lo, hi, sides = 0, size, []
    while hi - lo > 1:
        k = split(hi - lo)
        if index < lo + k:
            sides.append("L")
            hi = lo + k
        else:
            sides.append("R")
            lo += k
    return tuple(sides)


def consistency_shape(old: int, new: int) -> tuple[tuple[str, ...], bool] | None:
    """The SUBPROOF recursion's choices and final b flag: all a consistency proof commits to."""
    if not 0 < old < new:
        return None
    lo, hi, m, whole, sides = 0, new, old, True, []
    while m != hi - lo:
        k = split(hi - lo)
        if m <= k:
            sides.append("L")
            hi = lo + k
        else:
            sides.append("R")
            lo, m, whole = lo + k, m - k, False
    return tuple(sides), whole


def flip(proof: Sequence[bytes], item: int, byte: int, mask: int) -> list[bytes]:
    changed = bytearray(proof[item])
    changed[byte] ^= mask
    return [*proof[:item], bytes(changed), *proof[item + 1 :]]


# --- Generated proofs verify -------------------------------------------------------------------


@slow_settings
@given(size=sizes, salt=salts)
def test_every_inclusion_path_verifies(size: int, salt: bytes) -> None:
    leaves = leaves_of(size, salt)
    top = root(leaves)
    for index in range(size):
        path = inclusion_path(index, leaves)
        assert len(path) == len(inclusion_shape(index, size) or ())
        verify_inclusion(index, size, leaves[index], path, top)


@slow_settings
@given(size=sizes, salt=salts)
def test_every_consistency_proof_into_a_tree_verifies(size: int, salt: bytes) -> None:
    leaves = leaves_of(size, salt)
    log = MerkleLog(leaves)
    for old in range(1, size + 1):
        proof = consistency_proof(old, leaves)
        verify_consistency(old, size, log.root(old), log.root(), proof)


@pytest.mark.parametrize("size", range(1, EXHAUSTIVE_SIZE_MAX + 1))
def test_every_proof_between_every_pair_of_small_sizes_verifies(size: int) -> None:
    leaves = leaves_of(size)
    roots = [root(leaves[:n]) for n in range(size + 1)]
    assert len(set(roots)) == size + 1  # every prefix has its own root
    for index in range(size):
        path = inclusion_path(index, leaves)
        verify_inclusion(index, size, leaves[index], path, roots[size])
    for old in range(1, size + 1):
        proof = consistency_proof(old, leaves)
        verify_consistency(old, size, roots[old], roots[size], proof)


# --- Tampered inclusion proofs fail ------------------------------------------------------------


@st.composite
def inclusion_cases(draw: st.DrawFn) -> tuple[list[bytes], int, list[bytes]]:
    size = draw(st.integers(min_value=2, max_value=SIZE_MAX))
    leaves = leaves_of(size, draw(salts))
    index = draw(st.integers(min_value=0, max_value=size - 1))
    return leaves, index, inclusion_path(index, leaves)


@given(case=inclusion_cases(), data=st.data())
def test_inclusion_fails_with_any_byte_of_the_path_flipped(
    case: tuple[list[bytes], int, list[bytes]], data: st.DataObject
) -> None:
    leaves, index, path = case
    item = data.draw(st.integers(0, len(path) - 1))
    tampered = flip(path, item, data.draw(st.integers(0, 31)), data.draw(st.integers(1, 255)))
    with pytest.raises(ProofError):
        verify_inclusion(index, len(leaves), leaves[index], tampered, root(leaves))


@given(case=inclusion_cases(), data=st.data())
def test_inclusion_fails_with_a_path_element_dropped_or_added(
    case: tuple[list[bytes], int, list[bytes]], data: st.DataObject
) -> None:
    leaves, index, path = case
    top, size = root(leaves), len(leaves)
    item = data.draw(st.integers(0, len(path) - 1))
    dropped = [*path[:item], *path[item + 1 :]]
    at = data.draw(st.integers(0, len(path)))
    added = [*path[:at], data.draw(hashes), *path[at:]]
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaves[index], dropped, top)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaves[index], added, top)


@given(case=inclusion_cases(), data=st.data())
def test_inclusion_fails_for_another_index(
    case: tuple[list[bytes], int, list[bytes]], data: st.DataObject
) -> None:
    leaves, index, path = case
    other = data.draw(st.integers(0, 2 * len(leaves)).filter(lambda value: value != index))
    with pytest.raises(ProofError):
        verify_inclusion(other, len(leaves), leaves[index], path, root(leaves))


@given(case=inclusion_cases(), data=st.data())
def test_inclusion_binds_the_path_shape_not_the_tree_size(
    case: tuple[list[bytes], int, list[bytes]], data: st.DataObject
) -> None:
    """proofs.md 2.G: a path re-labelled with another tree size is accepted exactly when that
    size puts the leaf on the same sides of the same splits; against the real root of the
    claimed size it always fails, which is why size and root come only from the checkpoint."""
    leaves, index, path = case
    size = len(leaves)
    other = data.draw(st.integers(1, 2 * SIZE_MAX).filter(lambda value: value != size))
    relabelled = not fails(
        lambda: verify_inclusion(index, other, leaves[index], path, root(leaves))
    )
    assert relabelled == (inclusion_shape(index, other) == inclusion_shape(index, size))
    # The genuine tree of the claimed size: ours cut short, or ours with more leaves after it.
    genuine = leaves[:other] + leaves_of(other, b"other")[size:]
    with pytest.raises(ProofError):
        verify_inclusion(index, other, leaves[index], path, root(genuine))


def test_index_0_of_3_relabelled_as_size_4_verifies_against_the_size_3_root() -> None:
    """The exact case of proofs.md 2.G. The RFC verifier cannot refuse it: the path [leaf 1,
    leaf 2] of a 3-leaf tree has the same shape as [leaf 1, node(2, 3)] of a 4-leaf tree, and
    nothing in a proof says whether a hash is a leaf or a node. Only a signed tree size stops it."""
    leaves = leaves_of(4)
    path = inclusion_path(0, leaves[:3])
    verify_inclusion(0, 3, leaves[0], path, root(leaves[:3]))
    verify_inclusion(0, 4, leaves[0], path, root(leaves[:3]))
    with pytest.raises(ProofError, match="does not lead to the root"):
        verify_inclusion(0, 4, leaves[0], path, root(leaves))


# --- Tampered consistency proofs fail ----------------------------------------------------------


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[MerkleLog, int, list[bytes]]:
    size = draw(st.integers(min_value=2, max_value=SIZE_MAX))
    log = MerkleLog(leaves_of(size, draw(salts)))
    old = draw(st.integers(min_value=1, max_value=size - 1))
    return log, old, log.consistency_proof(old, size)


def extended(log: MerkleLog, size: int) -> MerkleLog:
    """The genuine log of another size: this one cut short, or with more leaves after it."""
    mine = [log.leaf(index) for index in range(min(size, log.size))]
    return MerkleLog(mine + leaves_of(size, b"other")[log.size :])


@given(case=consistency_cases(), data=st.data())
def test_consistency_fails_with_any_byte_flipped_or_element_dropped_or_added(
    case: tuple[MerkleLog, int, list[bytes]], data: st.DataObject
) -> None:
    log, old, proof = case
    item = data.draw(st.integers(0, len(proof) - 1))
    at = data.draw(st.integers(0, len(proof)))
    tampered = [
        flip(proof, item, data.draw(st.integers(0, 31)), data.draw(st.integers(1, 255))),
        [*proof[:item], *proof[item + 1 :]],
        [*proof[:at], data.draw(hashes), *proof[at:]],
    ]
    for bad in tampered:
        with pytest.raises(ProofError):
            verify_consistency(old, log.size, log.root(old), log.root(), bad)


@given(case=consistency_cases(), data=st.data())
def test_consistency_binds_the_proof_shape_not_the_sizes(
    case: tuple[MerkleLog, int, list[bytes]], data: st.DataObject
) -> None:
    """As for inclusion: re-labelled sizes pass only with the same recursion shape, and never
    against the genuine roots of the claimed sizes."""
    log, old, proof = case
    new = log.size
    # Changing only the new size keeps the shape about one time in five, so it gets its own
    # branch; changing the old size almost never does.
    change = data.draw(st.sampled_from(["old", "new", "both"]))
    old2 = old if change == "new" else data.draw(st.integers(0, new))
    new2 = new if change == "old" else data.draw(st.integers(max(old2, 1), 2 * SIZE_MAX))
    assume((old2, new2) != (old, new))
    relabelled = not fails(lambda: verify_consistency(old2, new2, log.root(old), log.root(), proof))
    assert relabelled == (consistency_shape(old2, new2) == consistency_shape(old, new))
    genuine = extended(log, new2)
    with pytest.raises(ProofError):
        verify_consistency(old2, new2, genuine.root(old2), genuine.root(), proof)


def test_consistency_from_1_into_3_relabelled_as_into_4_verifies_against_the_size_3_root() -> None:
    """The consistency twin of proofs.md 2.G: PROOF(1, D[3]) = [leaf 1, leaf 2] has the shape of
    PROOF(1, D[4]) = [leaf 1, node(2, 3)], so the sizes must come from signed checkpoints too."""
    leaves = leaves_of(4)
    proof = consistency_proof(1, leaves[:3])
    roots = [root(leaves[:n]) for n in range(5)]
    verify_consistency(1, 3, roots[1], roots[3], proof)
    verify_consistency(1, 4, roots[1], roots[3], proof)
    with pytest.raises(ProofError, match="both roots"):
        verify_consistency(1, 4, roots[1], roots[4], proof)


# --- Frontier (compact range) ------------------------------------------------------------------


@slow_settings
@given(size=sizes, salt=salts)
def test_frontier_root_equals_root_after_every_append(size: int, salt: bytes) -> None:
    leaves = leaves_of(size, salt)
    frontier = Frontier.empty()
    for count, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.size == count
        assert len(frontier.hashes) == count.bit_count()
        assert frontier.root() == root(leaves[:count])
    rebuilt = Frontier(size, frontier.hashes)
    assert rebuilt.root() == frontier_of(leaves).root() == root(leaves)


@given(size=sizes, salt=salts, data=st.data())
def test_range_proof_from_a_frontier_ties_to_the_checkpoint(
    size: int, salt: bytes, data: st.DataObject
) -> None:
    """proofs.md 2.F / 3.3 step 6: frontier of [0, start) + entries [start, end] gives
    root(end + 1), which a consistency proof ties to the checkpoint; a wrong frontier cannot."""
    log = MerkleLog(leaves_of(size, salt))
    start = data.draw(st.integers(0, size - 1))
    end = data.draw(st.integers(start, size - 1))
    frontier = Frontier(start, log.frontier(start).hashes)
    for index in range(start, end + 1):
        frontier.append(log.leaf(index))
    assert frontier.root() == log.root(end + 1)
    proof = log.consistency_proof(end + 1, size)
    verify_consistency(end + 1, size, frontier.root(), log.root(), proof)
    if start > 0:
        item = data.draw(st.integers(0, start.bit_count() - 1))
        wrong = Frontier(start, flip(log.frontier(start).hashes, item, 0, 1))
        for index in range(start, end + 1):
            wrong.append(log.leaf(index))
        with pytest.raises(ProofError):
            verify_consistency(end + 1, size, wrong.root(), log.root(), proof)


# --- MerkleLog agrees with the list functions --------------------------------------------------


@slow_settings
@given(size=sizes, salt=salts, data=st.data())
def test_merkle_log_agrees_with_the_list_functions(
    size: int, salt: bytes, data: st.DataObject
) -> None:
    leaves = leaves_of(size, salt)
    log, roots_when_appended = MerkleLog(), [root([])]
    for leaf in leaves:
        log.append(leaf)
        roots_when_appended.append(log.root())
    # Historical roots stay put as the log grows, and match a from-scratch MTH.
    assert [log.root(n) for n in range(size + 1)] == roots_when_appended
    assert all(roots_when_appended[n] == root(leaves[:n]) for n in range(0, size + 1, 7))
    for _ in range(5):
        new = data.draw(st.integers(1, size))
        index = data.draw(st.integers(0, new - 1))
        old = data.draw(st.integers(1, new))
        assert log.inclusion_path(index, new) == inclusion_path(index, leaves[:new])
        assert log.consistency_proof(old, new) == consistency_proof(old, leaves[:new])
        assert log.frontier(new).hashes == frontier_of(leaves[:new]).hashes


@pytest.mark.parametrize("size", range(1, EXHAUSTIVE_SIZE_MAX + 1))
def test_merkle_log_agrees_for_every_pair_of_small_sizes(size: int) -> None:
    leaves = leaves_of(size)
    log = MerkleLog(leaves)
    for new in range(1, size + 1):
        prefix = leaves[:new]
        assert log.root(new) == root(prefix)
        for index in range(new):
            assert log.inclusion_path(index, new) == inclusion_path(index, prefix)
        for old in range(1, new + 1):
            assert log.consistency_proof(old, new) == consistency_proof(old, prefix)


# --- Scale -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_million_leaves() -> None:
    """root() is a linear frontier fold, so a million leaves is seconds, not a recursion error."""
    leaves = leaves_of(MILLION)
    top = root(leaves)
    k = split(MILLION)
    assert k == 524_288
    assert top == node_hash(root(leaves[:k]), root(leaves[k:]))
    log = MerkleLog(leaves)
    assert log.root() == top
    last = MILLION - 1
    path = log.inclusion_path(last, MILLION)
    assert len(path) == len(inclusion_shape(last, MILLION) or ())
    verify_inclusion(last, MILLION, leaves[last], path, top)
    proof = log.consistency_proof(last, MILLION)
    verify_consistency(last, MILLION, log.root(last), top, proof)
