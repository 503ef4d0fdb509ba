"""Outbound mail: written with the business change it reports, sent later by a job, retried."""

from django.db import models
from django.utils import timezone


class MailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"


class OutboundMail(models.Model):
    """One e-mail to send: committed with its cause, sent at least once by `h2h_core.mail.mail_send`.

    A pending mail is attempted at `next_attempt_at`; `leased_until` is set while an attempt is in
    flight. `purpose` and `case` say what it is about.
    """

    subject = models.CharField(max_length=250)
    body = models.TextField()
    recipients = models.JSONField()
    purpose = models.CharField(max_length=60)
    case = models.ForeignKey("h2h_core.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=MailStatus.choices, default=MailStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    leased_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.purpose}: {self.subject}"
