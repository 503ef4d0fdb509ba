"""A Merkle tree over the sealed audit events, as RFC 9162 (Certificate Transparency 2.0) §2.1 defines it.

Leaf i of the tree is audit entry seq = i + 1, and its leaf data is that event's chain hash as 32
raw bytes: `bytes.fromhex(event.hash)`. The event hash already covers every field of the event
(h2h_core.audit.chain), so proving the leaf proves the event.

Hashing (RFC 9162 §2.1.1), SHA-256 throughout:

- the empty tree: SHA-256 of nothing;
- a leaf: SHA-256(0x00 || leaf data);
- an inner node: SHA-256(0x01 || left || right), where the left subtree holds the largest power
  of two of leaves smaller than the whole (so the left side is always a perfect tree).

The prefixes keep a leaf from passing for a node. Generation never needs every leaf in memory: it
asks a `subtree(start, end)` callable for the hash of a perfect, aligned subtree of leaves
[start, end) (end - start a power of two, start a multiple of it), which storage keeps as
(level, index) = (log2(end - start), start >> level) while leaves arrive (`tree_append`). A tree
of n leaves is then made of O(log n) such subtrees, and every proof reads O(log n) of them;
`*_nodes` name them so storage can fetch them in one query.

Standard library only, no Django: examples/verify_receipt.py repeats the verification half so an
auditor needs nothing of the product.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

Subtree = Callable[[int, int], bytes]
Node = tuple[int, int, bytes]  # (level, index, hash)

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """Return the largest power of two smaller than `size` (size >= 2): where RFC 9162 splits a tree."""
    if size < 2:
        raise ValueError(f"a tree of {size} leaves does not split")
    return 1 << ((size - 1).bit_length() - 1)


def mth(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of a list of leaves (their data, not their hashes), in memory."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = split_point(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


# --- Perfect subtrees: what storage keeps -----------------------------------------------------------


def node_key(start: int, end: int) -> tuple[int, int]:
    """Return (level, index) of the perfect aligned subtree of leaves [start, end)."""
    width = end - start
    if width <= 0 or width & (width - 1) or start % width:
        raise ValueError(f"leaves [{start}, {end}) are not a perfect aligned subtree")
    level = width.bit_length() - 1
    return level, start >> level


def node_range(level: int, index: int) -> tuple[int, int]:
    """Return the leaves [start, end) under node (level, index)."""
    return index << level, (index + 1) << level


def perfect_ranges(start: int, end: int) -> list[tuple[int, int]]:
    """Split leaves [start, end) into the perfect subtrees RFC 9162's recursion ends in, left to right."""
    parts = []
    while end > start:
        width = end - start
        step = width if width & (width - 1) == 0 else split_point(width)
        node_key(start, start + step)  # refuses a range no stored node covers
        parts.append((start, start + step))
        start += step
    return parts


def range_hash(start: int, end: int, subtree: Subtree) -> bytes:
    """Return MTH(D[start:end]) from the stored perfect subtrees it is made of."""
    hashes = [subtree(a, b) for a, b in perfect_ranges(start, end)]
    if not hashes:
        return EMPTY_ROOT
    # A non-perfect range is (largest perfect part) + (the rest): the hash folds from the right.
    value = hashes[-1]
    for left in reversed(hashes[:-1]):
        value = node_hash(left, value)
    return value


def root_from_subtrees(size: int, subtree: Subtree) -> bytes:
    """Return the root hash of the tree of the first `size` leaves from its O(log size) perfect subtrees."""
    if size < 0:
        raise ValueError("a tree cannot have fewer than 0 leaves")
    return range_hash(0, size, subtree)


def subtree_from_nodes(nodes: Mapping[tuple[int, int], bytes]) -> Subtree:
    """Adapt a mapping {(level, index): hash}, as storage keeps it, to a `subtree(start, end)` callable."""

    def subtree(start: int, end: int) -> bytes:
        return nodes[node_key(start, end)]

    return subtree


def _keys(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    keys: dict[tuple[int, int], None] = {}
    for start, end in ranges:
        for part in perfect_ranges(start, end):
            keys[node_key(*part)] = None
    return list(keys)


def root_nodes(size: int) -> list[tuple[int, int]]:
    """Name the stored nodes (level, index) that the root of `size` leaves, and appending after them, need."""
    return _keys([(0, size)])


def tree_append(size: int, leaves: Iterable[bytes], subtree: Subtree) -> list[Node]:
    """Append leaves (their data) after the first `size` and return every new perfect subtree to store.

    Returns (level, index, hash) for each new leaf (level 0) and each node completed by it, in the
    order they complete. Only the O(log size) subtrees named by `root_nodes(size)` are read.
    """
    # The right edge of the tree: perfect subtrees of strictly decreasing level, left to right.
    stack = [(node_key(a, b)[0], subtree(a, b)) for a, b in perfect_ranges(0, size)]
    created: list[Node] = []
    for position, leaf in enumerate(leaves, start=size):
        level, value = 0, leaf_hash(leaf)
        created.append((0, position, value))
        while stack and stack[-1][0] == level:
            value = node_hash(stack.pop()[1], value)
            level += 1
            created.append((level, position >> level, value))
        stack.append((level, value))
    return created


# --- Proof generation (RFC 9162 §2.1.3.1, §2.1.4.1) -------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose hashes make PATH(index, D[size]), in proof order (leaf end first)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    ranges = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def consistency_ranges(old_size: int, size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose hashes make PROOF(old_size, D[size]), in proof order."""
    if not 0 <= old_size <= size:
        raise ValueError(f"no consistency proof from {old_size} leaves to {size}")
    if old_size == 0:
        return []  # the empty tree is a prefix of every tree: nothing to prove
    ranges = []
    start, end, complete = 0, size, True
    while old_size - start != end - start:
        k = split_point(end - start)
        if old_size - start <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            complete = False
    if not complete:
        # SUBPROOF(m, D[m], false): the old tree's last perfect part is not the old root, so it is sent.
        ranges.append((start, end))
    return ranges[::-1]


def inclusion_nodes(*, index: int, size: int) -> list[tuple[int, int]]:
    """Name the stored nodes (level, index) an inclusion proof reads."""
    return _keys(inclusion_ranges(index, size))


def consistency_nodes(*, old_size: int, size: int) -> list[tuple[int, int]]:
    """Name the stored nodes (level, index) a consistency proof reads."""
    return _keys(consistency_ranges(old_size, size))


def inclusion_proof(*, index: int, size: int, subtree: Subtree) -> list[bytes]:
    """Return the audit path of leaf `index` in the tree of the first `size` leaves."""
    return [range_hash(a, b, subtree) for a, b in inclusion_ranges(index, size)]


def consistency_proof(*, old_size: int, size: int, subtree: Subtree) -> list[bytes]:
    """Return the proof that the tree of `old_size` leaves is a prefix of the tree of `size` leaves."""
    return [range_hash(a, b, subtree) for a, b in consistency_ranges(old_size, size)]


# --- Verification (RFC 9162 §2.1.3.2, §2.1.4.2) -----------------------------------------------------


def _hashes(values: Sequence[bytes]) -> bool:
    return all(isinstance(value, bytes) and len(value) == HASH_SIZE for value in values)


def root_from_inclusion_proof(*, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """Return the root an inclusion proof leads to, or None when the proof cannot be for (index, size)."""
    if not 0 <= index < size or not _hashes([leaf_hash, *proof]):
        return None
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return None  # more proof than the tree is high
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(*, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Check that the leaf with hash `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`."""
    return root_from_inclusion_proof(leaf_hash=leaf_hash, index=index, size=size, proof=proof) == root


def verify_consistency(*, old_size: int, size: int, old_root: bytes, root: bytes, proof: Sequence[bytes]) -> bool:
    """Check that the tree of `old_size` leaves with `old_root` is a prefix of the one of `size` with `root`."""
    if not 0 <= old_size <= size or not _hashes([old_root, root, *proof]):
        return False
    if old_size == size:
        return not proof and old_root == root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)  # the old tree is a perfect subtree of the new one: its root is a node
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == root and sn == 0
