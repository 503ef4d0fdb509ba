"""Abuse and structuring detection for auditors: four detectors, each a fixed number of queries.

Each detector looks at a period [since, until) and returns a `DetectorResult`: its findings, worst
first, at most `Thresholds.top` of them, and how many more there were. A finding says what was seen
in plain words with the numbers, and carries its evidence: decision ids, request ids, cases, the
customer, the people involved and the window it happened in. A finding can become a review flag on
its latest decision (`Finding.flag_decision_id`); its `key` is written into the flag's text, so the
page can say which findings are already flagged.

The detectors and their thresholds (`Thresholds`, defaults in brackets):

- split refunds (structuring): for one customer and kind, at least `split_min_decisions` [2]
  decisions within `split_window` [7 days], by one agent or several, each within `split_margin`
  [10 %] below (or at) the deciding grant's per-case limit, whose sum exceeds that limit. The limit
  is the deciding grant's `per_case_limit` (the verdict's `per_case_limit`: a grant version never
  changes, so both are the same) and amounts are compared as counted in the grant's currency.
  Decisions under one-off grants (an approved request) are left out: their limit is the approved amount.
- several agents for one customer: at least `agents_min` [3] distinct people or AI agents decided
  money decisions (refunds, credits...) for one customer within `agents_window` [30 days].
- approver shopping: a request approved in the period, whose requester had a request of the same
  kind for the same customer rejected by another approver within `shopping_window` [30 days]
  before asking again. Same case: major; another case of the customer: minor.
- decisions just before a grant ends: decisions in the last `grant_end_window` [24 hours] before
  their deciding grant ended, expired or was replaced by a version with a lower limit (a change
  that raised or kept the limits is not an ending). Severity by the share of the grant's period cap
  (or, without one, of its per-case limit) those decisions used: >= 50 % major, >= 20 % minor.

Each detector finds its worst cases in the database and loads the evidence of the findings shown
only: at most three queries per detector, whatever the history. The sliding windows are window
functions over the time in seconds (a RANGE frame; PostgreSQL >= 11, SQLite >= 3.28), wrapped in
plain SQL where Django cannot nest them, so one pass keeps each customer's worst window, the top N
and how many there were. A sliding window may start before `since`: evidence before the period
still counts towards a finding anchored in it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.expressions import ValueRange
from django.db.models.functions import Cast, Coalesce, Lag, Lead

from authority.models import AuthorityRequest, Decision, Grant, GrantStatus, RequestStatus, Unit
from authority.quantities import format_quantity

SPLIT = "split-refunds"
MANY_AGENTS = "many-agents"
SHOPPING = "approver-shopping"
GRANT_END = "before-grant-end"
DETECTORS = {
    SPLIT: "Refunds split just under a limit",
    MANY_AGENTS: "One customer, several agents",
    SHOPPING: "Approver shopping",
    GRANT_END: "Decisions just before a grant ended",
}
SEVERITY_RANK = {"major": 3, "minor": 2, "info": 1}
EVIDENCE_SHOWN = 12  # decisions a page links per finding (all are in the CSV and the API)
_RATIO = DecimalField(max_digits=30, decimal_places=10)


@dataclass(frozen=True)
class Thresholds:
    """The detectors' parameters; the defaults are the ones documented above."""

    split_window: timedelta = timedelta(days=7)
    split_margin: Decimal = Decimal("0.10")
    split_min_decisions: int = 2
    agents_window: timedelta = timedelta(days=30)
    agents_min: int = 3
    shopping_window: timedelta = timedelta(days=30)
    grant_end_window: timedelta = timedelta(hours=24)
    top: int = 20

    def __post_init__(self):
        if not Decimal(0) < self.split_margin < Decimal(1):
            raise ValueError("split_margin must be between 0 and 1.")
        if self.split_min_decisions < 2 or self.agents_min < 2 or self.top < 1:
            raise ValueError("split_min_decisions and agents_min must be at least 2, top at least 1.")
        if min(self.split_window, self.agents_window, self.shopping_window, self.grant_end_window) <= timedelta(0):
            raise ValueError("Windows must be positive.")


@dataclass(frozen=True)
class Finding:
    """One pattern worth a look, with its evidence."""

    detector: str
    severity: str  # a ReviewFlag severity: major, minor or info
    explanation: str
    decision_ids: tuple[int, ...]
    request_ids: tuple[int, ...]
    case_ids: tuple[int, ...]
    customer_id: int | None
    customer_name: str
    people: tuple[str, ...]
    window_start: datetime
    window_end: datetime
    flag_decision_id: int | None  # the finding's latest decision: where a review flag goes
    score: Decimal = Decimal(0)  # orders findings of one severity

    @property
    def key(self) -> str:
        anchor = f"d{self.flag_decision_id}" if self.flag_decision_id else f"r{max(self.request_ids, default=0)}"
        return f"{self.detector}:{anchor}"

    @property
    def cases(self) -> list[tuple[int, str]]:
        return [(pk, f"H2H-{pk:06d}") for pk in self.case_ids]

    @property
    def title(self) -> str:
        return DETECTORS[self.detector]

    @property
    def first_decisions(self) -> tuple[int, ...]:
        """The decisions a page lists (the latest ones); `more_decisions` says how many it leaves out."""
        return self.decision_ids[-EVIDENCE_SHOWN:]

    @property
    def more_decisions(self) -> int:
        return max(len(self.decision_ids) - EVIDENCE_SHOWN, 0)

    @property
    def flag_text(self) -> str:
        """The review flag's text: the explanation, and the key that marks the finding as flagged."""
        return f"{self.title}: {self.explanation} (finding {self.key})"


@dataclass(frozen=True)
class DetectorResult:
    detector: str
    findings: list[Finding]
    total: int
    description: str = ""

    @property
    def title(self) -> str:
        return DETECTORS[self.detector]

    @property
    def more(self) -> int:
        return max(self.total - len(self.findings), 0)


@dataclass(frozen=True)
class Findings:
    since: datetime
    until: datetime
    thresholds: Thresholds
    results: list[DetectorResult] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(r.total for r in self.results)

    def shown(self) -> Iterator[Finding]:
        for result in self.results:
            yield from result.findings


def _ranked(findings: Iterable[Finding], top: int) -> list[Finding]:
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], -f.score, -(f.flag_decision_id or 0)))[:top]


def _qty(value, unit: str, currency: str) -> str:
    return format_quantity(Decimal(value), unit=unit, currency=currency)


def _days(window: timedelta) -> str:
    if window % timedelta(days=1):
        hours = int(window.total_seconds() // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{window.days} day{'s' if window.days != 1 else ''}"


def _end_minus(field_name: str, window: timedelta):
    """`field - window` as an SQL expression (works inside a correlated subquery)."""
    return ExpressionWrapper(F(field_name) - Value(window), output_field=Decision._meta.get_field("executed_at"))


class Epoch(Func):
    """A timestamp as seconds since 1970 (a number a RANGE window frame can slide over)."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
                           **extra)


class SecondsPreceding(ValueRange):
    """RANGE BETWEEN n PRECEDING AND CURRENT ROW over a number (Epoch): Django's ValueRange refuses an
    offset on PostgreSQL, which has supported it since version 11; SQLite since 3.28."""

    def __init__(self, seconds: int):
        self.seconds = int(seconds)
        super().__init__(start=None, end=0)

    def window_frame_start_end(self, connection, start, end):
        return f"{self.seconds} PRECEDING", "CURRENT ROW"


def _seconds(window: timedelta) -> int:
    return int(window.total_seconds())


def _ratio(numerator, denominator):
    """A quotient in floating point: SQLite stores whole decimals as integers and would divide them as such."""
    return Cast(numerator, FloatField()) / Cast(denominator, FloatField())


def _count_of(qs, group: str, expression) -> Subquery:
    """A correlated aggregate: `qs` is filtered to one group by the outer row, so it has one row."""
    return Subquery(qs.order_by().values(group).annotate(value=expression).values("value")[:1])


# --- split refunds (structuring) ---------------------------------------------------------------------


def split_refunds(*, since: datetime, until: datetime, thresholds: Thresholds = Thresholds()) -> DetectorResult:
    """Several decisions for one customer and kind, each just under the per-case limit, summing over it.

    Three queries: the anchors (decisions closing a qualifying window), their count by customer and
    kind, and the evidence of the findings shown.
    """
    t = thresholds
    floor = Value(Decimal(1) - t.split_margin, output_field=_RATIO)
    near = (Decision.objects.filter(grant__case__isnull=True, grant__per_case_limit__gt=0,
                                    counted_amount__lte=F("grant__per_case_limit"))
            .alias(floor=ExpressionWrapper(F("grant__per_case_limit") * floor, output_field=_RATIO))
            .filter(counted_amount__gte=F("floor")))
    window = near.filter(executed_at__gte=since - t.split_window, executed_at__lt=until)
    # The sliding window, per customer, kind and currency: a RANGE frame over the time in seconds.
    frame = {"partition_by": [F("case__customer_id"), F("kind_id"), F("counted_currency")],
             "order_by": Epoch("executed_at").asc(), "frame": SecondsPreceding(_seconds(t.split_window))}
    moves = (window.order_by()
             .annotate(customer=F("case__customer_id"), ep=Epoch("executed_at"), n=Window(Count("id"), **frame),
                       total=Window(Sum("counted_amount"), **frame), lim=F("grant__per_case_limit"))
             .values("id", "customer", "kind_id", "counted_currency", "ep", "n", "total", "lim"))
    moves_sql, moves_params = moves.query.sql_with_params()
    # Each customer, kind and currency's worst window (its finding), the top N, and how many there were.
    sql = f"""
        WITH moves AS ({moves_sql}),
        over AS (SELECT id, customer, kind_id, counted_currency, ep, n,
                        CAST(total AS FLOAT) / CAST(lim AS FLOAT) AS ratio
                 FROM moves WHERE n >= %s AND total > lim AND ep >= %s),
        worst AS (SELECT id, customer, kind_id, counted_currency, ep, n, ratio,
                         ROW_NUMBER() OVER (PARTITION BY customer, kind_id, counted_currency
                                            ORDER BY ratio DESC, n DESC, ep DESC, id DESC) AS rank
                  FROM over)
        SELECT id, ratio, n, COUNT(*) OVER () FROM worst WHERE rank = 1
        ORDER BY ratio DESC, n DESC, ep DESC, id DESC LIMIT %s"""
    with connection.cursor() as cursor:
        cursor.execute(sql, (*moves_params, t.split_min_decisions, since.timestamp(), t.top))
        found = cursor.fetchall()
    total = found[0][3] if found else 0
    evidence: dict[int, list[dict]] = defaultdict(list)
    chosen: list[dict] = []
    if found:
        anchors = {row[0]: row for row in found}
        rows = {d["id"]: d for d in window.filter(id__in=anchors).values(
            "id", "executed_at", "case__customer_id", "case__customer__name", "kind_id", "kind__name", "kind__unit",
            "counted_currency", "grant__per_case_limit")}
        chosen = [{**rows[pk], "ratio": Decimal(str(row[1])), "n": row[2], "limit": rows[pk]["grant__per_case_limit"]}
                  for pk, row in anchors.items() if pk in rows]
        match = reduce(or_, (Q(case__customer_id=r["case__customer_id"], kind_id=r["kind_id"],
                               counted_currency=r["counted_currency"],
                               executed_at__gte=r["executed_at"] - t.split_window,
                               executed_at__lte=r["executed_at"]) for r in chosen))
        for d in (window.filter(match).order_by("executed_at", "id")
                  .values("id", "executed_at", "case_id", "case__customer_id", "kind_id", "counted_currency",
                          "counted_amount", "agent__username", "request_id")):
            for r in chosen:
                if ((d["case__customer_id"], d["kind_id"], d["counted_currency"])
                        == (r["case__customer_id"], r["kind_id"], r["counted_currency"])
                        and r["executed_at"] - t.split_window <= d["executed_at"] <= r["executed_at"]):
                    evidence[r["id"]].append(d)
    findings = []
    for r in chosen:
        items = evidence[r["id"]]
        if not items:
            continue
        unit, cur = r["kind__unit"], r["counted_currency"]
        amounts = [d["counted_amount"] for d in items]
        people = tuple(dict.fromkeys(d["agent__username"] for d in items))
        severity = "major" if r["ratio"] >= 2 or len(items) >= 4 else "minor"
        who = f"by {people[0]}" if len(people) == 1 else f"by {len(people)} agents ({', '.join(people)})"
        findings.append(Finding(
            detector=SPLIT, severity=severity,
            explanation=(f"{len(items)} {r['kind__name'].lower()} decisions for {r['case__customer__name']} within "
                         f"{_days(t.split_window)} {who}, each between {_qty(min(amounts), unit, cur)} and "
                         f"{_qty(max(amounts), unit, cur)}: at most {int(t.split_margin * 100)} % under the "
                         f"{_qty(r['limit'], unit, cur)} per-case limit. Together "
                         f"{_qty(sum(amounts), unit, cur)}, {sum(amounts) / r['limit']:.1f} times the limit."),
            decision_ids=tuple(d["id"] for d in items),
            request_ids=tuple(d["request_id"] for d in items if d["request_id"]),
            case_ids=tuple(dict.fromkeys(d["case_id"] for d in items)),
            customer_id=r["case__customer_id"], customer_name=r["case__customer__name"], people=people,
            window_start=items[0]["executed_at"], window_end=items[-1]["executed_at"],
            flag_decision_id=items[-1]["id"], score=Decimal(str(r["ratio"])),
        ))
    return DetectorResult(SPLIT, _ranked(findings, t.top), total)


# --- several agents for one customer -----------------------------------------------------------------


def many_agents(*, since: datetime, until: datetime, thresholds: Thresholds = Thresholds()) -> DetectorResult:
    """One customer given money decisions by several distinct agents within a sliding window.

    Two queries. The first counts, at each decision, the agents present for its customer in the
    window ending there, in one pass of window functions: an agent's decisions form streaks (no gap
    longer than the window); a streak's first decision is an arrival, its last a departure one window
    later, so agents present at t = arrivals up to t minus departures before t - window. It keeps
    each customer's worst moment, the top N customers and how many there were. The second loads
    the evidence of the customers shown.
    """
    t = thresholds
    width = _seconds(t.agents_window)
    money = Decision.objects.filter(kind__unit=Unit.MONEY, executed_at__gte=since - t.agents_window,
                                    executed_at__lt=until)
    streak = {"partition_by": [F("case__customer_id"), F("agent_id")], "order_by": [Epoch("executed_at").asc(),
                                                                                   F("id").asc()]}
    inner = (money.order_by()
             .annotate(customer=F("case__customer_id"), ep=Epoch("executed_at"),
                       prv=Window(Lag(Epoch("executed_at")), **streak),
                       nxt=Window(Lead(Epoch("executed_at")), **streak))
             .values("id", "customer", "ep", "prv", "nxt"))
    inner_sql, inner_params = inner.query.sql_with_params()
    by_customer = "PARTITION BY customer ORDER BY ep RANGE BETWEEN UNBOUNDED PRECEDING AND"
    sql = f"""
        WITH moves AS ({inner_sql}),
        present AS (
            SELECT id, customer, ep,
                   SUM(CASE WHEN prv IS NULL OR ep - prv > %s THEN 1 ELSE 0 END) OVER ({by_customer} CURRENT ROW)
                   - COALESCE(SUM(CASE WHEN nxt IS NULL OR nxt - ep > %s THEN 1 ELSE 0 END)
                              OVER ({by_customer} %s PRECEDING), 0) AS agents
            FROM moves),
        worst AS (
            SELECT id, customer, ep, agents,
                   ROW_NUMBER() OVER (PARTITION BY customer ORDER BY agents DESC, ep DESC, id DESC) AS rank
            FROM present WHERE agents >= %s AND ep >= %s)
        SELECT id, customer, agents, COUNT(*) OVER () AS customers FROM worst WHERE rank = 1
        ORDER BY agents DESC, ep DESC, id DESC LIMIT %s"""
    params = (*inner_params, width, width, width + 1, t.agents_min, since.timestamp(), t.top)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [{"id": r[0], "customer": r[1], "agents": r[2], "customers": r[3]} for r in cursor.fetchall()]
    total = rows[0]["customers"] if rows else 0
    evidence: dict[int, list[dict]] = defaultdict(list)
    if rows:
        match = reduce(or_, (Q(case__customer_id=r["customer"]) for r in rows))
        anchors = {r["id"] for r in rows}
        found = list(money.filter(match).filter(Q(id__in=anchors) | Q(executed_at__gte=since - t.agents_window))
                     .order_by("executed_at", "id")
                     .values("id", "executed_at", "case_id", "case__customer_id", "case__customer__name",
                             "agent__username", "counted_amount", "counted_currency", "request_id"))
        at = {d["id"]: d["executed_at"] for d in found if d["id"] in anchors}
        for r in rows:
            end = at.get(r["id"])
            if end is None:
                continue
            evidence[r["id"]] = [d for d in found if d["case__customer_id"] == r["customer"]
                                 and end - t.agents_window <= d["executed_at"] <= end
                                 and (d["executed_at"] < end or d["id"] <= r["id"])]
    findings = []
    for r in rows:
        items = evidence[r["id"]]
        if not items:
            continue
        people = tuple(dict.fromkeys(d["agent__username"] for d in items))
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for d in items:
            sums[d["counted_currency"]] += d["counted_amount"]
        money_text = " and ".join(_qty(v, Unit.MONEY, c) for c, v in sorted(sums.items()))
        name = items[0]["case__customer__name"]
        findings.append(Finding(
            detector=MANY_AGENTS, severity="major" if len(people) >= t.agents_min + 2 else "minor",
            explanation=(f"{len(people)} different agents ({', '.join(people)}) made {len(items)} money decisions "
                         f"for {name} on {len({d['case_id'] for d in items})} case(s) within "
                         f"{_days(t.agents_window)}: {money_text} in all."),
            decision_ids=tuple(d["id"] for d in items),
            request_ids=tuple(d["request_id"] for d in items if d["request_id"]),
            case_ids=tuple(dict.fromkeys(d["case_id"] for d in items)),
            customer_id=r["customer"], customer_name=name, people=people,
            window_start=items[0]["executed_at"], window_end=items[-1]["executed_at"],
            flag_decision_id=items[-1]["id"], score=Decimal(len(people)),
        ))
    return DetectorResult(MANY_AGENTS, _ranked(findings, t.top), total)


# --- approver shopping ----------------------------------------------------------------------------------


def approver_shopping(*, since: datetime, until: datetime, thresholds: Thresholds = Thresholds()) -> DetectorResult:
    """A request approved after the same requester's request (same kind, same customer) was rejected by
    another approver shortly before.

    Two queries: the approved requests with their earlier rejection (correlated subqueries) and how
    many there were, and the rejected requests shown as evidence.
    """
    t = thresholds
    rejected = AuthorityRequest.objects.filter(
        status=RequestStatus.REJECTED, requester_id=OuterRef("requester_id"), kind_id=OuterRef("kind_id"),
        case__customer_id=OuterRef("case__customer_id"), decided_at__lte=OuterRef("created_at"),
        decided_at__gt=ExpressionWrapper(OuterRef("created_at") - Value(t.shopping_window),
                                         output_field=AuthorityRequest._meta.get_field("created_at")),
    ).exclude(decided_by_id=OuterRef("decided_by_id"))
    shopped = (AuthorityRequest.objects
               .filter(status=RequestStatus.APPROVED, decided_at__gte=since, decided_at__lt=until)
               .annotate(prior_id=Subquery(rejected.order_by("-decided_at", "-id").values("id")[:1]))
               .filter(prior_id__isnull=False)
               .annotate(priors=_count_of(rejected, "requester_id", Count("id")),
                         same_case=Exists(rejected.filter(case_id=OuterRef("case_id"))),
                         decision_id=Subquery(Decision.objects.filter(request_id=OuterRef("pk"))
                                              .order_by("-executed_at", "-id").values("id")[:1])))
    ranked = shopped.annotate(found=Window(Count("id"))).order_by("-same_case", "-priors", "-decided_at", "-id")
    rows = list(ranked.values(
        "id", "case_id", "case__customer_id", "case__customer__name", "kind__name", "kind__unit", "amount",
        "currency", "created_at", "decided_at", "requester__username", "decided_by__username", "prior_id",
        "priors", "same_case", "decision_id", "found")[: t.top])
    total = rows[0]["found"] if rows else 0
    priors = {p["id"]: p for p in AuthorityRequest.objects.filter(pk__in=[r["prior_id"] for r in rows]).values(
        "id", "case_id", "amount", "currency", "decided_at", "decided_by__username")}
    findings = []
    for r in rows:
        p = priors[r["prior_id"]]
        unit = r["kind__unit"]
        where = "the same case" if p["case_id"] == r["case_id"] else f"another case of {r['case__customer__name']}"
        waited = r["created_at"] - p["decided_at"]
        findings.append(Finding(
            detector=SHOPPING, severity="major" if r["same_case"] else "minor",
            explanation=(f"{r['requester__username']} asked for {_qty(r['amount'], unit, r['currency'])} "
                         f"({r['kind__name'].lower()}) on {where} {_duration(waited)} after "
                         f"{p['decided_by__username']} rejected {_qty(p['amount'], unit, p['currency'])}; "
                         f"{r['decided_by__username']} approved it"
                         + (f" ({r['priors']} rejections by other approvers before)." if r["priors"] > 1 else ".")),
            decision_ids=(r["decision_id"],) if r["decision_id"] else (),
            request_ids=(p["id"], r["id"]),
            case_ids=tuple(dict.fromkeys((p["case_id"], r["case_id"]))),
            customer_id=r["case__customer_id"], customer_name=r["case__customer__name"],
            people=tuple(dict.fromkeys((r["requester__username"], p["decided_by__username"],
                                        r["decided_by__username"]))),
            window_start=p["decided_at"], window_end=r["decided_at"], flag_decision_id=r["decision_id"],
            score=Decimal(r["priors"]),
        ))
    return DetectorResult(SHOPPING, _ranked(findings, t.top), total)


def _duration(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return f"{max(int(delta.total_seconds() // 60), 0)} min"
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.0f} days"


# --- decisions just before a grant ends ------------------------------------------------------------------


def _grant_end(prefix: str = ""):
    """When a grant version stopped being in force: the earlier of its supersession and its expiry."""
    sup, until = f"{prefix}superseded_at", f"{prefix}valid_until"
    return Case(
        When(**{f"{sup}__isnull": False, f"{until}__isnull": False, f"{sup}__lt": F(until)}, then=F(sup)),
        When(**{f"{until}__isnull": False}, then=F(until)),
        default=F(sup),
        output_field=Grant._meta.get_field("valid_from"),
    )


def before_grant_end(*, since: datetime, until: datetime, thresholds: Thresholds = Thresholds()) -> DetectorResult:
    """Decisions in the last hours before their deciding grant ended, expired or was lowered.

    Three queries: the decisions grouped by grant and agent, the number of groups, and the
    decisions of the groups shown.
    """
    t = thresholds
    successor = Grant.objects.filter(supersedes_id=OuterRef("grant_id"), status=GrantStatus.ACTIVE)
    # A successor with no lower limits is a change, not an ending (a limit added where there was none
    # is lower: comparing with NULL is false).
    raised_or_kept = Exists(successor.filter(
        Q(per_case_limit__isnull=True) | Q(per_case_limit__gte=OuterRef("grant__per_case_limit")),
        Q(period_limit__isnull=True) | Q(period_limit__gte=OuterRef("grant__period_limit")),
    ))
    expired_not_superseded = Q(grant__valid_until__isnull=False) & (
        Q(grant__superseded_at__isnull=True) | Q(grant__valid_until__lte=F("grant__superseded_at")))
    late = (Decision.objects.filter(grant__case__isnull=True)
            .annotate(ends_at=_grant_end("grant__"))
            .filter(ends_at__isnull=False, ends_at__gt=since, ends_at__lte=until)
            .filter(executed_at__lt=F("ends_at"), executed_at__gte=_end_minus("ends_at", t.grant_end_window))
            .filter(expired_not_superseded | ~raised_or_kept))
    groups = (late.order_by().values("grant_id", "agent_id", "grant__period_limit", "grant__per_case_limit")
              .annotate(n=Count("id"), used=Sum("counted_amount"), last_id=Max("id"), first_at=Min("executed_at"),
                        last_at=Max("executed_at"))
              .annotate(share=_ratio(F("used"), Coalesce("grant__period_limit", "grant__per_case_limit",
                                                         Value(Decimal(1))))))
    rows = list(groups.order_by("-share", "-n", "-last_id")[: t.top])
    total = groups.count()
    details: dict[tuple, list[dict]] = defaultdict(list)
    if rows:
        match = reduce(or_, (Q(grant_id=r["grant_id"], agent_id=r["agent_id"]) for r in rows))
        for d in late.filter(match).order_by("executed_at", "id").values(
                "id", "executed_at", "case_id", "case__customer_id", "case__customer__name", "grant_id", "agent_id",
                "agent__username", "request_id", "ends_at", "kind__name", "kind__unit", "counted_currency",
                "grant__lineage", "grant__version", "grant__per_case_limit", "grant__period_limit",
                "grant__superseded_at", "grant__valid_until"):
            details[(d["grant_id"], d["agent_id"])].append(d)
    findings = []
    for r in rows:
        items = details[(r["grant_id"], r["agent_id"])]
        if not items:
            continue
        d = items[-1]
        unit, cur = d["kind__unit"], d["counted_currency"]
        cap, cap_name = ((d["grant__period_limit"], "period cap") if d["grant__period_limit"] is not None
                         else (d["grant__per_case_limit"], "per-case limit"))
        share = Decimal(str(r["share"])) if cap is not None else None
        expired = d["grant__valid_until"] is not None and d["ends_at"] == d["grant__valid_until"]
        how = "expired" if expired else "was ended or lowered"
        use = (f"{_qty(r['used'], unit, cur)}, {share * 100:.0f} % of its {_qty(cap, unit, cur)} {cap_name}"
               if share is not None else _qty(r["used"], unit, cur))
        severity = ("info" if share is None or share < Decimal("0.2")
                    else "major" if share >= Decimal("0.5") else "minor")
        customers = {i["case__customer_id"]: i["case__customer__name"] for i in items}
        findings.append(Finding(
            detector=GRANT_END, severity=severity,
            explanation=(f"{d['agent__username']} made {len(items)} {d['kind__name'].lower()} decision(s) in the last "
                         f"{_days(t.grant_end_window)} before grant #{d['grant__lineage'] or d['grant_id']} "
                         f"v{d['grant__version']} {how}, using {use}."),
            decision_ids=tuple(i["id"] for i in items),
            request_ids=tuple(i["request_id"] for i in items if i["request_id"]),
            case_ids=tuple(dict.fromkeys(i["case_id"] for i in items)),
            customer_id=next(iter(customers)) if len(customers) == 1 else None,
            customer_name=", ".join(dict.fromkeys(customers.values())),
            people=(d["agent__username"],), window_start=items[0]["executed_at"], window_end=d["ends_at"],
            flag_decision_id=d["id"], score=share or Decimal(0),
        ))
    return DetectorResult(GRANT_END, _ranked(findings, t.top), total)


# --- all of them --------------------------------------------------------------------------------------------

RUNNERS = {SPLIT: split_refunds, MANY_AGENTS: many_agents, SHOPPING: approver_shopping, GRANT_END: before_grant_end}


def abuse_findings(*, since: datetime, until: datetime, detectors: Iterable[str] | None = None,
                   thresholds: Thresholds = Thresholds()) -> Findings:
    """Run the chosen detectors (all by default) over [since, until): three queries each."""
    if since >= until:
        raise ValueError("The period must start before it ends.")
    chosen = list(detectors) if detectors else list(DETECTORS)
    unknown = [d for d in chosen if d not in DETECTORS]
    if unknown:
        raise ValueError(f"Unknown detector(s): {', '.join(unknown)}.")
    results = [RUNNERS[name](since=since, until=until, thresholds=thresholds) for name in chosen]
    return Findings(since=since, until=until, thresholds=thresholds, results=results)


CSV_COLUMNS = ("detector", "severity", "explanation", "customer", "people", "decisions", "requests", "cases",
               "window_start", "window_end", "flag_decision")


def csv_rows(findings: Findings) -> Iterator[list]:
    """One row per finding shown (cells are made safe by edges.web.csv_cells.csv_lines)."""
    for f in findings.shown():
        yield [f.title, f.severity, f.explanation, f.customer_name, " ".join(f.people),
               " ".join(str(i) for i in f.decision_ids), " ".join(str(i) for i in f.request_ids),
               " ".join(ref for _, ref in f.cases), f.window_start.isoformat(), f.window_end.isoformat(),
               f.flag_decision_id or ""]
