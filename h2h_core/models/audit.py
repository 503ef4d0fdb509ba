"""The append-only, hash-chained audit log.

Rows of AuditEvent and AuditCheckpoint are never updated or deleted: database triggers refuse it.
AuditHead is a one-row table that holds the latest sequence number and hash; locking it assigns
the next sequence number without gaps (see docs/audit.md).
"""

from datetime import UTC

from django.db import models


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    DENIED = "denied", "Denied"
    ERROR = "error", "Error"


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True)
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
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["action", "seq"]),
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["actor_id", "seq"]),
            models.Index(fields=["occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"


class AuditHead(models.Model):
    """The chain's head: locked to append, so sequence numbers are gapless."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"head #{self.seq}"


class AuditCheckpoint(models.Model):
    """A signed statement "the chain had this hash at this sequence number at this time"."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    signature = models.CharField(max_length=128)
    public_key = models.TextField()
    key_fingerprint = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq", "id"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq} at {self.signed_at:%Y-%m-%d %H:%M}"

    def signed_message(self) -> bytes:
        """Return the bytes the signature covers; documented so outsiders can check it."""
        signed_at = self.signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"h2h-audit-checkpoint:v1:{self.seq}:{self.hash}:{signed_at}".encode()
