"""Manager delegation while away, and auditors' review flags on decisions."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Delegation(models.Model):
    """A manager hands their approval rights to another manager for a dated period. It does not cascade."""

    manager = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_given")
    delegate = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="delegations_received")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(name="delegation_ends_after_start", condition=Q(ends_at__gt=F("starts_at"))),
            models.CheckConstraint(name="delegation_not_to_self", condition=~Q(manager=F("delegate"))),
        ]

    def __str__(self) -> str:
        return f"{self.manager} → {self.delegate}"


class ReviewFlag(models.Model):
    """An auditor's finding on a sampled decision."""

    class Severity(models.TextChoices):
        INFO = "info", "Information"
        MINOR = "minor", "Minor"
        MAJOR = "major", "Major"

    decision = models.ForeignKey("authority.Decision", on_delete=models.PROTECT, related_name="review_flags")
    auditor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_flags")
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.INFO)
    finding = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_severity_display()} on decision {self.decision_id}"
