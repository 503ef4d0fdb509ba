"""Customers, their cases and each case's timeline."""

from django.conf import settings
from django.db import models

from h2h_core.amounts import MoneyAmountField


class CustomerTier(models.TextChoices):
    STANDARD = "standard", "Standard"
    SILVER = "silver", "Silver"
    GOLD = "gold", "Gold"
    PLATINUM = "platinum", "Platinum"


class Customer(models.Model):
    name = models.CharField(max_length=160)
    email = models.EmailField(blank=True)
    tier = models.CharField(max_length=16, choices=CustomerTier.choices, default=CustomerTier.STANDARD)
    annual_value = MoneyAmountField(max_digits=16, decimal_places=2, default_currency=settings.H2H_BASE_CURRENCY)
    customer_since = models.DateField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CaseCategory(models.TextChoices):
    """The moment that matters a case belongs to."""

    COMPLAINT = "complaint", "Complaint"
    ONBOARDING = "onboarding", "Onboarding"
    RENEWAL = "renewal", "Renewal"
    CRISIS = "crisis", "Crisis"
    HIGH_VALUE = "high_value", "High value"
    BILLING_ERROR = "billing_error", "Billing error"
    OTHER = "other", "Other"


class CaseStatus(models.TextChoices):
    NEW = "new", "New"
    QUEUED = "queued", "In team queue"
    OWNED = "owned", "Owned"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


OPEN_STATUSES = (CaseStatus.NEW, CaseStatus.QUEUED, CaseStatus.OWNED)


class Case(models.Model):
    """A customer problem, owned end to end by one agent.

    The primary key is an integer because viewflow's process artifact stores one; people see
    `reference` (H2H-000123) instead.
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="cases")
    subject = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=CaseCategory.choices)
    amount_at_stake = MoneyAmountField(max_digits=16, decimal_places=2, default_currency=settings.H2H_BASE_CURRENCY)
    stakes_score = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=12, choices=CaseStatus.choices, default=CaseStatus.NEW)
    team = models.ForeignKey("h2h_core.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="owned_cases"
    )
    opened_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    first_response_due = models.DateTimeField(null=True, blank=True)
    resolution_due = models.DateTimeField(null=True, blank=True)
    sla_breached = models.BooleanField(default=False)
    resolution_summary = models.TextField(blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # An integrator's Idempotency-Key: a retry of the same opening finds this case instead of a new one.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    payload_fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["resolution_due", "-stakes_score", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["opened_by", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="case_idempotency_key_per_opener",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["team", "status"]),
            models.Index(fields=["customer", "opened_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    @property
    def reference(self) -> str:
        return f"H2H-{self.pk:06d}" if self.pk else "H2H-(new)"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class CaseEvent(models.Model):
    """One entry on a case's timeline: a note, a claim, a decision, a handover."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        TRIAGED = "triaged", "Triaged"
        CLAIMED = "claimed", "Claimed"
        NOTE = "note", "Note"
        DECISION = "decision", "Decision"
        REQUEST = "request", "Authority request"
        HANDOVER = "handover", "Handover"
        HAND_OFF = "hand_off", "Hand-off from an AI agent"
        RESOLVED = "resolved", "Resolved"
        REOPENED = "reopened", "Reopened"
        CLOSED = "closed", "Closed"
        RATED = "rated", "Rated"
        SLA = "sla", "SLA"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on case {self.case_id}"
