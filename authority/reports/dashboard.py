"""The team dashboard: per agent and per team, a fixed number of queries whatever the team size."""


from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import (
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
)
from django.utils import timezone

from authority.models import (
    AuthorityKind,
    AuthorityRequest,
    Decision,
    RequestStatus,
)
from authority.reports.people import people_authority
from h2h_core.models import Case, CaseEvent, Role, Team
from h2h_core.models.cases import OPEN_STATUSES

User = get_user_model()
AGENT_ROLES = (Role.AGENT, Role.SENIOR_AGENT)  # whose figures the dashboard shows


# --- the team dashboard -----------------------------------------------------------------------


@dataclass
class AgentFigures:
    user: object
    own_authority: int = 0
    via_approval: int = 0
    requests: int = 0
    approved: int = 0
    rejected: int = 0
    expired: int = 0
    approve_time: timedelta | None = None
    resolved: int = 0
    resolution_time: timedelta | None = None
    first_contact: int = 0
    reopened: int = 0
    rating: float | None = None
    rated: int = 0
    opened: int = 0
    breached: int = 0
    overdue_open: int = 0
    utilisation: int | None = None
    utilisation_kind: str = ""
    ratings_by_kind: dict = field(default_factory=dict)

    @property
    def decided_requests(self) -> int:
        return self.approved + self.rejected + self.expired

    @property
    def approval_rate(self) -> int | None:
        return round(100 * self.approved / self.decided_requests) if self.decided_requests else None

    @property
    def first_contact_rate(self) -> int | None:
        return round(100 * self.first_contact / self.resolved) if self.resolved else None

    @property
    def reopen_rate(self) -> int | None:
        return round(100 * self.reopened / self.resolved) if self.resolved else None


@dataclass
class Dashboard:
    teams: list[Team]
    since: datetime
    until: datetime
    agents: list[AgentFigures]
    kinds: list[AuthorityKind]
    totals: AgentFigures


def _duration(expression_end: str, expression_start: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(expression_end) - F(expression_start), output_field=DurationField())


def team_dashboard(*, teams: list[Team], days: int = 30, now: datetime | None = None) -> Dashboard:
    """Return the dashboard figures of `teams` over the last `days` days.

    A fixed number of aggregate queries (grouped by agent), whatever the number of agents, cases,
    decisions and requests: agents, kinds, decisions, requests, resolved cases, opened cases, ratings
    by kind, and people_authority's five.
    """
    now = now or timezone.now()
    since = now - timedelta(days=days)
    team_ids = [team.pk for team in teams]
    agents = list(User.objects.filter(teams__in=team_ids, groups__name__in=AGENT_ROLES, is_active=True)
                  .distinct().order_by("username"))
    ids = [a.pk for a in agents]
    figures = {a.pk: AgentFigures(user=a) for a in agents}
    kinds = list(AuthorityKind.objects.order_by("name"))

    for row in (Decision.objects.filter(agent_id__in=ids, case__team_id__in=team_ids, executed_at__gte=since,
                                        executed_at__lt=now)
                .values("agent_id").annotate(own=Count("pk", filter=Q(request__isnull=True)),
                                             approved=Count("pk", filter=Q(request__isnull=False)))):
        figures[row["agent_id"]].own_authority = row["own"]
        figures[row["agent_id"]].via_approval = row["approved"]

    for row in (AuthorityRequest.objects.filter(requester_id__in=ids, case__team_id__in=team_ids,
                                                created_at__gte=since, created_at__lt=now)
                .values("requester_id")
                .annotate(n=Count("pk"),
                          approved=Count("pk", filter=Q(status=RequestStatus.APPROVED)),
                          rejected=Count("pk", filter=Q(status=RequestStatus.REJECTED)),
                          expired=Count("pk", filter=Q(status=RequestStatus.EXPIRED)),
                          wait=Avg(_duration("decided_at", "created_at"),
                                   filter=Q(status=RequestStatus.APPROVED)))):
        entry = figures[row["requester_id"]]
        entry.requests, entry.approved, entry.rejected, entry.expired = (
            row["n"], row["approved"], row["rejected"], row["expired"])
        entry.approve_time = row["wait"]

    # First contact: resolved by the agent who first claimed it, never handed over nor reopened.
    handed = CaseEvent.objects.filter(case=OuterRef("pk"), kind=CaseEvent.Kind.HANDOVER)
    reopened = CaseEvent.objects.filter(case=OuterRef("pk"), kind=CaseEvent.Kind.REOPENED)
    for row in (Case.objects.filter(owner_id__in=ids, team_id__in=team_ids, resolved_at__gte=since,
                                    resolved_at__lt=now)
                .alias(handed=Exists(handed), reopened=Exists(reopened))
                .values("owner_id")
                .annotate(n=Count("pk"), took=Avg(_duration("resolved_at", "opened_at")),
                          fcr=Count("pk", filter=Q(handed=False, reopened=False)),
                          reo=Count("pk", filter=Q(reopened=True)),
                          avg_rating=Avg("rating"), n_rated=Count("rating"))):
        entry = figures[row["owner_id"]]
        entry.resolved, entry.resolution_time, entry.first_contact = row["n"], row["took"], row["fcr"]
        entry.reopened, entry.rated = row["reo"], row["n_rated"]
        entry.rating = round(row["avg_rating"], 2) if row["avg_rating"] is not None else None

    for row in (Case.objects.filter(owner_id__in=ids, team_id__in=team_ids, opened_at__gte=since,
                                    opened_at__lt=now)
                .values("owner_id")
                .annotate(n=Count("pk"), breached=Count("pk", filter=Q(sla_breached=True)),
                          overdue=Count("pk", filter=Q(status__in=OPEN_STATUSES, resolution_due__lt=now)))):
        entry = figures[row["owner_id"]]
        entry.opened, entry.breached, entry.overdue_open = row["n"], row["breached"], row["overdue"]

    for row in (Decision.objects.filter(agent_id__in=ids, case__team_id__in=team_ids, executed_at__gte=since,
                                        executed_at__lt=now, case__rating__isnull=False)
                .values("agent_id", "kind_id")
                .annotate(avg_rating=Avg("case__rating"), n=Count("case_id", distinct=True))):
        figures[row["agent_id"]].ratings_by_kind[row["kind_id"]] = (round(row["avg_rating"], 1), row["n"])

    for person in people_authority(agents, at=now):
        worst = person.worst
        if worst is not None:
            figures[person.user.pk].utilisation = worst.percent
            figures[person.user.pk].utilisation_kind = worst.kind.name

    rows = [figures[a.pk] for a in agents]
    return Dashboard(teams=list(teams), since=since, until=now, agents=rows, kinds=kinds, totals=_totals(rows))


def _weighted_duration(rows, value: str, weight: str) -> timedelta | None:
    pairs = [(getattr(r, value), getattr(r, weight)) for r in rows if getattr(r, value) is not None]
    total = sum(w for _, w in pairs)
    if not total:
        return None
    return sum((v * w for v, w in pairs), timedelta()) / total


def _totals(rows: list[AgentFigures]) -> AgentFigures:
    total = AgentFigures(user=None)
    for name in ("own_authority", "via_approval", "requests", "approved", "rejected", "expired", "resolved",
                 "first_contact", "reopened", "rated", "opened", "breached", "overdue_open"):
        setattr(total, name, sum(getattr(r, name) for r in rows))
    total.approve_time = _weighted_duration(rows, "approve_time", "approved")
    total.resolution_time = _weighted_duration(rows, "resolution_time", "resolved")
    rated = [(r.rating, r.rated) for r in rows if r.rating is not None and r.rated]
    total.rating = round(sum(v * w for v, w in rated) / sum(w for _, w in rated), 2) if rated else None
    return total
