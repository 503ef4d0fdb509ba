"""API idempotency records and webhook endpoints/deliveries for integrators."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from authority.standard_webhooks import secret_generate, validate_secret


class IdempotencyRecord(models.Model):
    """The stored response of a POST made with an Idempotency-Key, per user and key."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=100)
    endpoint = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=12, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    held_by_session = models.BooleanField(
        default=False,
        help_text="In progress only while the process that claimed it holds its claim lock (an advisory "
                  "lock on PostgreSQL, a file lock on SQLite: edges.web.claim_locks); otherwise until a timeout.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_record_per_user_key")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"


class WebhookEndpoint(models.Model):
    """Where executed decisions are delivered, signed in the Standard Webhooks format with `secret`.

    `consecutive_failures` counts failed attempts across the endpoint's deliveries since its last
    success; at `H2H_WEBHOOK_DISABLE_AFTER` the endpoint is disabled (`active` off, `disabled_at`,
    `disabled_reason`), and an administrator re-enables it by saving it active again.
    """

    name = models.CharField(max_length=80)
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=200, default=secret_generate, validators=[validate_secret],
        help_text="whsec_ and base64 (generated for a new endpoint). To rotate, put the new secret first and "
                  "the old one after a space; requests are signed with both until you remove the old one.")
    topics = models.JSONField(default=list, blank=True, help_text="Empty means every topic.")
    active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Dead (gave up)"


class WebhookDelivery(models.Model):
    """One outbox message to one endpoint: at least once, retried with backoff, then dead-lettered.

    A pending delivery is attempted at `next_attempt_at` by a job; `leased_until` is set while an
    attempt is in flight (a worker that dies loses only its lease).
    """

    message = models.ForeignKey("authority.OutboxMessage", on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    leased_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "endpoint"], name="webhook_delivery_once")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["endpoint", "status", "leased_until"]),
        ]

    def __str__(self) -> str:
        return f"message {self.message_id} → {self.endpoint_id}"
