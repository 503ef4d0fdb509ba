"""AI agents as subjects of authority, and the hand-off of a case from an AI agent to a person."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .cases import Case


class AiAgent(models.Model):
    """A service identity run by software: its own account (role "AI agent", API tokens only, no
    password), its team, the model and version it runs, and the routing rules that say which cases it
    may own. Its authority is ordinary grants; a suspended AI agent cannot sign in or decide."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ai_agent")
    team = models.ForeignKey("h2h_core.Team", on_delete=models.PROTECT, related_name="ai_agents")
    model_name = models.CharField(max_length=80)
    model_version = models.CharField(max_length=40)
    description = models.TextField(blank=True)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    registered_at = models.DateTimeField()
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    suspension_reason = models.TextField(blank=True)
    # Routing: which cases the AI agent may own. Deny by default: no category listed, no case owned.
    route_categories = models.JSONField(default=list, blank=True)
    route_tiers = models.JSONField(default=list, blank=True)  # empty: every tier
    max_stakes = models.PositiveSmallIntegerField(default=40, validators=[MaxValueValidator(100)])
    hand_off_negative_sentiment = models.BooleanField(default=True)
    # A decision stated with less confidence than this goes to a person instead.
    min_confidence = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.700"),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
    )

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.model_name} {self.model_version})"

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class HandOffReason(models.TextChoices):
    OUTSIDE_ROUTING = "outside_routing", "Outside the AI agent's routing rules"
    OVER_AUTHORITY = "over_authority", "Over the AI agent's authority"
    SHADOW = "shadow", "Decided in shadow mode: a person decides"
    LOW_CONFIDENCE = "low_confidence", "The AI agent was not confident enough"
    ASKED = "asked", "The AI agent asked for a person"
    SUSPENDED = "suspended", "The AI agent was suspended"


class HandOff(models.Model):
    """A case passed from an AI agent to a human owner, with everything the person needs to go on:
    what the customer said, what the AI tried and decided, and why it stopped."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="hand_offs")
    from_agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="hand_offs_made")
    # The person who owns the case from here; empty while it waits in the team's queue.
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="hand_offs_received"
    )
    reason = models.CharField(max_length=20, choices=HandOffReason.choices)
    reason_text = models.TextField()
    summary = models.TextField(blank=True)
    # [{"from": "customer" | "ai", "text": "..."}], as the AI agent reported it.
    transcript = models.JSONField(default=list, blank=True)
    # What the AI agent tried: [{"kind", "amount", "currency", "outcome", "reasons"}].
    attempts = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    picked_up_at = models.DateTimeField(null=True, blank=True)
    picked_up_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    payload_fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["case", "created_at"]),
            models.Index(fields=["to_user", "picked_up_at"]),
            models.Index(fields=["created_at", "id"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["from_agent", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="hand_off_idempotency_key_per_agent",
            ),
        ]

    def __str__(self) -> str:
        return f"Hand-off of case {self.case_id} ({self.reason})"
