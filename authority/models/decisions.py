"""Executed decisions, one-hop authority requests and the integration outbox."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from h2h_core.amounts import AmountField

from .grants import AMOUNT, AuthorityKind, Grant


class Decision(models.Model):
    """An executed exercise of authority on a case, with the verdict that allowed it.

    Refusals are not rows here: they are audit events (nothing was decided).
    """

    case = models.ForeignKey("h2h_core.Case", on_delete=models.PROTECT, related_name="decisions")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions")
    kind = models.ForeignKey(AuthorityKind, on_delete=models.PROTECT, related_name="decisions")
    amount = AmountField(**AMOUNT)
    currency = models.CharField(max_length=3, blank=True)
    # The amount in the deciding grant's currency, and the dated rate used to get there.
    counted_amount = AmountField(**AMOUNT)
    counted_currency = models.CharField(max_length=3, blank=True)
    rate = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    rate_date = models.DateField(null=True, blank=True)
    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="decisions")
    request = models.ForeignKey(
        "authority.AuthorityRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )
    verdict = models.JSONField()
    rationale = models.TextField()
    # Who decided, as they were at that instant: an AI agent's model and version, and its confidence.
    by_ai_agent = models.BooleanField(default=False)
    ai_model = models.CharField(max_length=80, blank=True)
    ai_model_version = models.CharField(max_length=40, blank=True)
    confidence = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    payload_fingerprint = models.CharField(max_length=64, blank=True)
    executed_at = models.DateTimeField()
    # A reversal undoes the decision downstream (an outbox message); the usage it consumed stays
    # consumed, so a reversal never makes room for more.
    reversed_at = models.DateTimeField(null=True, blank=True)
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reversal_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-executed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="decision_idempotency_key_per_agent",
            ),
            models.CheckConstraint(name="decision_amount_positive", condition=Q(amount__gt=0)),
            models.CheckConstraint(
                name="decision_confidence_between_0_and_1",
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
            ),
        ]
        indexes = [
            models.Index(fields=["case", "kind"]),
            models.Index(fields=["agent", "executed_at"]),
            models.Index(fields=["executed_at", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind.code} {self.amount} {self.currency} on case {self.case_id}"


class RequestStatus(models.TextChoices):
    OPEN = "open", "Waiting for approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"
    VOIDED = "voided", "Void: the case changed"


class AuthorityRequest(models.Model):
    """"I need 1,200 on case C, my limit is 500": one hop to an approver pool, never a chain."""

    case = models.ForeignKey("h2h_core.Case", on_delete=models.PROTECT, related_name="authority_requests")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="authority_requests"
    )
    kind = models.ForeignKey(AuthorityKind, on_delete=models.PROTECT)
    amount = AmountField(**AMOUNT)
    currency = models.CharField(max_length=3, blank=True)
    justification = models.TextField()
    verdict = models.JSONField()
    status = models.CharField(max_length=10, choices=RequestStatus.choices, default=RequestStatus.OPEN)
    # User ids allowed to decide; `pool_is_fallback` when no team manager had the authority.
    pool = models.JSONField(default=list)
    pool_is_fallback = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="requests_decided"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    one_off_grant = models.OneToOneField(
        Grant, null=True, blank=True, on_delete=models.PROTECT, related_name="authority_request"
    )
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["requester", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="request_idempotency_key_per_requester",
            ),
            models.CheckConstraint(name="request_amount_positive", condition=Q(amount__gt=0)),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"request #{self.pk} {self.kind_id} {self.amount} {self.currency}"


class ShadowDecision(models.Model):
    """What an AI agent (or anyone) would have decided under a shadow grant: evaluated and recorded,
    never executed, no usage consumed. A person decides the case; the two are compared."""

    case = models.ForeignKey("h2h_core.Case", on_delete=models.PROTECT, related_name="shadow_decisions")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="shadow_decisions")
    kind = models.ForeignKey(AuthorityKind, on_delete=models.PROTECT, related_name="+")
    amount = AmountField(**AMOUNT)
    currency = models.CharField(max_length=3, blank=True)
    # Whether the shadow grants would have allowed it, and the verdict that says so.
    allowed = models.BooleanField()
    grant = models.ForeignKey(Grant, null=True, blank=True, on_delete=models.PROTECT, related_name="shadow_decisions")
    verdict = models.JSONField()
    rationale = models.TextField()
    ai_model = models.CharField(max_length=80, blank=True)
    ai_model_version = models.CharField(max_length=40, blank=True)
    confidence = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    created_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    payload_fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="shadow_decision_idempotency_key_per_agent",
            ),
            models.CheckConstraint(name="shadow_decision_amount_positive", condition=Q(amount__gt=0)),
        ]
        indexes = [
            models.Index(fields=["agent", "kind", "created_at"]),
            models.Index(fields=["case", "kind"]),
        ]

    def __str__(self) -> str:
        return f"shadow {self.kind_id} {self.amount} {self.currency} on case {self.case_id}"


class OutboxMessage(models.Model):
    """What a billing or CRM system must do because of a decision; delivered later, at least once.

    One message per decision and topic: the decision itself, and later its reversal.
    """

    topic = models.CharField(max_length=60)
    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="outbox_messages")
    payload = models.JSONField()
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["delivered_at", "next_attempt_at"])]
        constraints = [
            models.UniqueConstraint(fields=["decision", "topic"], name="outbox_message_once_per_topic"),
        ]

    def __str__(self) -> str:
        return f"{self.topic} for decision {self.decision_id}"
