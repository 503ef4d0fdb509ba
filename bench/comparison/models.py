"""The rows the comparison endpoints write: a bare row, and a naive decision with its counter and audit chain.

Only bench/settings.py installs this app; the product never sees these tables.
"""

from django.conf import settings
from django.db import models


class BareRow(models.Model):
    """What the bare endpoint inserts: about the columns of a decision, nothing checked."""

    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    case_id = models.BigIntegerField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    rationale = models.TextField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"bare row {self.pk}"


class NaiveCounter(models.Model):
    """One agent's usage against a cap: locked, then raised only if the cap allows."""

    agent = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    used = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    cap = models.DecimalField(max_digits=14, decimal_places=2)

    def __str__(self) -> str:
        return f"counter of agent {self.agent_id}: {self.used} of {self.cap}"


class NaiveDecision(models.Model):
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    case_id = models.BigIntegerField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    rationale = models.TextField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"naive decision {self.pk}"


class NaiveAuditHead(models.Model):
    """The naive chain's one-row head, locked by every append like the product's AuditHead."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"naive head #{self.seq}"


class NaiveAuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField()
    actor_id = models.BigIntegerField()
    action = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    after = models.JSONField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"naive event #{self.seq}"
