"""API idempotency records and webhook endpoints/deliveries for integrators."""

from django.conf import settings
from django.db import models


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

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_record_per_user_key")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"


class WebhookEndpoint(models.Model):
    """Where executed decisions are delivered, signed with HMAC-SHA256 using `secret`."""

    name = models.CharField(max_length=80)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128)
    topics = models.JSONField(default=list, blank=True, help_text="Empty means every topic.")
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One outbox message to one endpoint: at least once, retried with backoff."""

    message = models.ForeignKey("authority.OutboxMessage", on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "endpoint"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["delivered_at", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"message {self.message_id} → {self.endpoint_id}"
