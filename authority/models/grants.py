"""Authority kinds, grants (versioned, never edited in place) and exchange rates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from h2h_core.amounts import AmountField

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
    confirmation_threshold = AmountField(**AMOUNT, null=True, blank=True)
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
    # A pending change whose grant was ended before anyone checked it: it can never take effect.
    VOIDED = "voided", "Voided (the grant was ended)"


# The statuses of a version that is, or may still become, the successor of the version it supersedes.
LIVE_STATUSES = (GrantStatus.PENDING.value, GrantStatus.ACTIVE.value)


@dataclass(frozen=True)
class GrantState:
    """What a grant version is at an instant, named once for every page and the API.

    `code` is one of: pending, rejected, voided, scheduled, active, expired, superseded, ended.
    `at` is the instant the state refers to (rejected or voided at, starts at, expired at, superseded
    or ended at, or for an active version the end of its validity, if any); `version` names the
    version that superseded it (or will, when a scheduled change closes it later: `until`).
    """

    code: str
    at: datetime | None = None
    version: int | None = None
    until: datetime | None = None

    @property
    def in_force(self) -> bool:
        return self.code == "active"

    @property
    def closed(self) -> bool:
        """True when the version will never be in force (again)."""
        return self.code in ("rejected", "voided", "expired", "superseded", "ended")


class GrantQuerySet(models.QuerySet):
    def with_state(self) -> GrantQuerySet:
        """Annotate the version that superseded each grant, so `Grant.state` needs no query per row."""
        successor = Grant.objects.filter(supersedes=OuterRef("pk"), status=GrantStatus.ACTIVE)
        return self.annotate(successor_version=Subquery(successor.values("version")[:1]))


class Grant(models.Model):
    """One version of "subject S may decide kind K up to L per case and P per period".

    The content of a version never changes. A change writes a new version with the same `lineage`
    and a higher `version`, and closes the old one by setting `superseded_at`. In force at instant T
    means: active, valid_from <= T < valid_until, and not superseded at T.

    A version has at most one live successor (pending or active); rejected and voided proposals do
    not count, so a grant stays changeable after a checker rejects a change to it.
    """

    lineage = models.BigIntegerField(null=True, blank=True, db_index=True)
    version = models.PositiveIntegerField(default=1)
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="successors"
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
    per_case_limit = AmountField(**AMOUNT, null=True, blank=True)
    period_limit = AmountField(**AMOUNT, null=True, blank=True)
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.NONE)
    currency = models.CharField(max_length=3, blank=True)
    scope_categories = models.JSONField(default=list, blank=True)
    scope_tiers = models.JSONField(default=list, blank=True)
    # Shadow (log-only): evaluated to record what its subject would have decided; it never allows a
    # decision and consumes no usage. Moving a grant between shadow and live is a maker-checker change.
    shadow = models.BooleanField(default=False)
    # A one-off grant is bound to the case's owner when it was approved (as to its case, kind, amount
    # and currency): a handover, hand-off or reopening voids it, and says why here.
    bound_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    void_reason = models.TextField(blank=True)
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
    # The maker's Idempotency-Key: a retry of the same create or change finds this version.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    payload_fingerprint = models.CharField(max_length=64, blank=True)

    objects = GrantQuerySet.as_manager()

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
            models.CheckConstraint(
                name="grant_shadow_is_standing_permit",
                condition=Q(shadow=False) | Q(case__isnull=True, effect="permit"),
            ),
            models.UniqueConstraint(fields=["lineage", "version"], name="grant_version_unique"),
            models.UniqueConstraint(
                fields=["supersedes"], condition=Q(status__in=LIVE_STATUSES), name="grant_one_live_successor"
            ),
            models.UniqueConstraint(
                fields=["granted_by", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                name="grant_idempotency_key_per_maker",
            ),
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

    @property
    def state(self) -> GrantState:
        """The state of this version now (see `state_at`)."""
        return self.state_at(timezone.now())

    def state_at(self, at: datetime) -> GrantState:
        """Name what this version is at instant `at`: the one answer every page and the API show.

        Reads the superseding version from the `with_state()` annotation when present, else asks once.
        """
        if self.status == GrantStatus.PENDING:
            return GrantState("pending")
        if self.status == GrantStatus.REJECTED:
            return GrantState("rejected", at=self.confirmed_at)
        if self.status == GrantStatus.VOIDED:
            return GrantState("voided", at=self.confirmed_at)
        successor = self._successor_version() if self.superseded_at is not None else None
        if self.superseded_at is not None and self.superseded_at <= at:
            return GrantState("superseded" if successor else "ended", at=self.superseded_at, version=successor)
        if self.valid_until is not None and self.valid_until <= at:
            return GrantState("expired", at=self.valid_until)
        if self.valid_from > at:
            return GrantState("scheduled", at=self.valid_from, version=successor, until=self.superseded_at)
        ends = min(filter(None, (self.valid_until, self.superseded_at)), default=None)
        return GrantState("active", at=ends, version=successor, until=self.superseded_at)

    def _successor_version(self) -> int | None:
        if hasattr(self, "successor_version"):
            return self.successor_version
        return (Grant.objects.filter(supersedes=self, status=GrantStatus.ACTIVE)
                .values_list("version", flat=True).first())


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
