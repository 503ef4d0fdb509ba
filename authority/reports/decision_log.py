"""The auditor's decision log: filters, matching decisions and refusals, bounded counts."""


from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import (
    CharField,
    DecimalField,
    F,
    Q,
    QuerySet,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from authority.models import (
    Decision,
)
from h2h_core.models import AuditEvent, Case
from h2h_core.organisation import current_organisation

# --- the auditor's decision log ---------------------------------------------------------------

COUNT_CAP = 10_000


@dataclass(frozen=True)
class DecisionFilters:
    agent: str = ""
    team: int | None = None
    kind: str = ""
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    outcome: str = ""
    date_from: date | None = None
    date_to: date | None = None
    case: int | None = None
    customer: str = ""
    grant: int | None = None
    #: Exact instants (the API's): at or after `after`, before `before`; `date_from`/`date_to` are whole days.
    after: datetime | None = None
    before: datetime | None = None

    def as_query(self) -> dict[str, str]:
        """The filters as GET parameters (for links and exports that follow them)."""
        values = {
            "agent": self.agent, "team": self.team, "kind": self.kind, "amount_min": self.amount_min,
            "amount_max": self.amount_max, "outcome": self.outcome, "date_from": self.date_from,
            "date_to": self.date_to, "case": self.case, "customer": self.customer, "grant": self.grant,
            "after": self.after, "before": self.before,
        }
        return {key: str(value) for key, value in values.items() if value not in (None, "")}


OUTCOMES = (
    ("", "Executed (any)"),
    ("own", "Executed within own authority"),
    ("approved", "Executed after approval"),
    ("refused", "Refused"),
)


def time_bounds(*, date_from: date | None = None, date_to: date | None = None, after: datetime | None = None,
                before: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """Return the half-open span [start, end) the filters allow: whole days in the organisation's time zone
    (`date_to` included), narrowed by exact instants."""
    tz = current_organisation().tz
    starts, ends = [after] if after else [], [before] if before else []
    if date_from:
        starts.append(datetime.combine(date_from, datetime.min.time(), tzinfo=tz))
    if date_to:
        ends.append(datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tzinfo=tz))
    return max(starts, default=None), min(ends, default=None)


def _bounds(filters: DecisionFilters) -> tuple[datetime | None, datetime | None]:
    return time_bounds(date_from=filters.date_from, date_to=filters.date_to, after=filters.after,
                       before=filters.before)


def decisions_matching(filters: DecisionFilters, *, among: QuerySet[Decision] | None = None) -> QuerySet[Decision]:
    """Executed decisions matching the filters, newest first (seek on the (executed_at, id) index).

    `among`: the decisions the reader may see (the API's visibility queryset); default all of them.
    """
    qs = Decision.objects.all() if among is None else among
    if filters.agent:
        qs = qs.filter(agent__username=filters.agent)
    if filters.team:
        qs = qs.filter(case__team_id=filters.team)
    if filters.kind:
        qs = qs.filter(kind__code=filters.kind)
    if filters.amount_min is not None:
        qs = qs.filter(amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        qs = qs.filter(amount__lte=filters.amount_max)
    if filters.outcome == "own":
        qs = qs.filter(request__isnull=True)
    elif filters.outcome == "approved":
        qs = qs.filter(request__isnull=False)
    start, end = _bounds(filters)
    if start:
        qs = qs.filter(executed_at__gte=start)
    if end:
        qs = qs.filter(executed_at__lt=end)
    if filters.case:
        qs = qs.filter(case_id=filters.case)
    if filters.customer:
        qs = qs.filter(case__customer_id=int(filters.customer)) if filters.customer.isdigit() else qs.filter(
            case__customer__name__icontains=filters.customer)
    if filters.grant:
        qs = qs.filter(grant_id=filters.grant)
    return qs.order_by("-executed_at", "-id")


def refusals_matching(filters: DecisionFilters) -> QuerySet[AuditEvent]:
    """Refused decisions (audit events: nothing was decided) matching the filters, newest first."""
    qs = AuditEvent.objects.filter(action="decision.refused")
    if filters.agent:
        qs = qs.filter(actor_username=filters.agent)
    if filters.kind:
        qs = qs.filter(after__kind=filters.kind)
    amount = Cast(KT("after__amount"), output_field=DecimalField(max_digits=19, decimal_places=4))
    if filters.amount_min is not None:
        qs = qs.alias(asked=amount).filter(asked__gte=filters.amount_min)
    if filters.amount_max is not None:
        qs = qs.alias(asked=amount).filter(asked__lte=filters.amount_max)
    start, end = _bounds(filters)
    if start:
        qs = qs.filter(occurred_at__gte=start)
    if end:
        qs = qs.filter(occurred_at__lt=end)
    cases = None
    if filters.team:
        cases = Case.objects.filter(team_id=filters.team)
    if filters.customer:
        customer = (Q(customer_id=int(filters.customer)) if filters.customer.isdigit()
                    else Q(customer__name__icontains=filters.customer))
        cases = (cases if cases is not None else Case.objects.all()).filter(customer)
    if filters.case:
        qs = qs.filter(object_id=str(filters.case))
    if cases is not None:
        qs = qs.filter(object_id__in=cases.annotate(pk_text=Cast("pk", output_field=CharField())).values("pk_text"))
    if filters.grant:
        qs = qs.none()
    return qs.order_by(F("seq").desc(nulls_first=True), "-id")  # not sealed yet: newest, by id


def capped_count(qs: QuerySet, cap: int | None = None) -> tuple[int, bool]:
    """Count at most `cap` rows (one bounded query): (count, True when there are more)."""
    cap = COUNT_CAP if cap is None else cap
    found = qs.order_by()[: cap + 1].count()
    return min(found, cap), found > cap
