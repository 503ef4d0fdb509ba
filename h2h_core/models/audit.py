"""The append-only, hash-chained audit log.

Rows of AuditEvent and AuditCheckpoint are never deleted, and never changed once in the chain:
database triggers refuse it. On PostgreSQL an event is written in its change's transaction without
its chain link (seq, prev_hash, hash empty) and the sealer (h2h_core/audit/sealer.py) links it
after commit: that one UPDATE per row is all the triggers allow.
AuditHead is a one-row table that holds the latest sequence number and hash; locking it assigns
the next sequence number without gaps (see docs/audit.md).
"""

from datetime import UTC

from django.db import models
from django.db.models import F, Q


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    DENIED = "denied", "Denied"
    ERROR = "error", "Error"


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True, null=True, blank=True)  # None: not sealed into the chain yet
    occurred_at = models.DateTimeField()
    # No foreign keys: an audit row must outlive anything it mentions and never be rewritten.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)
    actor_roles = models.JSONField(default=list)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.SUCCESS)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Events not sealed yet come after the chain, in the order they were written.
        ordering = [F("seq").asc(nulls_last=True), "id"]
        indexes = [
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="auditevent_unsealed"),
            models.Index(fields=["action", "seq"]),
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["actor_id", "seq"]),
            models.Index(fields=["occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq if self.seq is not None else '(sealing)'} {self.action} {self.object_type}:{self.object_id}"


class AuditHead(models.Model):
    """The chain's head: locked to append, so sequence numbers are gapless."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)
    tree_size = models.BigIntegerField(default=0)  # entries 1..tree_size are leaves of the Merkle tree

    def __str__(self) -> str:
        return f"head #{self.seq}"


class AuditCheckpoint(models.Model):
    """A signed statement "the chain had this hash at this sequence number at this time".

    Since Merkle trees (v2) it also signs `root_hash`, the root of the tree over entries 1..seq, so
    one event's inclusion can be proven with a few hashes (h2h_core/audit/tree.py). v1 rows keep it empty.
    """

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    root_hash = models.CharField(max_length=64, blank=True, default="")
    signed_at = models.DateTimeField()
    signature = models.CharField(max_length=128)
    public_key = models.TextField()
    key_fingerprint = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq", "id"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq} at {self.signed_at:%Y-%m-%d %H:%M}"

    def signed_message(self) -> bytes:
        """Return the bytes the signature covers; documented so outsiders can check it (docs/audit.md)."""
        return checkpoint_message(seq=self.seq, hash=self.hash, signed_at=self.signed_at, root_hash=self.root_hash)


def checkpoint_message(*, seq: int, hash: str, signed_at, root_hash: str = "", tree_size: int | None = None) -> bytes:
    """v1: the chain head; v2 (with a Merkle root): the head and the root of the tree over entries
    1..tree_size (the product signs trees as long as the chain: tree_size = seq)."""
    signed = signed_at if isinstance(signed_at, str) else signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if root_hash:
        size = seq if tree_size is None else tree_size
        return f"h2h-audit-checkpoint:v2:{seq}:{hash}:{size}:{root_hash}:{signed}".encode()
    return f"h2h-audit-checkpoint:v1:{seq}:{hash}:{signed}".encode()


class AuditTreeNode(models.Model):
    """A perfect subtree of the Merkle tree over the chain: the hash of leaves [index << level, (index + 1) << level).

    Append-only like the events (database triggers); written under the head's lock (h2h_core/audit/tree.py).
    """

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("level", "index"), name="audittreenode_position")]

    def __str__(self) -> str:
        return f"tree node {self.level}/{self.index}"
