"""Limit recommendations: per agent and kind, raise or lower the deciding grant's limits, from evidence.

For every agent (people and AI agents) of the teams in scope and every kind, the grant that speaks
for them outside any case (`authority.policy.evaluation.standing_grant`, as "my authority" and the
people page show) is weighed against five signals over the last EVIDENCE_DAYS days:

- utilisation: the agent's period usage (UsageCounter, one row per period bucket) as a share of the
  grant's period cap, in the last three buckets of its period (the current one included). High:
  at least HIGH_UTILISATION % in at least 2 of the 3; tiny: under TINY_UTILISATION % in all 3.
- refusals just over: `decision.refused` audit events of the agent for the kind whose asked amount
  (counted in the grant's currency) exceeded the headroom left (the smaller of the per-case and
  the period headroom) by at most JUST_OVER_SHARE (25 %). Frequent: at least FREQUENT_REFUSALS.
- approvals: the agent's authority requests of the kind, approved out of decided (approved,
  rejected or expired). Mostly granted: at least one decided and at least MOSTLY_APPROVED %.
- quality of their decisions of the kind (on the cases of the teams in scope): the mean customer
  rating (CSAT) of the cases, the share of decisions whose case was reopened after the decision,
  and the share of decisions reversed; each compared with the same figures of the team (every
  decision of the kind on the team's cases in the period).

Rules, in order:

1. LOWER when reversals or reopenings are well above the team's: at least WELL_ABOVE_MIN events
   and a rate at least WELL_ABOVE_POINTS points above the team's. The limits are halved
   (rounded down to a sensible step).
2. RAISE when (utilisation is high, or refusals just over are frequent) and their requests are
   mostly granted and quality is not worse than the team's (CSAT at most CSAT_TOLERANCE below the
   team's, reopen and reversal rates at most RATE_TOLERANCE points above). The per-case limit
   becomes the 90th percentile (nearest rank) of what they needed (the amounts of their approved
   requests and of their refusals just over), rounded up to a sensible step, when that is above the
   current limit; with high utilisation the period cap rises by a quarter; the period cap is never
   left below the per-case limit. Never above the approving manager's own authority
   (`manager_cap`): a manager cannot grant beyond what they may decide themselves.
3. LOWER when utilisation was tiny in each of the last three periods (the grant in force over all
   three) and nothing was refused or requested: the period cap becomes twice the highest usage of
   those periods, no lower than the per-case limit.

A sensible step: whole units below 100, then multiples of 5, 50, 500… (645, 1,250, 57,500).
Queries: a fixed number whatever the number of agents, kinds, decisions, requests or refusals (see
`recommendations`); everything is aggregated in the database.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Avg,
    Count,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    TextField,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Least
from django.utils import timezone

from authority import periods
from authority.models import (
    AuthorityKind,
    AuthorityRequest,
    Decision,
    Effect,
    Grant,
    Period,
    RequestStatus,
    UsageCounter,
)
from authority.policy.evaluation import standing_grant
from authority.quantities import format_quantity
from authority.selectors import grants_applicable_to_agent, in_force_at, teams_whose_grants_speak_for
from h2h_core.models import AuditEvent, CaseEvent, Role, Team
from h2h_core.organisation import current_organisation

User = get_user_model()

EVIDENCE_DAYS = 90
PERIODS_WEIGHED = 3
HIGH_UTILISATION = 85
HIGH_PERIODS = 2
TINY_UTILISATION = 20
JUST_OVER_SHARE = Decimal("0.25")
FREQUENT_REFUSALS = 3
MOSTLY_APPROVED = 75
CSAT_TOLERANCE = Decimal("0.2")
RATE_TOLERANCE = 5
WELL_ABOVE_POINTS = 10
WELL_ABOVE_MIN = 2
PERIOD_RAISE = Decimal("1.25")
PERCENTILE = 90
AGENT_ROLES = (Role.AGENT, Role.SENIOR_AGENT, Role.AI_AGENT)
RAISE, LOWER = "raise", "lower"
_AMOUNT = DecimalField(max_digits=19, decimal_places=4)


# --- figures ----------------------------------------------------------------------------------


@dataclass
class Quality:
    """Decisions of one kind and what followed them: ratings, reopenings after, reversals."""

    decisions: int = 0
    rated: int = 0
    rating_total: Decimal = Decimal(0)
    reopened: int = 0
    reversed: int = 0

    def add(self, other: Quality) -> None:
        self.decisions += other.decisions
        self.rated += other.rated
        self.rating_total += other.rating_total
        self.reopened += other.reopened
        self.reversed += other.reversed

    @property
    def csat(self) -> Decimal | None:
        return (self.rating_total / self.rated).quantize(Decimal("0.01")) if self.rated else None

    @property
    def reopen_rate(self) -> int | None:
        return round(100 * self.reopened / self.decisions) if self.decisions else None

    @property
    def reversal_rate(self) -> int | None:
        return round(100 * self.reversed / self.decisions) if self.decisions else None


@dataclass
class Evidence:
    """Every number a recommendation rests on, for one agent and kind."""

    utilisation: list[int | None] = field(default_factory=list)  # % of the cap, oldest first
    period_used: list[Decimal] = field(default_factory=list)
    refusals: int = 0
    refusals_just_over: int = 0
    requests_decided: int = 0
    requests_approved: int = 0
    needed_p90: Decimal | None = None
    needed_count: int = 0
    quality: Quality = field(default_factory=Quality)
    team_quality: Quality = field(default_factory=Quality)

    @property
    def approval_rate(self) -> int | None:
        return round(100 * self.requests_approved / self.requests_decided) if self.requests_decided else None

    @property
    def high_utilisation(self) -> bool:
        return sum(1 for share in self.utilisation if share is not None and share >= HIGH_UTILISATION) >= HIGH_PERIODS

    @property
    def tiny_utilisation(self) -> bool:
        return (len(self.utilisation) == PERIODS_WEIGHED
                and all(share is not None and share < TINY_UTILISATION for share in self.utilisation))


@dataclass
class Recommendation:
    """For one agent and kind: the deciding grant, the evidence, and what to do (or nothing)."""

    agent: object
    kind: AuthorityKind
    grant: Grant
    team: Team | None
    evidence: Evidence
    action: str = ""  # RAISE, LOWER or "" (no change)
    per_case_limit: Decimal | None = None  # the proposed limits (the current ones when unchanged)
    period_limit: Decimal | None = None
    why: list[str] = field(default_factory=list)  # the rules that fired, or what kept them from firing
    capped: str = ""  # how the manager's own authority bounded a raise
    weighed_from: datetime | None = None  # the start of the oldest period weighed

    @property
    def proposal_key(self) -> str:
        """What the page showed, so accepting refuses when the evidence changed meanwhile."""
        return f"{self.action}:{_plain(self.per_case_limit)}:{_plain(self.period_limit)}"

    def fmt(self, value: Decimal | None) -> str:
        return format_quantity(value, unit=self.kind.unit, currency=self.grant.currency)

    @property
    def proposal_text(self) -> str:
        parts = []
        if self.per_case_limit != self.grant.per_case_limit:
            parts.append(f"{self.fmt(self.per_case_limit)} per case")
        if self.period_limit != self.grant.period_limit:
            parts.append(f"{self.fmt(self.period_limit)} per {self.grant.period}")
        return " and ".join(parts)

    @property
    def evidence_text(self) -> str:
        """The evidence in one line, as the grant change's reason carries it."""
        e = self.evidence
        cap = self.fmt(self.grant.period_limit) if self.grant.period_limit is not None else "no period cap"
        shares = " / ".join(f"{share} %" if share is not None else "n/a" for share in e.utilisation)
        utilisation = f"utilisation {shares} of {cap}" if e.utilisation else "utilisation: no period cap"
        q, t = e.quality, e.team_quality
        csat = (f"CSAT {q.csat} vs team {t.csat if t.csat is not None else 'n/a'}" if q.csat is not None
                else "no rated case")
        return "; ".join([
            utilisation,
            f"{e.refusals_just_over} refusal{'s' if e.refusals_just_over != 1 else ''} just over "
            f"(of {e.refusals})",
            f"{e.requests_approved} of {e.requests_decided} requests approved",
            csat,
            f"reopened after {q.reopened} of {q.decisions} decisions ({_rate(q.reopen_rate)} vs team "
            f"{_rate(t.reopen_rate)})",
            f"{q.reversed} reversal{'s' if q.reversed != 1 else ''} ({_rate(q.reversal_rate)} vs team "
            f"{_rate(t.reversal_rate)})",
        ])

    @property
    def reason(self) -> str:
        """The grant change's reason: the proposal, the evidence and the rule that fired."""
        verb = "Raise" if self.action == RAISE else "Lower"
        return (f"Recommended from evidence ({EVIDENCE_DAYS} days): {verb} to {self.proposal_text}. "
                f"{self.evidence_text}. {' '.join(self.why)}")


def _rate(value: int | None) -> str:
    return "n/a" if value is None else f"{value} %"


def _plain(value: Decimal | None) -> str:
    return "-" if value is None else format(value.normalize(), "f")


# --- rounding ---------------------------------------------------------------------------------


def sensible_step(value: Decimal) -> Decimal:
    """Whole units below 100, then 5, 50, 500… (a half of the second digit): 87 -> 1, 640 -> 5, 1,234 -> 50."""
    if value < 100:
        return Decimal(1)
    return 5 * Decimal(10) ** (value.adjusted() - 2)


def round_up(value: Decimal) -> Decimal:
    step = sensible_step(value)
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def round_down(value: Decimal) -> Decimal:
    step = sensible_step(value)
    return max((value / step).to_integral_value(rounding=ROUND_FLOOR) * step, Decimal(1))


# --- the manager's own authority --------------------------------------------------------------


@dataclass(frozen=True)
class Cap:
    """The most a manager may grant for one kind: their own standing limits (None: unbounded)."""

    unbounded: bool
    grant: Grant | None = None

    def bound(self, rec: Recommendation) -> None:
        """Bring a raise within the manager's own authority; say so, or drop it when nothing is left."""
        if self.unbounded:
            return
        current = rec.grant
        g = self.grant
        if g is None or (rec.kind.is_money and g.currency != current.currency):
            rec.capped = (f"Your own {rec.kind.name.lower()} authority does not cover more"
                          + (f" in {current.currency}" if g is not None else "") + ".")
            rec.per_case_limit, rec.period_limit = current.per_case_limit, current.period_limit
        else:
            own_case = g.per_case_limit
            if own_case is not None and rec.per_case_limit is not None and rec.per_case_limit > own_case:
                rec.per_case_limit = max(g.per_case_limit, current.per_case_limit or Decimal(0))
                rec.capped = f"Capped at your own per-case limit of {rec.fmt(g.per_case_limit)}."
            if (g.period_limit is not None and g.period == current.period and rec.period_limit is not None
                    and rec.period_limit > g.period_limit):
                rec.period_limit = max(g.period_limit, current.period_limit or Decimal(0))
                rec.capped = (rec.capped + " " if rec.capped else "") + (
                    f"Capped at your own limit of {rec.fmt(g.period_limit)} per {g.period}.")
        if rec.per_case_limit == current.per_case_limit and rec.period_limit == current.period_limit:
            rec.action = ""
            rec.why.append(rec.capped or "Your own authority does not cover more.")


def manager_caps(manager, *, at: datetime) -> dict[int, Cap]:
    """{kind id: Cap} for `manager`: a superuser is unbounded, a manager bounded by their standing grants.

    One query (grants_applicable_to_agent builds its memberships as subqueries), none for a superuser.
    """
    if manager is None or manager.is_superuser:
        return defaultdict(lambda: Cap(unbounded=True))
    grants = [g for g in grants_applicable_to_agent(agent=manager, kind_id=None, case_id=None, at=at)
              if g.case_id is None]
    caps: dict[int, Cap] = defaultdict(lambda: Cap(unbounded=False))
    suspended = {g.kind_id for g in grants if g.effect == Effect.FORBID}
    for kind_id in {g.kind_id for g in grants} - suspended:
        caps[kind_id] = Cap(unbounded=False, grant=standing_grant(
            [g for g in grants if g.kind_id == kind_id and g.effect == Effect.PERMIT]))
    return caps


# --- the report -------------------------------------------------------------------------------


def _last_buckets(period: str, at: datetime, tz) -> list:
    """The start days of the last PERIODS_WEIGHED buckets of `period`, oldest first (the current last)."""
    starts = [periods.bucket_start(period, at, tz)]
    while len(starts) < PERIODS_WEIGHED:
        day = starts[0] - timedelta(days=1)
        starts.insert(0, periods.bucket_start(period, datetime(day.year, day.month, day.day, 12, tzinfo=tz), tz))
    return starts


def _refusals(*, ids: list[int], since: datetime, until: datetime):
    """Refused decisions of these agents with what was asked, the headroom then, and whether just over."""
    counted = Cast(KT("after__verdict__counted_amount"), _AMOUNT)
    per_case = Cast(KT("after__verdict__per_case_headroom"), _AMOUNT)
    period = Cast(KT("after__verdict__period_headroom"), _AMOUNT)
    headroom = Least(Coalesce(per_case, period), Coalesce(period, per_case))
    just_over = Q(need_amount__gt=F("headroom"), need_amount__lte=F("headroom") * (1 + JUST_OVER_SHARE),
                  headroom__gt=0)
    return (AuditEvent.objects.filter(action="decision.refused", object_type="case", actor_id__in=ids,
                                      occurred_at__gte=since, occurred_at__lt=until)
            .annotate(need_agent=F("actor_id"), need_kind=KT("after__kind"),
                      need_currency=Coalesce(KT("after__verdict__counted_currency"), KT("after__currency")),
                      need_amount=counted, headroom=headroom)
            .order_by()), just_over


def _approved_requests(*, ids: list[int], since: datetime, until: datetime):
    return (AuthorityRequest.objects.filter(requester_id__in=ids, status=RequestStatus.APPROVED,
                                            created_at__gte=since, created_at__lt=until)
            .annotate(need_agent=F("requester_id"), need_kind=F("kind__code"),
                      need_currency=Coalesce(KT("verdict__counted_currency"), F("currency"),
                                             output_field=TextField()),
                      need_amount=Coalesce(Cast(KT("verdict__counted_amount"), _AMOUNT), F("amount"),
                                           output_field=_AMOUNT))
            .order_by())


def needed_percentiles(*, ids: list[int], since: datetime, until: datetime) -> dict[tuple, tuple[Decimal, int]]:
    """{(agent id, kind code, currency): (90th percentile, count)} of what the agents needed.

    What they needed: the amounts of their approved requests and of their refusals just over, in
    the deciding grant's currency. Nearest rank, computed in the database over both sources at once
    (a window over their UNION ALL): one query, whatever the number of rows.
    """
    if not ids:
        return {}
    refusals, just_over = _refusals(ids=ids, since=since, until=until)
    columns = ("need_agent", "need_kind", "need_currency", "need_amount")
    union = (refusals.filter(just_over).values_list(*columns)
             .union(_approved_requests(ids=ids, since=since, until=until).values_list(*columns), all=True)
             .order_by())
    sql, params = union.query.sql_with_params()
    # Nearest rank: the row whose rank is ceil(p * n), with integer arithmetic only. The union's
    # columns carry the first query's aliases on every database.
    query = (
        "SELECT a, k, c, amount, n FROM ("
        " SELECT u.need_agent AS a, u.need_kind AS k, u.need_currency AS c, u.need_amount AS amount,"
        " ROW_NUMBER() OVER (PARTITION BY u.need_agent, u.need_kind, u.need_currency ORDER BY u.need_amount) AS rn,"
        " COUNT(*) OVER (PARTITION BY u.need_agent, u.need_kind, u.need_currency) AS n"
        f" FROM ({sql}) u"
        f") w WHERE w.rn * 100 >= w.n * {PERCENTILE} AND (w.rn - 1) * 100 < w.n * {PERCENTILE}"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return {(agent, kind, currency or ""): (Decimal(str(amount)), n)
                for agent, kind, currency, amount, n in cursor.fetchall()}


@dataclass
class Report:
    since: datetime
    until: datetime
    teams: list[Team]
    rows: list[Recommendation]

    @property
    def recommended(self) -> list[Recommendation]:
        return [row for row in self.rows if row.action]

    @property
    def unchanged(self) -> list[Recommendation]:
        return [row for row in self.rows if not row.action]


def recommendations(*, teams, manager=None, now: datetime | None = None, agent_ids: list[int] | None = None,
                    kind_id: int | None = None) -> Report:
    """Return, for the agents of `teams` (only `agent_ids` when given) and every kind (or `kind_id`),
    the deciding grant, its evidence and the recommendation, bounded by `manager`'s own authority.

    The manager is never listed (nobody changes their own authority). Queries, whatever the numbers
    of agents, kinds, decisions, requests and refusals: agents, memberships, roles, kinds, grants,
    usage, refusals, requests, decisions and needed amounts (10), plus the manager's own grants (1).
    """
    now = now or timezone.now()
    since = now - timedelta(days=EVIDENCE_DAYS)
    teams = list(teams)
    team_ids = [team.pk for team in teams]
    tz = current_organisation().tz
    agents_qs = User.objects.filter(teams__in=team_ids, groups__name__in=AGENT_ROLES, is_active=True)
    if manager is not None:
        agents_qs = agents_qs.exclude(pk=manager.pk)
    if agent_ids is not None:
        agents_qs = agents_qs.filter(pk__in=agent_ids)
    agents = list(agents_qs.distinct().order_by("username"))
    ids = [agent.pk for agent in agents]
    if not ids:
        return Report(since=since, until=now, teams=teams, rows=[])

    teams_by_id = {team.pk: team for team in teams}
    listed_team: dict[int, Team] = {}
    grant_teams: dict[int, set[int]] = defaultdict(set)
    memberships = Team.members.through.objects.filter(user_id__in=ids)
    speaking = set(teams_whose_grants_speak_for(memberships).values_list("user_id", "team_id"))
    for user_id, team_id in memberships.order_by("team__name").values_list("user_id", "team_id"):
        if (user_id, team_id) in speaking:
            grant_teams[user_id].add(team_id)
        if team_id in teams_by_id:
            listed_team.setdefault(user_id, teams_by_id[team_id])
    roles: dict[int, set[int]] = defaultdict(set)
    for user_id, group_id in User.groups.through.objects.filter(user_id__in=ids).values_list("user_id", "group_id"):
        roles[user_id].add(group_id)

    kinds = list(AuthorityKind.objects.order_by("name") if kind_id is None
                 else AuthorityKind.objects.filter(pk=kind_id))
    all_team_ids = set().union(*grant_teams.values())
    all_role_ids = set().union(*roles.values())
    grants = list(Grant.objects.filter(in_force_at(now), case__isnull=True, shadow=False,
                                       kind__in=[k.pk for k in kinds])
                  .filter(Q(subject_user_id__in=ids) | Q(subject_team_id__in=all_team_ids)
                          | Q(subject_role_id__in=all_role_ids))
                  .select_related("kind", "subject_user", "subject_team", "subject_role"))

    rows: list[Recommendation] = []
    for agent in agents:
        mine = [g for g in grants if g.subject_user_id == agent.pk or g.subject_team_id in grant_teams[agent.pk]
                or g.subject_role_id in roles[agent.pk]]
        for kind in kinds:
            of_kind = [g for g in mine if g.kind_id == kind.pk]
            if any(g.effect == Effect.FORBID for g in of_kind):
                continue  # suspended: a suspension is lifted on its own terms, not by evidence
            deciding = standing_grant([g for g in of_kind if g.effect == Effect.PERMIT])
            if deciding is None or (deciding.per_case_limit is None and deciding.period_limit is None):
                continue
            rows.append(Recommendation(agent=agent, kind=kind, grant=deciding, team=listed_team.get(agent.pk),
                                       evidence=Evidence()))
    if not rows:
        return Report(since=since, until=now, teams=teams, rows=[])
    by_key = {(row.agent.pk, row.kind.pk): row for row in rows}
    kind_by_code = {k.code: k for k in kinds}

    _usage(rows, ids=ids, now=now, tz=tz)

    refusals, just_over = _refusals(ids=ids, since=since, until=now)
    for entry in (refusals.values("need_agent", "need_kind", "need_currency")
                  .annotate(n=Count("pk"), over=Count("pk", filter=just_over))):
        kind = kind_by_code.get(entry["need_kind"])
        row = by_key.get((entry["need_agent"], kind.pk)) if kind else None
        if row is not None:
            row.evidence.refusals += entry["n"]
            if (entry["need_currency"] or "") == row.grant.currency:
                row.evidence.refusals_just_over += entry["over"]

    decided = (RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.EXPIRED)
    for entry in (AuthorityRequest.objects.filter(requester_id__in=ids, created_at__gte=since, created_at__lt=now,
                                                  status__in=decided)
                  .values("requester_id", "kind_id")
                  .annotate(n=Count("pk"), approved=Count("pk", filter=Q(status=RequestStatus.APPROVED)))
                  .order_by()):
        row = by_key.get((entry["requester_id"], entry["kind_id"]))
        if row is not None:
            row.evidence.requests_decided, row.evidence.requests_approved = entry["n"], entry["approved"]

    _quality(rows, by_key, team_ids=team_ids, since=since, now=now)

    for (agent_id, code, currency), (p90, n) in needed_percentiles(ids=ids, since=since, until=now).items():
        kind = kind_by_code.get(code)
        row = by_key.get((agent_id, kind.pk)) if kind else None
        if row is not None and currency == row.grant.currency:
            row.evidence.needed_p90, row.evidence.needed_count = p90, n

    caps = manager_caps(manager, at=now)
    for row in rows:
        decide(row, cap=caps[row.kind.pk])
    return Report(since=since, until=now, teams=teams, rows=rows)


def _usage(rows: list[Recommendation], *, ids: list[int], now: datetime, tz) -> None:
    """Fill each row's utilisation over the last three buckets of its grant's period: one query."""
    buckets = {p: _last_buckets(p, now, tz) for p in (Period.DAY, Period.WEEK, Period.MONTH, Period.QUARTER)}
    wanted = Q()
    for period, starts in buckets.items():
        wanted |= Q(period=period, bucket_start__gte=starts[0])
    used = {(agent_id, kind_id, currency, period, start): value for agent_id, kind_id, currency, period, start, value
            in UsageCounter.objects.filter(wanted, scope=UsageCounter.Scope.PERIOD, agent_id__in=ids)
            .values_list("agent_id", "kind_id", "currency", "period", "bucket_start", "used")}
    for row in rows:
        grant = row.grant
        if grant.period == Period.NONE or grant.period_limit is None:
            continue
        first = buckets[grant.period][0]
        row.weighed_from = datetime(first.year, first.month, first.day, tzinfo=tz)
        for start in buckets[grant.period]:
            value = used.get((row.agent.pk, row.kind.pk, grant.currency, grant.period, start), Decimal(0))
            row.evidence.period_used.append(value)
            row.evidence.utilisation.append(int(value * 100 / grant.period_limit) if grant.period_limit else 100)


def _quality(rows, by_key, *, team_ids: list[int], since: datetime, now: datetime) -> None:
    """Ratings, reopenings after the decision and reversals, per agent and kind and per team: one query."""
    reopened_after = CaseEvent.objects.filter(case=OuterRef("case_id"), kind=CaseEvent.Kind.REOPENED,
                                              at__gt=OuterRef("executed_at"))
    team_quality: dict[tuple[int, int], Quality] = defaultdict(Quality)
    agent_quality: dict[tuple[int, int], Quality] = defaultdict(Quality)
    for entry in (Decision.objects.filter(case__team_id__in=team_ids, executed_at__gte=since, executed_at__lt=now)
                  .alias(reopened=Exists(reopened_after))
                  .values("agent_id", "kind_id", "case__team_id")
                  .annotate(n=Count("pk"), rated=Count("case__rating"), mean=Avg("case__rating"),
                            reopened_n=Count("pk", filter=Q(reopened=True)),
                            reversed_n=Count("pk", filter=Q(reversed_at__isnull=False)))
                  .order_by()):
        part = Quality(decisions=entry["n"], rated=entry["rated"],
                       rating_total=Decimal(str(entry["mean"])) * entry["rated"] if entry["rated"] else Decimal(0),
                       reopened=entry["reopened_n"], reversed=entry["reversed_n"])
        team_quality[(entry["case__team_id"], entry["kind_id"])].add(part)
        agent_quality[(entry["agent_id"], entry["kind_id"])].add(part)
    for (agent_id, kind_id), row in by_key.items():
        row.evidence.quality = agent_quality.get((agent_id, kind_id), Quality())
        if row.team is not None:
            row.evidence.team_quality = team_quality.get((row.team.pk, kind_id), Quality())


# --- the rules --------------------------------------------------------------------------------


def _well_above(count: int, rate: int | None, team_rate: int | None) -> bool:
    return count >= WELL_ABOVE_MIN and rate is not None and rate >= (team_rate or 0) + WELL_ABOVE_POINTS


def quality_not_worse(evidence: Evidence) -> tuple[bool, list[str]]:
    """Whether the agent's decisions fare no worse than the team's, and what is worse when not."""
    q, t = evidence.quality, evidence.team_quality
    worse = []
    if q.csat is not None and t.csat is not None and q.csat < t.csat - CSAT_TOLERANCE:
        worse.append(f"CSAT {q.csat} is below the team's {t.csat}.")
    if q.reopen_rate is not None and q.reopen_rate > (t.reopen_rate or 0) + RATE_TOLERANCE:
        worse.append(f"Reopen rate {q.reopen_rate} % is above the team's {_rate(t.reopen_rate)}.")
    if q.reversal_rate is not None and q.reversal_rate > (t.reversal_rate or 0) + RATE_TOLERANCE:
        worse.append(f"Reversal rate {q.reversal_rate} % is above the team's {_rate(t.reversal_rate)}.")
    return not worse, worse


def decide(row: Recommendation, *, cap: Cap | None = None) -> Recommendation:
    """Apply the rules (see the module's docstring) to one row's evidence; no query."""
    e, grant = row.evidence, row.grant
    row.action, row.per_case_limit, row.period_limit = "", grant.per_case_limit, grant.period_limit
    q, t = e.quality, e.team_quality
    if _well_above(q.reversed, q.reversal_rate, t.reversal_rate) or _well_above(q.reopened, q.reopen_rate,
                                                                                t.reopen_rate):
        row.action = LOWER
        row.per_case_limit = round_down(grant.per_case_limit / 2) if grant.per_case_limit is not None else None
        row.period_limit = round_down(grant.period_limit / 2) if grant.period_limit is not None else None
        row.why.append(f"Lower: reversals or reopenings are well above the team's (at least {WELL_ABOVE_POINTS} "
                       "points more): limits halved.")
        return row
    pressure = e.high_utilisation or e.refusals_just_over >= FREQUENT_REFUSALS
    mostly_approved = e.requests_decided > 0 and e.approval_rate >= MOSTLY_APPROVED
    good, worse = quality_not_worse(e)
    if pressure:
        if not mostly_approved:
            row.why.append(f"No raise: fewer than {MOSTLY_APPROVED} % of their decided requests were approved"
                           if e.requests_decided else "No raise: none of their requests was decided yet.")
        elif not good:
            row.why.append("No raise: " + " ".join(worse))
        else:
            _raise(row)
            if cap is not None and row.action:
                cap.bound(row)
            return row
    if e.tiny_utilisation and not e.refusals and not e.requests_decided and row.weighed_from is not None \
            and grant.valid_from <= row.weighed_from:
        highest = max(e.period_used)
        new_period = round_up(highest * 2) if highest > 0 else sensible_step(grant.period_limit)
        if grant.per_case_limit is not None:
            new_period = max(new_period, grant.per_case_limit)
        if new_period < grant.period_limit:
            row.action = LOWER
            row.period_limit = new_period
            row.why.append(f"Lower: under {TINY_UTILISATION} % of the cap in each of the last {PERIODS_WEIGHED} "
                           "periods, nothing refused or requested: period cap set to twice the highest usage, "
                           "no lower than the per-case limit.")
    return row


def _raise(row: Recommendation) -> None:
    e, grant = row.evidence, row.grant
    per_case, period = grant.per_case_limit, grant.period_limit
    reasons = []
    if e.needed_p90 is not None and per_case is not None and round_up(e.needed_p90) > per_case:
        per_case = round_up(e.needed_p90)
        reasons.append(f"per-case limit to the {PERCENTILE}th percentile of what they needed "
                       f"({e.needed_count} amount{'s' if e.needed_count != 1 else ''})")
    if e.high_utilisation and period is not None:
        period = round_up(period * PERIOD_RAISE)
        reasons.append(f"period cap up by a quarter (at least {HIGH_UTILISATION} % used in {HIGH_PERIODS} of the "
                       f"last {PERIODS_WEIGHED} periods)")
    if period is not None and per_case is not None and period < per_case:
        period = per_case
        reasons.append("period cap no lower than the per-case limit")
    if per_case == grant.per_case_limit and period == grant.period_limit:
        row.why.append("No raise: what they needed fits their limits already.")
        return
    row.action, row.per_case_limit, row.period_limit = RAISE, per_case, period
    row.why.append("Raise: " + "; ".join(reasons) + ".")


__all__ = [
    "EVIDENCE_DAYS", "LOWER", "RAISE", "Cap", "Evidence", "Quality", "Recommendation", "Report", "decide",
    "manager_caps", "needed_percentiles", "quality_not_worse", "recommendations", "round_down", "round_up",
    "sensible_step",
]
