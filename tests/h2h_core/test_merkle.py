"""The audit Merkle tree: RFC 9162's hashes and proofs, built from stored perfect subtrees only."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from h2h_core.audit import merkle

# RFC 6962 / 9162 reference data as published by transparency-dev/merkle (testonly/constants.go,
# proof/verify_test.go): eight leaves, the root of every prefix, the stored nodes and some proofs.
REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
REFERENCE_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
REFERENCE_NODES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
# (leaf index, tree size, path): the published vectors number leaves from 1, these from 0.
REFERENCE_INCLUSION = [
    (0, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (5, 8, ["bc1a0643", "ca854ea1", "d37ee418"]),
    (2, 3, ["fac54203"]),
    (1, 5, ["6e340b9c", "5f083f0a", "bc1a0643"]),
]
REFERENCE_CONSISTENCY = [
    (1, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (6, 8, ["0ebc5d34", "ca854ea1", "d37ee418"]),
    (2, 5, ["5f083f0a", "bc1a0643"]),
    (6, 7, ["0ebc5d34", "b08693ec", "d37ee418"]),
]


def store(leaves, batches=None) -> dict:
    """Append leaves the way the sealer will, batch by batch, keeping only what tree_append returns."""
    nodes: dict = {}
    size, batches = 0, batches or [len(leaves)]
    for batch in batches:
        new = merkle.tree_append(size, leaves[size : size + batch], merkle.subtree_from_nodes(nodes))
        for level, index, value in new:
            assert (level, index) not in nodes  # a stored node is never rewritten
            nodes[level, index] = value
        size += batch
    return nodes


def short(hashes) -> list[str]:
    return [value.hex()[:8] for value in hashes]


def flipped(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def sample_leaves(seed: int, size: int) -> list[bytes]:
    """Leaves as the audit log has them: 32-byte event hashes."""
    return [hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(size)]


@st.composite
def trees(draw, max_size=300):
    size = draw(st.integers(min_value=1, max_value=max_size))
    batches, left = [], size
    while left:
        batches.append(draw(st.integers(min_value=1, max_value=left)))
        left -= batches[-1]
    return sample_leaves(draw(st.integers(0, 10**6)), size), batches


# --- The reference vectors --------------------------------------------------------------------------


def test_the_root_of_every_prefix_is_the_published_one():
    # given the reference leaves
    # when the tree hash of each prefix is computed, in memory and from stored subtrees
    nodes = store(REFERENCE_LEAVES, batches=[1] * 8)
    # then both are the published roots, the empty tree included
    for size in range(9):
        assert merkle.mth(REFERENCE_LEAVES[:size]).hex() == REFERENCE_ROOTS[size]
        assert merkle.root_from_subtrees(size, merkle.subtree_from_nodes(nodes)).hex() == REFERENCE_ROOTS[size]


def test_the_stored_nodes_are_the_published_perfect_subtrees():
    # given the reference leaves appended in uneven batches
    nodes = store(REFERENCE_LEAVES, batches=[3, 1, 4])
    # then exactly the published (level, index) nodes are stored, with the published hashes
    expected = {(level, index): value for level, row in enumerate(REFERENCE_NODES) for index, value in enumerate(row)}
    assert {key: value.hex() for key, value in nodes.items()} == expected


@pytest.mark.parametrize(("index", "size", "path"), REFERENCE_INCLUSION)
def test_inclusion_proofs_are_the_published_ones(index, size, path):
    subtree = merkle.subtree_from_nodes(store(REFERENCE_LEAVES))
    proof = merkle.inclusion_proof(index=index, size=size, subtree=subtree)
    assert short(proof) == path
    root = bytes.fromhex(REFERENCE_ROOTS[size])
    leaf = merkle.leaf_hash(REFERENCE_LEAVES[index])
    assert merkle.verify_inclusion(leaf_hash=leaf, index=index, size=size, proof=proof, root=root)


@pytest.mark.parametrize(("old_size", "size", "path"), REFERENCE_CONSISTENCY)
def test_consistency_proofs_are_the_published_ones(old_size, size, path):
    subtree = merkle.subtree_from_nodes(store(REFERENCE_LEAVES))
    proof = merkle.consistency_proof(old_size=old_size, size=size, subtree=subtree)
    assert short(proof) == path
    old_root, root = bytes.fromhex(REFERENCE_ROOTS[old_size]), bytes.fromhex(REFERENCE_ROOTS[size])
    assert merkle.verify_consistency(old_size=old_size, size=size, old_root=old_root, root=root, proof=proof)


# --- Properties over random trees -------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(trees())
def test_the_root_from_stored_subtrees_is_the_tree_hash(tree):
    # given leaves appended in random batches, only the new nodes of each batch kept
    leaves, batches = tree
    nodes = store(leaves, batches)
    # then the root of every prefix, from O(log n) stored subtrees, is the in-memory tree hash
    subtree = merkle.subtree_from_nodes(nodes)
    for size in {1, len(leaves) // 2, len(leaves) - 1, len(leaves)}:
        assert merkle.root_from_subtrees(size, subtree) == merkle.mth(leaves[:size])
    # every perfect subtree stored once: n leaves, and an inner node for each completed pair
    assert len(nodes) == 2 * len(leaves) - bin(len(leaves)).count("1")


@settings(max_examples=40, deadline=None)
@given(trees(), st.data())
def test_every_inclusion_proof_verifies_and_nothing_else_does(tree, data):
    leaves, batches = tree
    size = len(leaves)
    subtree, root = merkle.subtree_from_nodes(store(leaves, batches)), merkle.mth(leaves)
    for index in range(size):
        proof = merkle.inclusion_proof(index=index, size=size, subtree=subtree)
        leaf = merkle.leaf_hash(leaves[index])
        assert merkle.verify_inclusion(leaf_hash=leaf, index=index, size=size, proof=proof, root=root)
        assert len(proof) <= size.bit_length()
    # a changed leaf, index or root, or a changed, missing or extra proof element, does not verify
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index=index, size=size, subtree=subtree)
    leaf = merkle.leaf_hash(leaves[index])
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index)) if size > 1 else size

    def verifies(leaf=leaf, index=index, proof=proof, root=root):
        return merkle.verify_inclusion(leaf_hash=leaf, index=index, size=size, proof=proof, root=root)

    assert not verifies(leaf=flipped(leaf))
    assert not verifies(leaf=merkle.leaf_hash(flipped(leaves[index])))
    assert not verifies(index=other)
    assert not verifies(root=flipped(root))
    assert not verifies(proof=[*proof, root])
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        assert not verifies(proof=[flipped(p) if i == position else p for i, p in enumerate(proof)])
        assert not verifies(proof=proof[:-1])


@settings(max_examples=40, deadline=None)
@given(trees(), st.data())
def test_every_consistency_proof_verifies_and_fails_for_a_changed_root(tree, data):
    leaves, batches = tree
    size = len(leaves)
    subtree, root = merkle.subtree_from_nodes(store(leaves, batches)), merkle.mth(leaves)
    for old_size in range(size + 1):
        old_root = merkle.mth(leaves[:old_size])
        proof = merkle.consistency_proof(old_size=old_size, size=size, subtree=subtree)
        assert merkle.verify_consistency(old_size=old_size, size=size, old_root=old_root, root=root, proof=proof)
        # a changed old root does not verify, nor a changed new root (the empty tree precedes any root)
        assert not merkle.verify_consistency(
            old_size=old_size, size=size, old_root=flipped(old_root), root=root, proof=proof
        )
        assert old_size == 0 or not merkle.verify_consistency(
            old_size=old_size, size=size, old_root=old_root, root=flipped(root), proof=proof
        )
    # nor does a changed proof element, or an old tree that is not a prefix
    old_size = data.draw(st.integers(1, size))
    old_root = merkle.mth(leaves[:old_size])
    proof = merkle.consistency_proof(old_size=old_size, size=size, subtree=subtree)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        changed = [flipped(p) if i == position else p for i, p in enumerate(proof)]
        assert not merkle.verify_consistency(old_size=old_size, size=size, old_root=old_root, root=root, proof=changed)
        forked = merkle.mth([*leaves[: old_size - 1], flipped(leaves[old_size - 1])])
        assert not merkle.verify_consistency(old_size=old_size, size=size, old_root=forked, root=root, proof=proof)


@settings(max_examples=40, deadline=None)
@given(trees(max_size=200), st.data())
def test_proofs_read_only_the_nodes_they_name(tree, data):
    # given a stored tree whose reads are recorded
    leaves, batches = tree
    nodes, read = store(leaves, batches), []

    def subtree(start, end):
        read.append(merkle.node_key(start, end))
        return nodes[merkle.node_key(start, end)]

    size = len(leaves)
    index, old_size = data.draw(st.integers(0, size - 1)), data.draw(st.integers(0, size))
    # when proofs, a root and an append are computed, then each reads what its *_nodes names, O(log n)
    merkle.inclusion_proof(index=index, size=size, subtree=subtree)
    assert sorted(read) == sorted(merkle.inclusion_nodes(index=index, size=size))
    assert len(read) <= 2 * size.bit_length()
    read.clear()
    merkle.consistency_proof(old_size=old_size, size=size, subtree=subtree)
    assert sorted(read) == sorted(merkle.consistency_nodes(old_size=old_size, size=size))
    assert len(read) <= 2 * size.bit_length()
    read.clear()
    merkle.tree_append(size, [b"next"], subtree)
    assert sorted(read) == sorted(merkle.root_nodes(size))
    assert len(read) == bin(size).count("1")


# --- Edges ------------------------------------------------------------------------------------------


def test_only_perfect_aligned_subtrees_are_asked_for():
    with pytest.raises(ValueError, match="not a perfect aligned subtree"):
        merkle.node_key(1, 3)
    with pytest.raises(ValueError, match="not a perfect aligned subtree"):
        merkle.node_key(2, 5)
    assert merkle.node_key(4, 6) == (1, 2)
    assert merkle.node_range(1, 2) == (4, 6)


def test_proofs_outside_the_tree_are_refused():
    subtree = merkle.subtree_from_nodes(store(REFERENCE_LEAVES))
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.inclusion_proof(index=8, size=8, subtree=subtree)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_proof(old_size=5, size=4, subtree=subtree)


def test_a_one_leaf_tree_proves_its_leaf_with_an_empty_path():
    leaf = merkle.leaf_hash(b"only")
    assert merkle.verify_inclusion(leaf_hash=leaf, index=0, size=1, proof=[], root=leaf)
    assert not merkle.verify_inclusion(leaf_hash=leaf, index=0, size=1, proof=[], root=merkle.EMPTY_ROOT)
    assert not merkle.verify_inclusion(leaf_hash=leaf, index=1, size=1, proof=[], root=leaf)
    assert not merkle.verify_inclusion(leaf_hash=leaf[:31], index=0, size=1, proof=[], root=leaf[:31])


def test_consistency_of_equal_sizes_needs_an_empty_proof_and_the_same_root():
    root = bytes.fromhex(REFERENCE_ROOTS[5])
    assert merkle.verify_consistency(old_size=5, size=5, old_root=root, root=root, proof=[])
    assert not merkle.verify_consistency(old_size=5, size=5, old_root=root, root=root, proof=[root])
    assert not merkle.verify_consistency(old_size=5, size=5, old_root=flipped(root), root=root, proof=[])
    # a shrunken tree is never consistent, and a non-empty pair of sizes needs a proof
    assert not merkle.verify_consistency(old_size=6, size=5, old_root=root, root=root, proof=[])
    assert not merkle.verify_consistency(old_size=4, size=5, old_root=root, root=root, proof=[])


def test_a_path_proves_nothing_about_a_tree_of_another_size():
    # given leaf 0's path in the 8-leaf tree: its first two steps lead to the root of the first 4 leaves
    subtree = merkle.subtree_from_nodes(store(REFERENCE_LEAVES))
    proof = merkle.inclusion_proof(index=0, size=8, subtree=subtree)
    leaf, root4, root8 = merkle.leaf_hash(REFERENCE_LEAVES[0]), REFERENCE_ROOTS[4], REFERENCE_ROOTS[8]
    assert merkle.verify_inclusion(leaf_hash=leaf, index=0, size=4, proof=proof[:2], root=bytes.fromhex(root4))
    # then a short path does not pass for the 8-leaf tree, nor a long one for the 4-leaf tree
    assert not merkle.verify_inclusion(leaf_hash=leaf, index=0, size=8, proof=proof[:2], root=bytes.fromhex(root4))
    assert not merkle.verify_inclusion(leaf_hash=leaf, index=0, size=4, proof=proof, root=bytes.fromhex(root8))
    # whatever root a longer path is checked against: a tree of 4 leaves is 2 steps high
    extra = merkle.node_hash(proof[2], bytes.fromhex(root4))
    assert not merkle.verify_inclusion(leaf_hash=leaf, index=0, size=4, proof=proof, root=extra)
