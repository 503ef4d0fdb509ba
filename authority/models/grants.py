"""Authority kinds, grants (versioned, never edited in place) and exchange rates."""

from django.conf import settings
from django.db import models
from django.db.models import Q

# Limits and amounts share one exact decimal type. Four places cover every ISO 4217 currency and
# fractional percentages; 15 integer digits are far above any sane amount.
AMOUNT = {"max_digits": 19, "decimal_places": 4}


class Unit(models.TextChoices):
    MONEY = "money", "Money"
    MONTHS = "months", "Months"
    PERCENT = "percent", "Percent"
    COUNT = "count", "Count"


class AuthorityKind(models.Model):
    """What can be decided: refund, goodwill credit, fee waiver, contract extension, discount…"""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    unit = models.CharField(max_length=8, choices=Unit.choices)
    # Maker-checker: a grant whose per-case or period limit exceeds this waits for a second manager.
    confirmation_threshold = models.DecimalField(**AMOUNT, null=True, blank=True)
    # What an executed decision of this kind asks the billing or CRM system to do.
    outbox_topic = models.CharField(max_length=60)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_money(self) -> bool:
        return self.unit == Unit.MONEY


class Effect(models.TextChoices):
    PERMIT = "permit", "Permit"
    FORBID = "forbid", "Forbid (suspension)"


class Period(models.TextChoices):
    NONE = "none", "No period cap"
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"


class GrantStatus(models.TextChoices):
    PENDING = "pending", "Pending confirmation"
    ACTIVE = "active", "Active"
    REJECTED = "rejected", "Rejected"


class Grant(models.Model):
    """One version of "subject S may decide kind K up to L per case and P per period".

    The content of a version never changes. A change writes a new version with the same `lineage`
    and a higher `version`, and closes the old one by setting `superseded_at`. In force at instant T
    means: active, valid_from <= T < valid_until, and not superseded at T.
    """

    lineage = models.BigIntegerField(null=True, blank=True, db_index=True)
    version = models.PositiveIntegerField(default=1)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    status = models.CharField(max_length=8, choices=GrantStatus.choices, default=GrantStatus.ACTIVE)

    subject_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="grants"
    )
    subject_team = models.ForeignKey(
        "h2h_core.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="grants"
    )
    subject_role = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.PROTECT, related_name="grants"
    )
    # A one-off grant, created by approving an authority request, is bound to one case.
    case = models.ForeignKey(
        "h2h_core.Case", null=True, blank=True, on_delete=models.PROTECT, related_name="one_off_grants"
    )

    kind = models.ForeignKey(AuthorityKind, on_delete=models.PROTECT, related_name="grants")
    effect = models.CharField(max_length=8, choices=Effect.choices, default=Effect.PERMIT)
    per_case_limit = models.DecimalField(**AMOUNT, null=True, blank=True)
    period_limit = models.DecimalField(**AMOUNT, null=True, blank=True)
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.NONE)
    currency = models.CharField(max_length=3, blank=True)
    scope_categories = models.JSONField(default=list, blank=True)
    scope_tiers = models.JSONField(default=list, blank=True)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)

    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="grants_made"
    )
    reason = models.TextField()
    created_at = models.DateTimeField()
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="grants_confirmed"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind__code", "id"]
        constraints = [
            models.CheckConstraint(
                name="grant_exactly_one_subject",
                condition=(
                    Q(subject_user__isnull=False, subject_team__isnull=True, subject_role__isnull=True)
                    | Q(subject_user__isnull=True, subject_team__isnull=False, subject_role__isnull=True)
                    | Q(subject_user__isnull=True, subject_team__isnull=True, subject_role__isnull=False)
                ),
            ),
            models.CheckConstraint(
                name="grant_one_off_is_personal_permit",
                condition=Q(case__isnull=True) | Q(subject_user__isnull=False, effect="permit"),
            ),
            models.UniqueConstraint(fields=["lineage", "version"], name="grant_version_unique"),
        ]
        indexes = [
            models.Index(fields=["kind", "subject_user"]),
            models.Index(fields=["kind", "subject_team"]),
            models.Index(fields=["kind", "subject_role"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind.code} grant #{self.lineage}v{self.version} for {self.subject_label}"

    @property
    def subject_label(self) -> str:
        if self.subject_user_id:
            return f"person {self.subject_user}"
        if self.subject_team_id:
            return f"team {self.subject_team}"
        return f"role {self.subject_role}"

    @property
    def level(self) -> str:
        if self.case_id:
            return "one-off"
        if self.subject_user_id:
            return "person"
        if self.subject_team_id:
            return "team"
        return "role"

    @property
    def label(self) -> str:
        return f"#{self.lineage or self.pk} v{self.version}"


class ExchangeRate(models.Model):
    """1 unit of `base` is worth `rate` units of `quote`, from `valid_on` until a newer rate."""

    base = models.CharField(max_length=3)
    quote = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    valid_on = models.DateField()

    class Meta:
        ordering = ["base", "quote", "-valid_on"]
        constraints = [
            models.UniqueConstraint(fields=["base", "quote", "valid_on"], name="exchange_rate_unique_per_day"),
            models.CheckConstraint(name="exchange_rate_positive", condition=Q(rate__gt=0)),
        ]

    def __str__(self) -> str:
        return f"1 {self.base} = {self.rate} {self.quote} on {self.valid_on}"
