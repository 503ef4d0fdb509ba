"""Chain verifications: runs of the audit chain check, requested by an auditor or the schedule."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ChainVerification(models.Model):
    """One run of the chain check: what was asked, what was checked, and what it found."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"  # the chain or a checkpoint is not intact
        ERROR = "error", "Could not complete"  # the run itself failed (or was abandoned)

    class Mode(models.TextChoices):
        INCREMENTAL = "incremental", "Incremental (from the last verified checkpoint)"
        FULL = "full", "Full (from the first entry)"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.PASSED, Status.FAILED)

    requested_by = models.ForeignKey(  # null: the system (the schedule)
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.INCREMENTAL)
    # The checkpoint an incremental run started from (its events before it were not read again).
    anchor_checkpoint_id = models.BigIntegerField(null=True, blank=True)
    from_seq = models.BigIntegerField(null=True, blank=True)
    to_seq = models.BigIntegerField(null=True, blank=True)
    events_checked = models.BigIntegerField(default=0)
    first_bad_seq = models.BigIntegerField(null=True, blank=True)
    summary = models.TextField(blank=True)
    # [{id, seq, hash, signed_at, key_fingerprint, event_seq, ok, message}], in seq order.
    checkpoint_results = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # At most one verification queued or running: a second request gets the first one.
            models.UniqueConstraint(
                models.Value(1), condition=Q(status__in=["queued", "running"]), name="chain_verification_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"chain verification {self.pk} ({self.mode}, {self.status})"

    @property
    def active(self) -> bool:
        return self.status in self.ACTIVE
