"""Reads of the manager and auditor consoles, each a fixed number of queries whatever the team size.

Nothing here writes. Every function documents its query budget; the tests in tests/consoles assert
it, because a console that costs one query per person or per row gets slow exactly when the
organisation grows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import (
    Avg,
    CharField,
    Count,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from h2h_core.models import AuditEvent, Case, CaseEvent, Role, Team
from h2h_core.models.cases import OPEN_STATUSES
from h2h_core.organisation import current_organisation

from . import periods, selectors, usage
from .models import (
    AuthorityKind,
    AuthorityRequest,
    Decision,
    Effect,
    Grant,
    GrantStatus,
    RequestStatus,
    ReviewFlag,
)
from .policy import managed_team_ids as policy_managed_team_ids
from .policy.evaluation import LEVEL_ORDER, Question, counters_needed, currencies_needed, resolve
from .services.oversight import delegations_in_force

User = get_user_model()
WARN_LEVELS = (100, 90, 75)
AGENT_ROLES = (Role.AGENT, Role.SENIOR_AGENT)


# --- per person: limit, used, left, reset -------------------------------------------------------


@dataclass
class KindUsage:
    """One person's standing authority for one kind outside any case scope, and its period usage."""

    kind: AuthorityKind
    deciding: Grant | None
    suspensions: list[Grant]
    used: Decimal | None = None
    left: Decimal | None = None
    percent: int | None = None
    resets_at: datetime | None = None
    key: str | None = None

    @property
    def warning(self) -> int | None:
        """The highest warning threshold reached: 100, 90 or 75 (% of the period cap), else None."""
        if self.percent is None:
            return None
        return next((level for level in WARN_LEVELS if self.percent >= level), None)


@dataclass
class PersonAuthority:
    user: object
    teams: list[Team]
    roles: list[str]
    kinds: list[KindUsage] = field(default_factory=list)

    @property
    def worst(self) -> KindUsage | None:
        rated = [row for row in self.kinds if row.percent is not None]
        return max(rated, key=lambda row: row.percent) if rated else None


def _deciding_grant(permits: list[Grant]) -> Grant | None:
    """The grant that decides outside any case scope: as selectors.authority_summary chooses it."""
    for level in LEVEL_ORDER:
        at_level = [g for g in permits if g.level == level and not g.scope_categories and not g.scope_tiers]
        at_level = at_level or [g for g in permits if g.level == level]
        if at_level:
            return max(at_level, key=lambda g: (g.per_case_limit or Decimal("Infinity"), -g.pk))
    return None


def people_authority(people, *, at: datetime | None = None) -> list[PersonAuthority]:
    """Return, for each person, per kind: deciding grant, limit, used, left, reset (constant queries).

    Queries: kinds, team memberships, role memberships, grants in force, usage counters (5), however
    many people and grants there are.
    """
    at = at or timezone.now()
    tz = current_organisation().tz
    people = list(people)
    ids = [p.pk for p in people]
    kinds = list(AuthorityKind.objects.order_by("name"))
    teams_of: dict[int, list[Team]] = defaultdict(list)
    for link in Team.members.through.objects.filter(user_id__in=ids).select_related("team").order_by("team__name"):
        teams_of[link.user_id].append(link.team)
    roles_of: dict[int, list[Group]] = defaultdict(list)
    for link in User.groups.through.objects.filter(user_id__in=ids).select_related("group").order_by("group__name"):
        roles_of[link.user_id].append(link.group)
    team_ids = {team.pk for teams in teams_of.values() for team in teams}
    group_ids = {group.pk for groups in roles_of.values() for group in groups}
    grants = list(
        Grant.objects.filter(selectors.in_force_at(at), case__isnull=True)
        .filter(Q(subject_user_id__in=ids) | Q(subject_team_id__in=team_ids) | Q(subject_role_id__in=group_ids))
        .select_related("subject_user", "subject_team", "subject_role")
    )
    result, keys = [], []
    for person in people:
        mine = [
            g for g in grants
            if g.subject_user_id == person.pk
            or (g.subject_team_id and g.subject_team_id in {t.pk for t in teams_of[person.pk]})
            or (g.subject_role_id and g.subject_role_id in {r.pk for r in roles_of[person.pk]})
        ]
        row = PersonAuthority(user=person, teams=teams_of[person.pk], roles=[r.name for r in roles_of[person.pk]])
        for kind in kinds:
            of_kind = [g for g in mine if g.kind_id == kind.pk]
            deciding = _deciding_grant([g for g in of_kind if g.effect == Effect.PERMIT])
            entry = KindUsage(kind=kind, deciding=deciding,
                              suspensions=[g for g in of_kind if g.effect == Effect.FORBID])
            start = periods.bucket_start(deciding.period, at, tz) if deciding else None
            if start is not None:
                entry.key = usage.period_key(agent_id=person.pk, kind_code=kind.code, currency=deciding.currency,
                                             period=deciding.period, start=start)
                entry.resets_at = periods.resets_at(deciding.period, at, tz)
                keys.append(entry.key)
            row.kinds.append(entry)
        result.append(row)
    used = selectors.usage_for_keys(keys)
    for row in result:
        for entry in row.kinds:
            if entry.key is None:
                continue
            entry.used = used.get(entry.key, Decimal(0))
            limit = entry.deciding.period_limit
            if limit is not None:
                entry.left = max(limit - entry.used, Decimal(0))
                entry.percent = int(entry.used * 100 / limit) if limit else 100
    return result


# --- the approvals inbox ----------------------------------------------------------------------


def inbox_for(user) -> QuerySet[AuthorityRequest]:
    """Open requests `user` may decide: those in whose pool they are, and, while a manager of the
    case's team hands them their approval rights, that team's requests (authority.services.oversight).
    Mirrors authority.services.requests._require_approver: a delegate in a pool whose delegation has
    ended no longer sees the request.
    """
    in_pool = selectors.requests_for_approver(user).values("pk")
    delegators = delegations_in_force(at=timezone.now()).filter(delegate_id=user.pk).values("manager_id")
    delegated_teams = User.objects.filter(
        pk__in=delegators, userobjectpermission__permission__codename="manage_team",
    ).values("userobjectpermission__object_pk")
    delegated = Q(pool_is_fallback=False, case__team_id__in=Team.objects.annotate(
        pk_text=Cast("pk", output_field=CharField())).filter(pk_text__in=delegated_teams).values("pk"))
    own_right = Q(pool_is_fallback=True) | Q(case__team_id__in=policy_managed_team_ids(user))
    return (
        AuthorityRequest.objects.filter(status=RequestStatus.OPEN)
        .filter((Q(pk__in=in_pool) & own_right) | delegated)
        .exclude(requester_id=user.pk)
        .select_related("case__customer", "case__team", "requester", "kind")
        .order_by("created_at", "id")
    )


def over_by(request: AuthorityRequest) -> dict:
    """How far the request is over the requester's headroom, from the verdict stored with it."""
    verdict = request.verdict or {}
    currency = verdict.get("counted_currency") or request.currency
    needs = Decimal(str(verdict.get("counted_amount") or request.amount))
    lefts = [Decimal(str(verdict[key])) for key in ("per_case_headroom", "period_headroom")
             if verdict.get(key) not in (None, "")]
    left = min(lefts) if lefts else Decimal(0)
    return {"needs": needs, "left": left, "over": max(needs - left, Decimal(0)), "currency": currency,
            "no_authority": not verdict.get("deciding_grants")}


def approver_verdicts(approver, requests: list[AuthorityRequest], *, at: datetime | None = None) -> dict:
    """Return {request id: the approver's own verdict for its amount}, without per-request queries.

    The same resolution as policy.evaluate, with its inputs loaded once for every request: grants
    (1), usage counters (1), and exchange rates (1 per currency asked in, only when conversion is
    needed). Requests must come with case__customer and kind loaded.
    """
    at = at or timezone.now()
    tz = current_organisation().tz
    if not requests:
        return {}
    grants = list(selectors.grants_applicable_to_agent(agent=approver, kind_id=None, case_id=None, at=at))
    questions = {}
    for request in requests:
        kind = request.kind
        questions[request.pk] = Question(
            agent_id=approver.pk, kind_code=kind.code, kind_name=kind.name, unit=kind.unit, amount=request.amount,
            currency=request.currency, case_id=request.case_id, case_reference=request.case.reference,
            case_category=request.case.category, customer_tier=request.case.customer.tier, at=at, tz=tz,
        )
    of_kind = {pk: [g for g in grants if g.kind_id == request.kind_id]
               for pk, request in ((r.pk, r) for r in requests)}
    keys = sorted({key for pk, question in questions.items() for key in counters_needed(question, of_kind[pk])})
    used = selectors.usage_for_keys(keys)
    targets: dict[str, set[str]] = defaultdict(set)
    for pk, question in questions.items():
        targets[question.currency] |= currencies_needed(question, of_kind[pk])
    rates = {currency: selectors.latest_rates(from_currency=currency, to_currencies=wanted, on=at.astimezone(tz).date())
             for currency, wanted in targets.items() if wanted}
    return {pk: resolve(question, of_kind[pk], used, rates.get(question.currency, {}))
            for pk, question in questions.items()}


@dataclass
class TrackRecord:
    decisions: int = 0
    own_authority: int = 0
    via_approval: int = 0
    approved: int = 0
    rejected: int = 0
    expired: int = 0
    resolved: int = 0
    rating: float | None = None
    reopened: int = 0
    flags: int = 0


def track_records(user_ids, *, days: int = 90) -> dict[int, TrackRecord]:
    """Return each agent's record over the last `days` days: 4 queries for any number of agents."""
    since = timezone.now() - timedelta(days=days)
    ids = list(set(user_ids))
    records = {pk: TrackRecord() for pk in ids}
    for row in (Decision.objects.filter(agent_id__in=ids, executed_at__gte=since).values("agent_id")
                .annotate(n=Count("pk"), own=Count("pk", filter=Q(request__isnull=True)))):
        record = records[row["agent_id"]]
        record.decisions, record.own_authority = row["n"], row["own"]
        record.via_approval = row["n"] - row["own"]
    for row in (AuthorityRequest.objects.filter(requester_id__in=ids, created_at__gte=since)
                .values("requester_id", "status").annotate(n=Count("pk"))):
        record = records[row["requester_id"]]
        if row["status"] in (RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.EXPIRED):
            setattr(record, row["status"], row["n"])
    reopened = CaseEvent.objects.filter(case=OuterRef("pk"), kind=CaseEvent.Kind.REOPENED)
    for row in (Case.objects.filter(owner_id__in=ids, resolved_at__gte=since).alias(reo=Exists(reopened))
                .values("owner_id").annotate(n=Count("pk"), avg_rating=Avg("rating"),
                                             n_reopened=Count("pk", filter=Q(reo=True)))):
        record = records[row["owner_id"]]
        record.resolved, record.reopened = row["n"], row["n_reopened"]
        record.rating = round(row["avg_rating"], 1) if row["avg_rating"] is not None else None
    for row in (ReviewFlag.objects.filter(decision__agent_id__in=ids).values("decision__agent_id")
                .annotate(n=Count("pk"))):
        records[row["decision__agent_id"]].flags = row["n"]
    return records


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

    def as_query(self) -> dict[str, str]:
        """The filters as GET parameters (for links and exports that follow them)."""
        values = {
            "agent": self.agent, "team": self.team, "kind": self.kind, "amount_min": self.amount_min,
            "amount_max": self.amount_max, "outcome": self.outcome, "date_from": self.date_from,
            "date_to": self.date_to, "case": self.case, "customer": self.customer, "grant": self.grant,
        }
        return {key: str(value) for key, value in values.items() if value not in (None, "")}


OUTCOMES = (
    ("", "Executed (any)"),
    ("own", "Executed within own authority"),
    ("approved", "Executed after approval"),
    ("refused", "Refused"),
)


def _day_bounds(filters: DecisionFilters) -> tuple[datetime | None, datetime | None]:
    tz = current_organisation().tz
    start = end = None
    if filters.date_from:
        start = datetime.combine(filters.date_from, datetime.min.time(), tzinfo=tz)
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return start, end


def decisions_matching(filters: DecisionFilters) -> QuerySet[Decision]:
    """Executed decisions matching the filters, newest first (seek on the (executed_at, id) index)."""
    qs = Decision.objects.all()
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
    start, end = _day_bounds(filters)
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
    start, end = _day_bounds(filters)
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
    return qs.order_by("-seq")


def capped_count(qs: QuerySet, cap: int | None = None) -> tuple[int, bool]:
    """Count at most `cap` rows (one bounded query): (count, True when there are more)."""
    cap = COUNT_CAP if cap is None else cap
    found = qs.order_by()[: cap + 1].count()
    return min(found, cap), found > cap


# --- keyset (seek) paging ---------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    rows: list
    newer: str | None
    older: str | None


def _encode(value: datetime, pk: int) -> str:
    return f"{value.isoformat()}~{pk}"


def _decode(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor or "~" not in cursor:
        return None
    stamp, _, pk = cursor.rpartition("~")
    try:
        moment = datetime.fromisoformat(stamp.replace(" ", "+"))
        key = int(pk)
    except ValueError:
        return None
    if timezone.is_naive(moment):
        return None
    return moment, key


def seek_page(qs: QuerySet, *, field_name: str, after: str | None, before: str | None, size: int) -> Page:
    """Return one page of `qs` (ordered by -field, -id) after or before a cursor, with neighbours.

    Seeks on (field, id) instead of OFFSET, so page 10,000 costs what page 1 costs. One query.
    """
    older_than = _decode(after)
    newer_than = _decode(before) if older_than is None else None
    if older_than:
        value, pk = older_than
        rows = list(qs.filter(Q(**{f"{field_name}__lt": value}) | Q(**{field_name: value, "pk__lt": pk}))
                    [: size + 1])
        has_more, has_less = len(rows) > size, True
        rows = rows[:size]
    elif newer_than:
        value, pk = newer_than
        rows = list(qs.filter(Q(**{f"{field_name}__gt": value}) | Q(**{field_name: value, "pk__gt": pk}))
                    .order_by(field_name, "pk")[: size + 1])
        has_less = len(rows) > size
        rows = list(reversed(rows[:size]))
        has_more = True
    else:
        rows = list(qs[: size + 1])
        has_more, has_less = len(rows) > size, False
        rows = rows[:size]
    if not rows:
        return Page(rows=[], newer=None, older=None)
    first, last = rows[0], rows[-1]
    return Page(
        rows=rows,
        newer=_encode(getattr(first, field_name), first.pk) if has_less else None,
        older=_encode(getattr(last, field_name), last.pk) if has_more else None,
    )


def seek_page_by_int(qs: QuerySet, *, field_name: str, after: str | None, before: str | None,
                     size: int) -> Page:
    """Keyset paging on a unique integer (the audit log's seq, a grant's id), newest first."""
    def parse(value):
        return int(value) if value and value.isdigit() else None

    older_than, newer_than = parse(after), parse(before)
    if older_than is not None:
        rows = list(qs.filter(**{f"{field_name}__lt": older_than})[: size + 1])
        has_more, has_less = len(rows) > size, True
        rows = rows[:size]
    elif newer_than is not None:
        rows = list(qs.filter(**{f"{field_name}__gt": newer_than}).order_by(field_name)[: size + 1])
        has_less = len(rows) > size
        rows = list(reversed(rows[:size]))
        has_more = True
    else:
        rows = list(qs[: size + 1])
        has_more, has_less = len(rows) > size, False
        rows = rows[:size]
    if not rows:
        return Page(rows=[], newer=None, older=None)
    return Page(rows=rows, newer=str(getattr(rows[0], field_name)) if has_less else None,
                older=str(getattr(rows[-1], field_name)) if has_more else None)


# --- authority change history -----------------------------------------------------------------


def grant_changes(*, kind: str = "", level: str = "", maker: str = "", status: str = "") -> QuerySet[Grant]:
    """Every grant version, newest first, with maker, checker and the version it replaced."""
    qs = Grant.objects.select_related(
        "kind", "subject_user", "subject_team", "subject_role", "granted_by", "confirmed_by", "supersedes", "case"
    )
    if kind:
        qs = qs.filter(kind__code=kind)
    if level == "one-off":
        qs = qs.filter(case__isnull=False)
    elif level == "person":
        qs = qs.filter(subject_user__isnull=False, case__isnull=True)
    elif level == "team":
        qs = qs.filter(subject_team__isnull=False)
    elif level == "role":
        qs = qs.filter(subject_role__isnull=False)
    if maker:
        qs = qs.filter(granted_by__username=maker)
    if status in GrantStatus.values:
        qs = qs.filter(status=status)
    return qs.order_by("-id")


GRANT_FIELDS = (
    ("effect", "Effect"),
    ("per_case_limit", "Per case"),
    ("period_limit", "Period cap"),
    ("period", "Period"),
    ("currency", "Currency"),
    ("scope_categories", "Case categories"),
    ("scope_tiers", "Customer tiers"),
    ("valid_from", "Valid from"),
    ("valid_until", "Valid until"),
)


def grant_diff(old, new) -> list[dict]:
    """Field-by-field difference between two grant versions (or a grant and proposed terms)."""
    rows = []
    for name, label in GRANT_FIELDS:
        before = getattr(old, name, None) if old is not None else None
        after = getattr(new, name, None)
        if isinstance(before, tuple | list):
            before = sorted(before)
        if isinstance(after, tuple | list):
            after = sorted(after)
        rows.append({"field": name, "label": label, "before": before, "after": after,
                     "changed": old is not None and before != after,
                     "before_currency": getattr(old, "currency", "") or "", "after_currency": new.currency or ""})
    return rows


# --- review sampling ----------------------------------------------------------------------------

SAMPLE_SMALL = 50_000
SAMPLE_ROUNDS = 5


def sample_decisions(qs: QuerySet[Decision], *, size: int, seed: int) -> list[int]:
    """Draw a uniform random sample of `size` decision ids from `qs`, reproducible from `seed`.

    Up to 50,000 matching decisions: their ids are read once (one query) and sampled. Beyond: ids
    are drawn at random between the smallest and largest matching id and looked up by primary
    key, in a few rounds (decision ids have no gaps worth speaking of: decisions are never
    deleted), so a million rows cost a handful of indexed queries, never ORDER BY random().
    """
    import random

    rng = random.Random(seed)
    qs = qs.order_by()
    total, more = capped_count(qs, cap=SAMPLE_SMALL)
    if not more:
        ids = sorted(qs.values_list("pk", flat=True))
        return sorted(rng.sample(ids, min(size, len(ids))))
    from django.db.models import Max, Min

    bounds = qs.aggregate(lo=Min("pk"), hi=Max("pk"))
    lo, hi = bounds["lo"], bounds["hi"]
    chosen: set[int] = set()
    density = 1.0
    for _ in range(SAMPLE_ROUNDS):
        wanted = size - len(chosen)
        if wanted <= 0:
            break
        draws = {rng.randint(lo, hi) for _ in range(min(int(wanted / density * 1.3) + 5, 20_000))} - chosen
        found = set(qs.filter(pk__in=draws).values_list("pk", flat=True))
        density = max(len(found) / max(len(draws), 1), 0.01)
        chosen |= set(rng.sample(sorted(found), wanted)) if len(found) > wanted else found
    return sorted(chosen)[:size]
