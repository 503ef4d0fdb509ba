"""AI agents beside people: decisions, refusals, hand-offs, reversals and CSAT per moment that matters.

One row per kind of agent (AI, human) and case category (the moment that matters), with totals per
kind and overall. Six aggregate queries whatever the number of cases, decisions, events or teams:
decisions (with reversals), refusals, shadow decisions, hand-offs, handovers and ratings. Each is
grouped by category in the database; nothing is read row by row.

What each figure counts, over the half-open period [since, until) and, when teams are given, the
cases of those teams:

- decisions: decisions executed in the period; "AI" when `Decision.by_ai_agent` (as it was at the
  instant of the decision, not as the account is now).
- refusals: `decision.refused` audit events of the period on a case; "AI" when the refused actor's
  roles, recorded on the event, included "AI agent".
- reversals: of the decisions executed in the period, those reversed since (so that
  reversals / decisions is a rate of the same decisions).
- shadow: shadow decisions recorded in the period (AI only: what it would have decided).
- hand-offs: cases passed from an AI agent to a person, created in the period (AI only, by
  definition), with how many a person has picked up and the mean time until they did.
- handovers: case handovers (one owner to the next, with a note) in the period, by the kind of
  whoever handed the case over.
- CSAT: the customer ratings of the cases resolved in the period. A case counts as "AI" when its
  owner at resolution is an AI agent (the owner stays on a resolved case, and a reopened case is
  resolved again by whoever owns it then); a case an AI agent handed to a person counts as human,
  because that person owned it to the end. Mean rating and number of rated cases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import (
    Avg,
    BigIntegerField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    When,
)
from django.db.models import Case as SqlCase
from django.db.models.functions import Cast
from django.utils import timezone

from authority.models import Decision, ShadowDecision
from h2h_core.models import AiAgent, AuditEvent, Case, CaseCategory, CaseEvent, HandOff, Role, Team

AI, HUMAN = "ai", "human"
AGENT_KINDS = ((AI, "AI agents"), (HUMAN, "People"))
DEFAULT_DAYS = 30
#: Figures that add up across rows (the rest are means, weighted by their counts).
COUNTS = ("decisions", "refusals", "reversals", "shadow", "hand_offs", "picked_up", "handovers", "rated")


@dataclass
class Figures:
    """What one kind of agent did in one category (or in all of them, for totals)."""

    decisions: int = 0
    refusals: int = 0
    reversals: int = 0
    shadow: int = 0
    hand_offs: int = 0
    picked_up: int = 0
    pickup_time: timedelta | None = None  # mean, over the hand-offs picked up
    handovers: int = 0
    rated: int = 0
    rating: float | None = None  # mean customer rating (1 to 5) of the rated cases

    @property
    def reversal_rate(self) -> int | None:
        """Reversed, in % of the decisions executed."""
        return round(100 * self.reversals / self.decisions) if self.decisions else None

    @property
    def refusal_rate(self) -> int | None:
        """Refused, in % of what was asked (executed + refused)."""
        asked = self.decisions + self.refusals
        return round(100 * self.refusals / asked) if asked else None

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in COUNTS)


@dataclass
class Row:
    agent_kind: str  # AI or HUMAN
    category: str  # a CaseCategory value, or "" on a totals row
    figures: Figures = field(default_factory=Figures)

    @property
    def agent_label(self) -> str:
        return dict(AGENT_KINDS)[self.agent_kind]

    @property
    def category_label(self) -> str:
        return CaseCategory(self.category).label if self.category else "All moments"


@dataclass
class AiVsHuman:
    since: datetime
    until: datetime
    teams: list[Team] | None  # None: every case, with or without a team
    rows: list[Row]  # AI rows first, then human rows; categories in CaseCategory order
    totals: dict[str, Row]  # per agent kind, every category
    total: Row  # everyone, every category

    def rows_of(self, agent_kind: str) -> list[Row]:
        return [row for row in self.rows if row.agent_kind == agent_kind]

    def by_category(self) -> list[tuple[str, Row, Row]]:
        """(category label, AI row, human row) for each category, for side-by-side tables and charts."""
        ai = {row.category: row for row in self.rows_of(AI)}
        human = {row.category: row for row in self.rows_of(HUMAN)}
        return [(label, ai[value], human[value]) for value, label in CaseCategory.choices]


def resolved_by_ai_agent(owner: str = "owner_id") -> Exists:
    """Whether a resolved case counts as resolved by an AI agent: the one rule every report uses.

    The case's owner is an AI agent. The owner stays on a resolved case, and a reopened case is resolved
    again by whoever owns it then, so this is the owner at (the last) resolution; a case an AI agent handed
    to a person is that person's. `owner`: the path to the owner's key from the case being counted.
    """
    return Exists(AiAgent.objects.filter(user_id=OuterRef(owner)))


def _duration(end: str, start: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(end) - F(start), output_field=DurationField())


def _by_ai_roles() -> Q:
    """Audit events whose actor held the AI agent role when the event was recorded."""
    if connection.features.supports_json_field_contains:
        return Q(actor_roles__contains=[Role.AI_AGENT])
    # SQLite has no JSON containment: the roles are stored as a JSON list of strings, and a role's
    # name in quotes matches that element exactly (no role name contains a quote).
    return Q(roles_text__contains=f'"{Role.AI_AGENT}"')


def _refusals(*, since: datetime, until: datetime, team_ids: list[int] | None) -> QuerySet:
    # object_id is text; cast it to the case's key only on rows that name a case (guarded, so no
    # database ever casts another object's id), then read the case's category through its key.
    case_pk = SqlCase(When(object_type="case", then=Cast("object_id", BigIntegerField())),
                      output_field=BigIntegerField())
    qs = (AuditEvent.objects.filter(action="decision.refused", object_type="case", occurred_at__gte=since,
                                    occurred_at__lt=until)
          .alias(case_pk=case_pk, roles_text=Cast("actor_roles", TextField()))
          .annotate(category=Subquery(Case.objects.filter(pk=OuterRef("case_pk")).values("category")[:1])))
    if team_ids is not None:
        qs = qs.filter(Exists(Case.objects.filter(pk=OuterRef("case_pk"), team_id__in=team_ids)))
    ai = _by_ai_roles()
    return qs.values("category").annotate(ai=Count("pk", filter=ai), human=Count("pk", filter=~ai)).order_by()


def ai_vs_human(*, teams: Iterable[Team] | None = None, since: datetime | None = None,
                until: datetime | None = None, now: datetime | None = None) -> AiVsHuman:
    """Return decisions, refusals, hand-offs, reversals and CSAT of AI agents and of people, per category.

    `teams`: only the cases of these teams (a manager's); None: every case (an auditor's). The period
    is [since, until), by default the last DEFAULT_DAYS days up to now. Six aggregate queries.
    """
    until = until or now or timezone.now()
    since = since or until - timedelta(days=DEFAULT_DAYS)
    team_list = None if teams is None else list(teams)
    team_ids = None if team_list is None else [team.pk for team in team_list]
    rows = {(kind, value): Row(kind, value) for kind, _ in AGENT_KINDS for value in CaseCategory.values}

    def of_teams(qs: QuerySet, path: str = "case__team_id") -> QuerySet:
        return qs if team_ids is None else qs.filter(**{f"{path}__in": team_ids})

    def put(kind: str, category: str | None, **values) -> None:
        row = rows.get((kind, category))
        if row is None:  # a case with a category no longer offered: counted under "Other"
            row = rows[(kind, CaseCategory.OTHER)]
        for name, value in values.items():
            setattr(row.figures, name, getattr(row.figures, name) + value if name in COUNTS else value)

    ai_decision = Q(by_ai_agent=True)
    reversed_ = Q(reversed_at__isnull=False)
    for entry in (of_teams(Decision.objects.filter(executed_at__gte=since, executed_at__lt=until))
                  .values("case__category")
                  .annotate(ai=Count("pk", filter=ai_decision), human=Count("pk", filter=~ai_decision),
                            ai_reversed=Count("pk", filter=ai_decision & reversed_),
                            human_reversed=Count("pk", filter=~ai_decision & reversed_))
                  .order_by()):
        put(AI, entry["case__category"], decisions=entry["ai"], reversals=entry["ai_reversed"])
        put(HUMAN, entry["case__category"], decisions=entry["human"], reversals=entry["human_reversed"])

    for entry in _refusals(since=since, until=until, team_ids=team_ids):
        put(AI, entry["category"], refusals=entry["ai"])
        put(HUMAN, entry["category"], refusals=entry["human"])

    for entry in (of_teams(ShadowDecision.objects.filter(created_at__gte=since, created_at__lt=until))
                  .values("case__category").annotate(n=Count("pk")).order_by()):
        put(AI, entry["case__category"], shadow=entry["n"])

    picked = Q(picked_up_at__isnull=False)
    for entry in (of_teams(HandOff.objects.filter(created_at__gte=since, created_at__lt=until))
                  .values("case__category")
                  .annotate(n=Count("pk"), picked=Count("pk", filter=picked),
                            wait=Avg(_duration("picked_up_at", "created_at"), filter=picked))
                  .order_by()):
        put(AI, entry["case__category"], hand_offs=entry["n"], picked_up=entry["picked"], pickup_time=entry["wait"])

    by_ai = Q(by_ai=True)
    for entry in (of_teams(CaseEvent.objects.filter(kind=CaseEvent.Kind.HANDOVER, at__gte=since, at__lt=until))
                  .alias(by_ai=Exists(AiAgent.objects.filter(user_id=OuterRef("actor_id"))))
                  .values("case__category")
                  .annotate(ai=Count("pk", filter=by_ai), human=Count("pk", filter=~by_ai))
                  .order_by()):
        put(AI, entry["case__category"], handovers=entry["ai"])
        put(HUMAN, entry["case__category"], handovers=entry["human"])

    ai_owned = Q(ai_owned=True)
    for entry in (of_teams(Case.objects.filter(resolved_at__gte=since, resolved_at__lt=until, rating__isnull=False),
                           "team_id")
                  .alias(ai_owned=resolved_by_ai_agent())
                  .values("category")
                  .annotate(ai=Count("pk", filter=ai_owned), ai_mean=Avg("rating", filter=ai_owned),
                            human=Count("pk", filter=~ai_owned), human_mean=Avg("rating", filter=~ai_owned))
                  .order_by()):
        for kind in (AI, HUMAN):
            mean = entry[f"{kind}_mean"]
            put(kind, entry["category"], rated=entry[kind],
                rating=round(float(mean), 2) if mean is not None else None)

    ordered = list(rows.values())
    totals = {kind: _total(kind, [row for row in ordered if row.agent_kind == kind]) for kind, _ in AGENT_KINDS}
    total = _total("", ordered)
    return AiVsHuman(since=since, until=until, teams=team_list, rows=ordered, totals=totals, total=total)


def _weighted_mean(rows: list[Row], value: str, weight: str):
    pairs = [(getattr(r.figures, value), getattr(r.figures, weight)) for r in rows
             if getattr(r.figures, value) is not None and getattr(r.figures, weight)]
    total = sum(w for _, w in pairs)
    if not total:
        return None
    if isinstance(pairs[0][0], timedelta):
        return sum((v * w for v, w in pairs), timedelta()) / total
    return round(sum(v * w for v, w in pairs) / total, 2)


def _total(agent_kind: str, rows: list[Row]) -> Row:
    total = Row(agent_kind, "")
    for name in COUNTS:
        setattr(total.figures, name, sum(getattr(row.figures, name) for row in rows))
    total.figures.pickup_time = _weighted_mean(rows, "pickup_time", "picked_up")
    total.figures.rating = _weighted_mean(rows, "rating", "rated")
    return total


#: The CSV's columns, in order: (header, how to read it from a row).
CSV_COLUMNS = (
    ("agent_kind", lambda row: row.agent_kind or "all"),
    ("category", lambda row: row.category or "all"),
    ("decisions", lambda row: row.figures.decisions),
    ("refusals", lambda row: row.figures.refusals),
    ("reversals", lambda row: row.figures.reversals),
    ("shadow_decisions", lambda row: row.figures.shadow),
    ("hand_offs", lambda row: row.figures.hand_offs),
    ("hand_offs_picked_up", lambda row: row.figures.picked_up),
    ("mean_pickup_seconds", lambda row: round(row.figures.pickup_time.total_seconds())
        if row.figures.pickup_time is not None else None),
    ("handovers", lambda row: row.figures.handovers),
    ("rated_cases", lambda row: row.figures.rated),
    ("mean_rating", lambda row: row.figures.rating),
)


def csv_rows(report: AiVsHuman) -> list[list]:
    """The report as CSV rows (without the header): every category row, then the totals."""
    every = [*report.rows, report.totals[AI], report.totals[HUMAN], report.total]
    return [[read(row) for _, read in CSV_COLUMNS] for row in every]


__all__ = [
    "AGENT_KINDS", "AI", "CSV_COLUMNS", "DEFAULT_DAYS", "HUMAN", "AiVsHuman", "Figures", "Row", "ai_vs_human",
    "csv_rows", "resolved_by_ai_agent",
]
