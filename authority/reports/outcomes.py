"""Customer outcomes by moment that matters, tied to the authority that produced them.

For the cases resolved in the half-open period [since, until) (by default the last DEFAULT_DAYS days)
and, when teams are given, the cases of those teams: one cell per case category (the moment that
matters) and RESOLUTION PATH, with totals per category, per path and overall.

Resolution paths. Every resolved case takes exactly one, the first of these that applies (the
precedence is the order of the list):

1. "ai" (by an AI agent): the case counts as resolved by an AI agent under the one rule every
   report uses (authority.reports.ai_vs_human.resolved_by_ai_agent: its owner at resolution is an
   AI agent), whatever else happened on it.
2. "hand_off" (after a hand-off): an AI agent handed the case to a person (a HandOff exists) and a
   person resolved it (rule 1 did not apply).
3. "approval" (after one approval): at least one decision on the case was executed under the
   one-off grant of an approved authority request (Decision.request is set: decision_execute sets
   it exactly when the verdict went through a one-off grant). The request may show "voided" since,
   when the case changed after part of the grant was used: what it allowed was still used.
4. "own" (within own authority): the case has executed decisions, and none went through a one-off
   grant. A request that was asked but never used (rejected, expired, withdrawn) does not move a case
   out of this path: the resolution used no approval.
5. "none" (no decision): nothing was executed on the case (refusals and shadow decisions are not
   decisions). Reversed decisions still count as decisions executed.

Figures of each cell:

- cases: cases resolved in the period (resolved_at is the last resolution: a reopened case that was
  resolved again counts once, at its last resolution).
- CSAT: the mean customer rating (1 to 5) of those cases, and how many were rated.
- reopen rate: the cases with a "reopened" case event (at any time) / the cases.
- time to resolution: the median of resolved_at - opened_at, computed in the database with window
  functions (row number and count per partition; only the one or two middle rows of each cell,
  category, path and of the whole are read: at most 4 x (cells + categories + paths + 1) rows).
- retention proxy: the share of the cases whose customer came back within RETENTION_DAYS after
  the resolution: (a) the customer opened another case in (resolved_at, resolved_at + 90 days] —
  a later renewal case is such a case — or (b) renewed: a contract extension (authority kind
  RENEWAL_KIND) decided, and not reversed, on any of the customer's cases in that window. Counted per
  case (a customer with two cases in a cell counts twice). For cases resolved less than 90 days
  before now the window is still open, so the figure is a lower bound for recent periods.

Three queries whatever the number of cases, decisions, events or teams: the renewal kind's id (as a
value, so the planner sees how rare it is), one grouped aggregate per (category, path) cell (sums
give the totals exactly: the mean rating is kept as a sum and a count) and one windowed query for
the medians; on PostgreSQL a fourth turns JIT compilation off for them (see _without_jit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Case as SqlCase
from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from authority.models import AuthorityKind, Decision
from authority.reports.ai_vs_human import resolved_by_ai_agent
from h2h_core.models import Case, CaseCategory, CaseEvent, HandOff, Team

DEFAULT_DAYS = 90
RETENTION_DAYS = 90
RENEWAL_KIND = "contract_extension"

OWN, APPROVAL, AI, HAND_OFF, NO_DECISION = "own", "approval", "ai", "hand_off", "none"
#: The paths in the order people read them (the precedence is in the module docstring and in _path).
PATHS = (
    (OWN, "Within own authority"),
    (APPROVAL, "After one approval"),
    (AI, "By an AI agent"),
    (HAND_OFF, "After a hand-off"),
    (NO_DECISION, "No decision"),
)
PATH_LABELS = dict(PATHS)
#: The figures that add up across cells.
COUNTS = ("cases", "rated", "rating_sum", "reopened", "retained")


@dataclass
class Figures:
    """The outcomes of one cell (or of a total)."""

    cases: int = 0
    rated: int = 0
    rating_sum: int = 0
    reopened: int = 0
    retained: int = 0
    median_time: timedelta | None = None  # time to resolution, median over the cases

    @property
    def rating(self) -> float | None:
        """Mean customer rating (1 to 5) of the rated cases."""
        return round(self.rating_sum / self.rated, 2) if self.rated else None

    @property
    def reopen_rate(self) -> float | None:
        """Reopened at least once, in % of the cases."""
        return round(100 * self.reopened / self.cases, 1) if self.cases else None

    @property
    def retention_rate(self) -> float | None:
        """Customer came back within RETENTION_DAYS, in % of the cases."""
        return round(100 * self.retained / self.cases, 1) if self.cases else None

    @property
    def median_hours(self) -> float | None:
        return round(self.median_time.total_seconds() / 3600, 1) if self.median_time is not None else None


@dataclass
class Row:
    category: str  # a CaseCategory value, or "" on a total over every category
    path: str  # a path, or "" on a total over every path
    figures: Figures = field(default_factory=Figures)

    @property
    def category_label(self) -> str:
        return CaseCategory(self.category).label if self.category else "All moments"

    @property
    def path_label(self) -> str:
        return PATH_LABELS[self.path] if self.path else "Every path"


@dataclass
class Outcomes:
    since: datetime
    until: datetime
    teams: list[Team] | None  # None: every case, with or without a team
    cells: dict[tuple[str, str], Row]  # (category, path): every pair, in CaseCategory then PATHS order
    by_category: dict[str, Row]  # totals per category, over every path
    by_path: dict[str, Row]  # totals per path, over every category
    total: Row

    def matrix(self) -> list[tuple[Row, list[Row]]]:
        """(category total, [its cell per path]) per category, for tables of categories x paths."""
        return [(self.by_category[value], [self.cells[(value, path)] for path, _ in PATHS])
                for value in CaseCategory.values]

    def rows(self) -> list[Row]:
        """Every cell, then the totals per category, per path and overall (the CSV's rows)."""
        return [*self.cells.values(), *self.by_category.values(), *self.by_path.values(), self.total]


def _path() -> SqlCase:
    """The resolution path of a case, the first rule that applies (see the module docstring)."""
    cases_decisions = Decision.objects.filter(case_id=OuterRef("pk"))
    return SqlCase(
        When(resolved_by_ai_agent(), then=Value(AI)),
        When(Exists(HandOff.objects.filter(case_id=OuterRef("pk"))), then=Value(HAND_OFF)),
        When(Exists(cases_decisions.filter(request__isnull=False)), then=Value(APPROVAL)),
        When(Exists(cases_decisions), then=Value(OWN)),
        default=Value(NO_DECISION),
    )


def _retained() -> Q:
    """The case's customer came back within RETENTION_DAYS of the resolution (another case or a renewal)."""
    window_end = ExpressionWrapper(OuterRef("resolved_at") + timedelta(days=RETENTION_DAYS),
                                   output_field=DateTimeField())
    another_case = (Case.objects.filter(customer_id=OuterRef("customer_id"), opened_at__gt=OuterRef("resolved_at"),
                                        opened_at__lte=window_end)
                    .exclude(pk=OuterRef("pk")))
    # The kind's id as a value, not a subquery: the planner then sees how rare the kind is and starts from
    # it, instead of intersecting the customer's decisions with every decision of the 90 days (seconds
    # per case on a busy month, measured with bench/analytics.py).
    renewal_kind = AuthorityKind.objects.filter(code=RENEWAL_KIND).values_list("pk", flat=True).first()
    renewed = Decision.objects.filter(case__customer_id=OuterRef("customer_id"), kind_id=renewal_kind,
                                      reversed_at__isnull=True, executed_at__gt=OuterRef("resolved_at"),
                                      executed_at__lte=window_end)
    return Q(Exists(another_case)) | Q(Exists(renewed))


def resolved_cases(*, since: datetime, until: datetime, team_ids: list[int] | None) -> QuerySet:
    """The cases resolved in [since, until) (of these teams, unless None), each with its `path`."""
    qs = Case.objects.filter(resolved_at__gte=since, resolved_at__lt=until)
    if team_ids is not None:
        qs = qs.filter(team_id__in=team_ids)
    return qs.annotate(path=_path())


#: The groupings whose medians are read: a cell, a category, a path, everything.
_GROUPINGS = {"cell": ("category", "path"), "category": ("category",), "path": ("path",), "all": ()}


def _medians(qs: QuerySet) -> dict[tuple[str, tuple], timedelta]:
    """The median time to resolution of every grouping of `qs`, keyed (grouping, its key values), in one query.

    Each row gets its rank and its partition's size for each grouping; only the middle one or two rows
    of some partition are read back (ranks (n + 1) / 2 and n / 2 + 1, in integer division: the same
    row when n is odd).
    """
    took = ExpressionWrapper(F("resolved_at") - F("opened_at"), output_field=DurationField())
    qs = qs.annotate(took=took)
    middle = Q()
    for name, columns in _GROUPINGS.items():
        partition = [F(column) for column in columns] or None
        qs = qs.annotate(**{
            f"rank_{name}": Window(RowNumber(), partition_by=partition, order_by=[F("took").asc(), F("pk").asc()]),
            f"size_{name}": Window(Count("pk"), partition_by=partition),
        })
        middle |= Q(**{f"rank_{name}": (F(f"size_{name}") + 1) / 2}) | Q(**{f"rank_{name}": F(f"size_{name}") / 2 + 1})
    fields = ["category", "path", "took"] + [f"{kind}_{name}" for name in _GROUPINGS for kind in ("rank", "size")]
    middles: dict[tuple[str, tuple], list[timedelta]] = defaultdict(list)
    for row in qs.filter(middle).values(*fields).order_by():
        for name, columns in _GROUPINGS.items():
            rank, size = row[f"rank_{name}"], row[f"size_{name}"]
            if rank in ((size + 1) // 2, size // 2 + 1):
                middles[(name, tuple(row[column] for column in columns))].append(row["took"])
    return {key: sum(values, timedelta()) / len(values) for key, values in middles.items()}


@contextmanager
def _without_jit() -> Iterator[None]:
    """Run the report's queries without PostgreSQL's JIT compiler, in one transaction.

    The planner prices each correlated EXISTS of a resolution path as if it ran once per case (it runs
    hashed, once), so on a month of cases the estimate passes jit_above_cost and PostgreSQL spends about
    a second compiling queries that then run in tens of milliseconds (measured on 10,000 cases: 874 ms
    with JIT, 22 ms without). Nor with bitmap scans: the renewal check's 90-day window is estimated
    at a few decisions (it holds hundreds), so the planner intersected every renewal of the window with
    each customer's cases, per case: 1.15 s on a simulated month of 10,000 cases, 0.16 s going from the
    customer's cases to their decisions instead (bench/simulated_month.py). SET LOCAL ends with the
    transaction; other databases have neither.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
                cursor.execute("SET LOCAL enable_bitmapscan = off")
        yield


def outcomes(*, teams: Iterable[Team] | None = None, since: datetime | None = None,
             until: datetime | None = None, now: datetime | None = None) -> Outcomes:
    """Return CSAT, reopen rate, time to resolution and retention per moment that matters and resolution path.

    `teams`: only the cases of these teams (a manager's); None: every case (an auditor's). The period is
    [since, until), by default the last DEFAULT_DAYS days up to now. Three queries (four on PostgreSQL).
    """
    with _without_jit():
        return _outcomes(teams=teams, since=since, until=until, now=now)


def _outcomes(*, teams, since, until, now) -> Outcomes:
    until = until or now or timezone.now()
    since = since or until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        raise ValueError("The period must start before it ends.")
    team_list = None if teams is None else list(teams)
    team_ids = None if team_list is None else [team.pk for team in team_list]
    cells = {(value, path): Row(value, path) for value in CaseCategory.values for path, _ in PATHS}

    def cell(category: str, path: str) -> Row:
        # a case with a category no longer offered is counted under "Other"
        return cells.get((category, path)) or cells[(CaseCategory.OTHER, path)]

    reopened = Exists(CaseEvent.objects.filter(case_id=OuterRef("pk"), kind=CaseEvent.Kind.REOPENED))
    base = resolved_cases(since=since, until=until, team_ids=team_ids)
    for entry in (base.alias(reopened=reopened, retained=_retained())
                  .values("category", "path")
                  .annotate(cases=Count("pk"), rated=Count("rating"), rating_sum=Sum("rating"),
                            n_reopened=Count("pk", filter=Q(reopened=True)),
                            n_retained=Count("pk", filter=Q(retained=True)))
                  .order_by()):
        figures = cell(entry["category"], entry["path"]).figures
        figures.cases += entry["cases"]
        figures.rated += entry["rated"]
        figures.rating_sum += entry["rating_sum"] or 0
        figures.reopened += entry["n_reopened"]
        figures.retained += entry["n_retained"]

    by_category = {value: _sum(Row(value, ""), [cells[(value, path)] for path, _ in PATHS])
                   for value in CaseCategory.values}
    by_path = {path: _sum(Row("", path), [cells[(value, path)] for value in CaseCategory.values])
               for path, _ in PATHS}
    total = _sum(Row("", ""), list(cells.values()))

    medians = _medians(base)
    for (category, path), row in cells.items():
        row.figures.median_time = medians.get(("cell", (category, path)))
    for category, row in by_category.items():
        row.figures.median_time = medians.get(("category", (category,)))
    for path, row in by_path.items():
        row.figures.median_time = medians.get(("path", (path,)))
    total.figures.median_time = medians.get(("all", ()))
    return Outcomes(since=since, until=until, teams=team_list, cells=cells, by_category=by_category,
                    by_path=by_path, total=total)


def _sum(total: Row, rows: list[Row]) -> Row:
    for name in COUNTS:
        setattr(total.figures, name, sum(getattr(row.figures, name) for row in rows))
    return total


#: The CSV's columns, in order: (header, how to read it from a row).
CSV_COLUMNS = (
    ("category", lambda row: row.category or "all"),
    ("resolution_path", lambda row: row.path or "all"),
    ("cases", lambda row: row.figures.cases),
    ("rated_cases", lambda row: row.figures.rated),
    ("mean_rating", lambda row: row.figures.rating),
    ("reopened_cases", lambda row: row.figures.reopened),
    ("reopen_rate_percent", lambda row: row.figures.reopen_rate),
    ("median_hours_to_resolution", lambda row: row.figures.median_hours),
    ("customers_back_within_90_days", lambda row: row.figures.retained),
    ("retention_percent", lambda row: row.figures.retention_rate),
)


def csv_rows(report: Outcomes) -> list[list]:
    """The report as CSV rows (without the header): every cell, then the totals."""
    return [[read(row) for _, read in CSV_COLUMNS] for row in report.rows()]


__all__ = [
    "AI", "APPROVAL", "CSV_COLUMNS", "DEFAULT_DAYS", "HAND_OFF", "NO_DECISION", "OWN", "PATHS", "PATH_LABELS",
    "RENEWAL_KIND", "RETENTION_DAYS", "Figures", "Outcomes", "Row", "csv_rows", "outcomes", "resolved_cases",
]
