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
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    payload_fingerprint = models.CharField(max_length=64, blank=True)
    executed_at = models.DateTimeField()

    class Meta:
        ordering = ["-executed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="decision_idempotency_key_per_agent",
            ),
            models.CheckConstraint(name="decision_amount_positive", condition=Q(amount__gt=0)),
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


class OutboxMessage(models.Model):
    """What a billing or CRM system must do because of a decision; delivered later, at least once."""

    topic = models.CharField(max_length=60)
    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="outbox_message")
    payload = models.JSONField()
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["delivered_at", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.topic} for decision {self.decision_id}"
