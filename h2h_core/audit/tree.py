"""The Merkle tree over the sealed chain, kept in the database as its perfect subtrees.

`audit_tree_extend` runs where the chain grows or is signed, under the head row's lock: in the
sealer's transaction (PostgreSQL) and before a checkpoint is signed (both databases). It appends
the entries sealed since the tree last grew, so the tree always covers entries 1..tree_size with
tree_size <= the head, and a checkpoint signs the root of exactly the chain it names. Rows of
AuditTreeNode are append-only (database triggers), like the events.

Receipts and consistency proofs read O(log n) stored nodes (`h2h_core.audit.merkle`); the
documents they produce are checked offline by examples/verify_receipt.py with the public key only.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q

from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead, AuditTreeNode

from . import merkle, receipts
from .chain import HASHED_FIELDS

BATCH = 5000


def _nodes(keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not keys:
        return {}
    condition = Q()
    for level, index in keys:
        condition |= Q(level=level, index=index)
    rows = AuditTreeNode.objects.filter(condition).values_list("level", "index", "hash")
    return {(level, index): bytes.fromhex(value) for level, index, value in rows}


def _subtree(keys: list[tuple[int, int]]) -> merkle.Subtree:
    return merkle.subtree_from_nodes(_nodes(keys))


def audit_tree_extend(*, head: AuditHead) -> int:
    """Append the sealed entries after the tree's size up to the head; return how many.

    The caller holds the head row's lock (the sealer, the checkpoint signing), so the tree grows
    one writer at a time and exactly along the chain.
    """
    size, appended = head.tree_size, 0
    while size < head.seq:
        leaves = list(
            AuditEvent.objects.filter(seq__gt=size, seq__lte=min(head.seq, size + BATCH))
            .order_by("seq").values_list("seq", "hash")
        )
        if not leaves or leaves[0][0] != size + 1 or leaves[-1][0] != size + len(leaves):
            raise RuntimeError(f"the audit chain has a gap after entry {size}: the Merkle tree cannot grow over it")
        nodes = merkle.tree_append(size, [bytes.fromhex(value) for _seq, value in leaves],
                                   _subtree(merkle.root_nodes(size)))
        AuditTreeNode.objects.bulk_create(
            [AuditTreeNode(level=level, index=index, hash=value.hex()) for level, index, value in nodes]
        )
        size += len(leaves)
        appended += len(leaves)
    if appended:
        AuditHead.objects.filter(pk=head.pk).update(tree_size=size)
        head.tree_size = size
    return appended


def audit_tree_root(size: int) -> str:
    """Return the hex root of the tree over entries 1..size (stored nodes; size within the tree)."""
    return merkle.root_from_subtrees(size, _subtree(merkle.root_nodes(size))).hex()


def _checkpoint_document(checkpoint: AuditCheckpoint) -> dict:
    return receipts.checkpoint_document(
        seq=checkpoint.seq, hash=checkpoint.hash, tree_size=checkpoint.seq, root_hash=checkpoint.root_hash,
        signed_at=checkpoint.signed_at, signature=checkpoint.signature, key_fingerprint=checkpoint.key_fingerprint,
    )


def covering_checkpoint(seq: int) -> AuditCheckpoint | None:
    """Return the first signed tree (v2 checkpoint) that includes entry `seq`, or None while none does."""
    return AuditCheckpoint.objects.exclude(root_hash="").filter(seq__gte=seq).order_by("seq", "id").first()


def event_receipt(*, event: AuditEvent) -> dict | None:
    """Return the receipt (h2h-receipt/v1) of a sealed event, or None until a signed tree includes it."""
    if event.seq is None:
        return None
    checkpoint = covering_checkpoint(event.seq)
    if checkpoint is None:
        return None
    index, size = event.seq - 1, checkpoint.seq
    path = merkle.inclusion_proof(index=index, size=size,
                                  subtree=_subtree(merkle.inclusion_nodes(index=index, size=size)))
    fields = {name: getattr(event, name) for name in (*HASHED_FIELDS, "hash")}
    return receipts.receipt_build(event=fields, tree_size=size, inclusion_path=path,
                                  checkpoint=_checkpoint_document(checkpoint))


def decision_receipt(*, decision_id: int) -> dict | None:
    """Return the receipt of a decision's "decision.executed" event, or None until a signed tree includes it."""
    event = AuditEvent.objects.filter(action="decision.executed", object_type="decision",
                                      object_id=str(decision_id)).first()
    return event_receipt(event=event) if event is not None else None


def checkpoint_consistency(*, old: AuditCheckpoint, new: AuditCheckpoint) -> dict:
    """Return the consistency proof (h2h-consistency/v1) that `new`'s tree extends `old`'s."""
    if not old.root_hash or not new.root_hash:
        raise ValueError("Only checkpoints that sign a Merkle root (v2) have consistency proofs.")
    if old.seq > new.seq:
        old, new = new, old
    proof = merkle.consistency_proof(
        old_size=old.seq, size=new.seq,
        subtree=_subtree(merkle.consistency_nodes(old_size=old.seq, size=new.seq)),
    )
    return receipts.consistency_build(old_checkpoint=_checkpoint_document(old),
                                      new_checkpoint=_checkpoint_document(new), proof=proof)


class TreeAccumulator:
    """The root of the tree over a chain streamed entry by entry, in O(log n) memory (verification)."""

    def __init__(self, size: int = 0, subtree: merkle.Subtree | None = None):
        # The right edge: perfect subtrees of strictly decreasing level, as merkle.tree_append keeps it.
        ranges = merkle.perfect_ranges(0, size) if size else []
        self.size = size
        self.stack = [(merkle.node_key(a, b)[0], subtree(a, b)) for a, b in ranges] if ranges else []

    @classmethod
    def from_store(cls, size: int) -> TreeAccumulator:
        return cls(size, _subtree(merkle.root_nodes(size)))

    def append(self, event_hash_hex: str) -> None:
        self.push(0, merkle.leaf_hash(bytes.fromhex(event_hash_hex)))

    def push(self, level: int, value: bytes) -> None:
        """Append a perfect subtree of 2**level leaves (a leaf: level 0), merging equal levels on the right edge."""
        self.size += 1 << level
        while self.stack and self.stack[-1][0] == level:
            value = merkle.node_hash(self.stack.pop()[1], value)
            level += 1
        self.stack.append((level, value))

    def root(self, then: Sequence[tuple[int, bytes]] = ()) -> str:
        """The root now, or once `then` (a smaller tree's right edge, all below this one's levels) is appended."""
        edge = [*self.stack, *then]
        if not edge:
            return merkle.EMPTY_ROOT.hex()
        value = edge[-1][1]
        for _level, left in reversed(edge[:-1]):
            value = merkle.node_hash(left, value)
        return value.hex()
