"""Policy replay: what a pending grant change would have decided differently over recent history.

Before a second manager confirms a change, `grant_change_replay` replays the last `days` days of
real rows of the grant's kind by the agents the grant speaks for (a person grant: that person; a
team grant: its members, never an AI agent, see selectors.teams_whose_grants_speak_for; a role
grant: the holders of the role):

- refusals (`decision.refused` audit events refused for want of authority) the proposed terms
  would have allowed;
- authority requests the proposed terms would have avoided (the agent would have been within
  authority when asking);
- executed decisions the proposed terms would have refused (a lowering, a narrower scope, a
  suspension, a move to shadow).

Each row is asked through the product's pure resolution (`policy.evaluation.resolve`) with the
pending version and, where that answer is not what happened, again with the replaced version (or
without the grant, for a new one), every other standing grant of the kind as it was in force at
that instant. A row counts only where the two answers differ, so a change that changes nothing
shows nothing, and a row refused for some other reason (a suspension, another grant) is not
credited to the change.

Approximations (the replay reads history, it does not re-run it):
- both the replaced and the pending terms are taken as in force over the whole window;
- team memberships and roles are today's;
- per-case usage at an instant is the case's decisions of the kind executed before it, by anyone,
  in the grant's currency (what the case counter held); period usage is the agent's own decisions
  of the kind (approvals excluded: they use the approver's authority) executed in the same bucket
  before it. What the agent approved for others (rule 3a) is not counted in their period usage;
- approvals (one-off grants) are left out of both answers: a decision an approval covered is
  judged by the standing terms, and its request is counted among the requests;
- rows beyond `limit` (newest first, over the three sources together) are left out, and the
  replay says so (`truncated`).

Usage is never fetched row by row: the replayed decision rows are every decision of the agents
from the oldest replayed instant (the cutoff) on, so running totals over them, plus the sums before
the cutoff computed by the database (per case and currency; per agent, currency and period bucket),
give the counters at any replayed instant.

Queries: a fixed number (eleven, twelve with exchange rates) whatever the number of rows: agents,
the three sources, grants, memberships, roles, cases, case usage (two), period usage, rates.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import accumulate
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import F, Q, Sum
from django.db.models.fields.json import KT
from django.utils import timezone

from authority import periods, usage
from authority.errors import AuthorityDenied
from authority.models import AuthorityKind, AuthorityRequest, Decision, ExchangeRate, Grant, GrantStatus
from authority.policy.evaluation import Question, currencies_needed, resolve
from authority.quantities import format_quantity
from authority.selectors import RATE_PLACES, teams_whose_grants_speak_for
from h2h_core.models import AuditEvent, Case, Team
from h2h_core.organisation import current_organisation

User = get_user_model()

DEFAULT_DAYS = 90
MAX_DAYS = 366
ROW_LIMIT = 3000
EXAMPLES = 10
PERIOD_LENGTH_ORDER = ("day", "week", "month", "quarter")


@dataclass(frozen=True)
class ReplayRow:
    """One historical row that the change would have decided differently."""

    source: str  # "refusal", "request" or "decision"
    at: datetime
    case_id: int
    case_reference: str
    agent: str
    amount: Decimal
    currency: str
    reason: str  # the first reason of the answer under the proposed terms
    status: str = ""  # a request's status


@dataclass
class ReplayEffect:
    """The rows of one kind of difference: how many, the money (or quantity) involved, examples."""

    count: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)
    examples: list[ReplayRow] = field(default_factory=list)

    def add(self, row: ReplayRow) -> None:
        self.count += 1
        self.totals[row.currency] = self.totals.get(row.currency, Decimal(0)) + row.amount
        if len(self.examples) < EXAMPLES:
            self.examples.append(row)

    def total_text(self, unit: str, currency: str = "") -> str:
        if not self.totals:
            return format_quantity(Decimal(0), unit=unit, currency=currency)
        return " + ".join(format_quantity(value, unit=unit, currency=currency)
                          for currency, value in sorted(self.totals.items()))


@dataclass(frozen=True)
class Replay:
    pending: Grant
    replaced: Grant | None
    kind: AuthorityKind
    days: int
    since: datetime
    until: datetime
    agents: int
    examined: int
    limit: int
    truncated: bool
    allowed_refusals: ReplayEffect
    avoided_requests: ReplayEffect
    refused_decisions: ReplayEffect

    @property
    def differs(self) -> bool:
        return bool(self.allowed_refusals.count or self.avoided_requests.count or self.refused_decisions.count)

    @property
    def summary(self) -> str:
        """E.g. "Over the last 90 days this change would have allowed 14 refused refunds (3,420.00 EUR), …"."""
        unit, kind, cur = self.kind.unit, self.kind.name.lower(), self.pending.currency
        text = (f"Over the last {self.days} days this change would have allowed "
                f"{self.allowed_refusals.count} refused {kind} decision{_s(self.allowed_refusals.count)} "
                f"({self.allowed_refusals.total_text(unit, cur)}), avoided {self.avoided_requests.count} "
                f"request{_s(self.avoided_requests.count)} ({self.avoided_requests.total_text(unit, cur)}) and "
                f"refused {self.refused_decisions.count} executed decision{_s(self.refused_decisions.count)} "
                f"({self.refused_decisions.total_text(unit, cur)}).")
        if self.truncated:
            text += f" Only the newest {self.limit:,} rows were replayed."
        return text

    def effects(self) -> list[dict]:
        """The three kinds of difference in reading order: key, label, effect and its total as text."""
        return [{"key": key, "label": label, "effect": effect,
                 "total": effect.total_text(self.kind.unit, self.pending.currency)}
                for key, label, effect in (
                    ("allowed_refusals", "Refusals it would have allowed", self.allowed_refusals),
                    ("avoided_requests", "Requests it would have avoided", self.avoided_requests),
                    ("refused_decisions", "Executed decisions it would have refused", self.refused_decisions))]


def _s(count: int) -> str:
    return "" if count == 1 else "s"


@dataclass(frozen=True)
class _Row:
    source: str
    at: datetime
    order: int  # a decision's id (its own usage is not "before" it); -1 for the others
    case_id: int
    agent_id: int
    amount: Decimal
    currency: str
    status: str = ""
    # A decision's amount as its counters took it: in the deciding grant's currency; whether an approval
    # (one-off grant) covered it (then it used the approver's period, not the agent's).
    counted: Decimal = Decimal(0)
    counted_currency: str = ""
    one_off: bool = False


def grant_change_replay(*, pending: Grant, days: int = DEFAULT_DAYS, now: datetime | None = None,
                        limit: int = ROW_LIMIT) -> Replay:
    """Replay the last `days` days of the grant's kind for the agents it speaks for, with the
    replaced terms and with the pending ones, and return what differs (see the module docstring)."""
    if pending.status != GrantStatus.PENDING:
        raise ValidationError("Only a pending grant change can be replayed.")
    if pending.case_id is not None:
        raise ValidationError("A one-off grant covers one approved decision: it has nothing to replay.")
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValidationError({"days": f"Give a whole number of days between 1 and {MAX_DAYS}."})
    if not isinstance(limit, int) or limit < 1:
        raise ValidationError({"limit": "Replay at least one row."})
    until = now or timezone.now()
    since = until - timedelta(days=days)
    tz = current_organisation().tz
    kind = pending.kind
    replaced = pending.supersedes if pending.supersedes_id else None
    lineage = pending.lineage or pending.pk

    names = dict(_affected_agents(pending).values_list("pk", "username"))
    agent_ids = sorted(names)
    empty = dict(pending=pending, replaced=replaced, kind=kind, days=days, since=since, until=until,
                 agents=len(agent_ids), limit=limit)
    if not agent_ids:
        return Replay(examined=0, truncated=False, allowed_refusals=ReplayEffect(), avoided_requests=ReplayEffect(),
                      refused_decisions=ReplayEffect(), **empty)

    rows, truncated = _history(kind=kind, agent_ids=agent_ids, since=since, until=until, limit=limit)
    others = _other_grants(kind=kind, agent_ids=agent_ids, since=since, until=until, lineage=lineage)
    teams_of, roles_of = _memberships(agent_ids)
    case_rows = Case.objects.filter(pk__in={r.case_id for r in rows}).values("pk", "category", "customer__tier")
    # The reference as Case.reference spells it, without building a model instance per row.
    cases = {row["pk"]: {**row, "reference": Case.reference.fget(SimpleNamespace(pk=row["pk"]))} for row in case_rows}
    in_play = [g for g in others if g.effect == "permit"] + [g for g in (replaced, pending) if g is not None]
    # The decision rows replayed are every decision of the agents from `cutoff` on; what came before is summed.
    cutoff = min(row.at for row in rows) if truncated else since
    case_sums = _case_usage(kind=kind, case_ids=sorted(cases), agent_ids=agent_ids, rows=rows, cutoff=cutoff)
    period_sums = _period_usage(kind=kind, agent_ids=agent_ids, rows=rows, grants=in_play, cutoff=cutoff, tz=tz)
    rate_book = _rate_book(rows=rows, grants=in_play, until=until, tz=tz)

    baseline_own = [replaced] if replaced is not None and not replaced.shadow else []
    proposed_own = [] if pending.shadow else [pending]
    effects = {"refusal": ReplayEffect(), "request": ReplayEffect(), "decision": ReplayEffect()}
    for row in rows:
        case = cases.get(row.case_id)
        if case is None:
            continue
        question = Question(agent_id=row.agent_id, kind_code=kind.code, kind_name=kind.name, unit=kind.unit,
                            amount=row.amount, currency=row.currency, case_id=row.case_id,
                            case_reference=case["reference"], case_category=case["category"],
                            customer_tier=case["customer__tier"], at=row.at, tz=tz, case_owner_id=row.agent_id)
        speaking = [g for g in others if _speaks_for(g, row.agent_id, teams_of, roles_of) and _in_force(g, row.at)]
        speaking_for_agent = [g for g in (*baseline_own, *proposed_own)
                              if _speaks_for(g, row.agent_id, teams_of, roles_of)]
        baseline = speaking + [g for g in speaking_for_agent if g is replaced]
        proposed = speaking + [g for g in speaking_for_agent if g is pending]
        used = _used(question, baseline + proposed, row, cutoff, case_sums, period_sums)
        after = resolve(question, proposed, used, rate_book.rates(question, proposed))
        # Only a refusal or request the new terms allow, or a decision they refuse, can differ; then the
        # replaced terms must have answered otherwise for the difference to be the change's.
        if after.allowed == (row.source == "decision"):
            continue
        if resolve(question, baseline, used, rate_book.rates(question, baseline)).allowed == after.allowed:
            continue
        effects[row.source].add(ReplayRow(
            source=row.source, at=row.at, case_id=row.case_id, case_reference=case["reference"],
            agent=names.get(row.agent_id, str(row.agent_id)), amount=row.amount, currency=row.currency,
            reason=after.reasons[0] if after.reasons else "", status=row.status))
    return Replay(examined=len(rows), truncated=truncated, allowed_refusals=effects["refusal"],
                  avoided_requests=effects["request"], refused_decisions=effects["decision"], **empty)


# --- who the grant speaks for ---------------------------------------------------------------


def _affected_agents(grant: Grant):
    if grant.subject_user_id:
        return User.objects.filter(pk=grant.subject_user_id)
    if grant.subject_team_id:
        members = teams_whose_grants_speak_for(Team.members.through.objects.filter(team_id=grant.subject_team_id))
        return User.objects.filter(pk__in=members.values("user_id"))
    return User.objects.filter(pk__in=User.groups.through.objects.filter(group_id=grant.subject_role_id)
                               .values("user_id"))


def _memberships(agent_ids: list[int]) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    """Today's teams whose grants speak for each agent, and their roles (two queries)."""
    teams_of: dict[int, set[int]] = defaultdict(set)
    roles_of: dict[int, set[int]] = defaultdict(set)
    members = teams_whose_grants_speak_for(Team.members.through.objects.filter(user_id__in=agent_ids))
    for user_id, team_id in members.values_list("user_id", "team_id"):
        teams_of[user_id].add(team_id)
    for user_id, group_id in User.groups.through.objects.filter(user_id__in=agent_ids).values_list(
            "user_id", "group_id"):
        roles_of[user_id].add(group_id)
    return teams_of, roles_of


def _speaks_for(grant: Grant, agent_id: int, teams_of, roles_of) -> bool:
    return (grant.subject_user_id == agent_id or grant.subject_team_id in teams_of[agent_id]
            or grant.subject_role_id in roles_of[agent_id])


def _other_grants(*, kind, agent_ids, since, until, lineage) -> list[Grant]:
    """Live standing grants of the kind that may have spoken for the agents in the window, other than
    any version of the changed grant (one query). In force per row by `_in_force`."""
    teams = teams_whose_grants_speak_for(Team.members.through.objects.filter(user_id__in=agent_ids))
    roles = User.groups.through.objects.filter(user_id__in=agent_ids)
    subject = (Q(subject_user_id__in=agent_ids) | Q(subject_team_id__in=teams.values("team_id"))
               | Q(subject_role_id__in=roles.values("group_id")))
    return list(
        Grant.objects.filter(subject, kind=kind, case__isnull=True, shadow=False, status=GrantStatus.ACTIVE,
                             valid_from__lt=until)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=since))
        .filter(Q(superseded_at__isnull=True) | Q(superseded_at__gt=since))
        .exclude(Q(lineage=lineage) | Q(pk=lineage))
        .annotate(predecessor_closed_at=F("supersedes__superseded_at"))
        .select_related("subject_user", "subject_team", "subject_role")
    )


def _in_force(grant: Grant, at: datetime) -> bool:
    """`selectors.in_force_at` for one loaded grant (status and shadow already filtered)."""
    return (grant.valid_from <= at
            and (grant.valid_until is None or grant.valid_until > at)
            and (grant.superseded_at is None or grant.superseded_at > at)
            and (grant.confirmed_at is None or grant.confirmed_at <= at)
            and (grant.supersedes_id is None
                 or (grant.predecessor_closed_at is not None and grant.predecessor_closed_at <= at)))


# --- the rows replayed ----------------------------------------------------------------------


def _history(*, kind, agent_ids, since, until, limit) -> tuple[list[_Row], bool]:
    """The newest `limit` rows of the three sources together (three bounded queries)."""
    decisions = (Decision.objects.filter(agent_id__in=agent_ids, kind=kind, executed_at__gte=since,
                                         executed_at__lt=until)
                 .order_by("-executed_at", "-id")
                 .values_list("pk", "executed_at", "case_id", "agent_id", "amount", "currency", "counted_amount",
                              "counted_currency", "grant__case_id")[: limit + 1])
    requests = (AuthorityRequest.objects.filter(requester_id__in=agent_ids, kind=kind, created_at__gte=since,
                                                created_at__lt=until)
                .order_by("-created_at", "-id")
                .values_list("created_at", "case_id", "requester_id", "amount", "currency", "status")[: limit + 1])
    refusals = (AuditEvent.objects.filter(action="decision.refused", object_type="case", actor_id__in=agent_ids,
                                          occurred_at__gte=since, occurred_at__lt=until)
                .filter(after__kind=kind.code, after__error=AuthorityDenied.code)
                .annotate(asked=KT("after__amount"), asked_currency=KT("after__currency"))
                .order_by("-occurred_at", "-seq")
                .values_list("occurred_at", "object_id", "actor_id", "asked", "asked_currency")[: limit + 1])
    rows = [_Row("decision", at, pk, case_id, agent_id, amount, currency or "", counted=counted,
                 counted_currency=counted_currency or "", one_off=one_off_case is not None)
            for pk, at, case_id, agent_id, amount, currency, counted, counted_currency, one_off_case in decisions]
    rows += [_Row("request", at, -1, case_id, agent_id, amount, currency or "", status)
             for at, case_id, agent_id, amount, currency, status in requests]
    for at, object_id, agent_id, asked, currency in refusals:
        try:
            amount, case_id = Decimal(asked), int(object_id)
        except (InvalidOperation, TypeError, ValueError):
            continue  # not an amount the service would have asked about: nothing to replay
        if amount.is_finite() and amount > 0:
            rows.append(_Row("refusal", at, -1, case_id, agent_id, amount, currency or ""))
    rows.sort(key=lambda row: (row.at, row.order), reverse=True)
    return rows[:limit], len(rows) > limit


# --- usage as the counters held it ----------------------------------------------------------


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _instant_key(at: datetime, order: int) -> int:
    """(instant, id) as one integer in the same order: integers compare much faster than datetimes."""
    return (((at - _EPOCH) // _MICROSECOND) << 44) + order + 1


class _Series:
    """Amounts in time order with running totals over a base: the sum before an instant in O(log n)."""

    def __init__(self, points: list[tuple[datetime, int, Decimal]], base: Decimal = Decimal(0)):
        keyed = sorted((_instant_key(at, pk), amount) for at, pk, amount in points)
        self.keys = [key for key, _ in keyed]
        self.totals = list(accumulate((amount for _, amount in keyed), initial=base))

    def before(self, at: datetime, order: int) -> Decimal:
        return self.totals[bisect_left(self.keys, _instant_key(at, order))]


class _Usage:
    """Usage per key (a case's or an agent's, in a currency): what came before the cutoff, summed by the
    database, plus a running total of the decisions from the cutoff on."""

    def __init__(self, before_cutoff: dict, points: dict):
        self.series = {key: _Series(points.get(key, []), before_cutoff.get(key, Decimal(0)))
                       for key in {*before_cutoff, *points}}

    def before(self, key, at: datetime, order: int) -> Decimal:
        series = self.series.get(key)
        return series.before(at, order) if series else Decimal(0)


def _case_usage(*, kind, case_ids: list[int], agent_ids, rows: list[_Row], cutoff: datetime) -> _Usage:
    """Decisions of the kind on the replayed cases, by anyone (two queries): summed per case and counted
    currency before the cutoff; from it on, the decision rows and the few decisions of other agents."""
    cases = Decision.objects.filter(case_id__in=case_ids, kind=kind)
    summed = {(case_id, currency or ""): total for case_id, currency, total in
              cases.filter(executed_at__lt=cutoff).values("case_id", "counted_currency").order_by()
              .annotate(total=Sum("counted_amount")).values_list("case_id", "counted_currency", "total")}
    points: dict[tuple[int, str], list] = defaultdict(list)
    for row in rows:
        if row.source == "decision":
            points[(row.case_id, row.counted_currency)].append((row.at, row.order, row.counted))
    for case_id, currency, at, pk, amount in cases.filter(executed_at__gte=cutoff).exclude(
            agent_id__in=agent_ids).values_list("case_id", "counted_currency", "executed_at", "pk", "counted_amount"):
        points[(case_id, currency or "")].append((at, pk, amount))
    return _Usage(summed, points)


def _period_usage(*, kind, agent_ids, rows, grants, cutoff: datetime, tz) -> dict[str, _Usage]:
    """Per period in play, the agents' own standing decisions of the kind (approvals excluded): summed per
    agent and counted currency over the cutoff's bucket up to the cutoff (one query for every period), then
    the decision rows from the cutoff on."""
    in_play = sorted({g.period for g in grants if g.period in PERIOD_LENGTH_ORDER}, key=PERIOD_LENGTH_ORDER.index)
    if not rows or not in_play:
        return {}
    starts = {period: _midnight(periods.bucket_start(period, cutoff, tz), tz) for period in in_play}
    totals = {period: Sum("counted_amount", filter=Q(executed_at__gte=start)) for period, start in starts.items()}
    summed: dict[str, dict] = {period: {} for period in in_play}
    for row in (Decision.objects.filter(agent_id__in=agent_ids, kind=kind, grant__case__isnull=True,
                                        executed_at__gte=min(starts.values()), executed_at__lt=cutoff)
                .values("agent_id", "counted_currency").order_by().annotate(**totals)):
        for period in in_play:
            summed[period][(row["agent_id"], row["counted_currency"] or "")] = row[period] or Decimal(0)
    points: dict[tuple[int, str], list] = defaultdict(list)
    for row in rows:
        if row.source == "decision" and not row.one_off:
            points[(row.agent_id, row.counted_currency)].append((row.at, row.order, row.counted))
    return {period: _Usage(summed[period], points) for period in in_play}


def _midnight(day: date, tz) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _used(question: Question, grants: list[Grant], row: _Row, cutoff: datetime, case_sums: _Usage,
          period_sums: dict[str, _Usage]) -> dict[str, Decimal]:
    """The counters `resolve` reads for these grants, as they stood just before the row."""
    used: dict[str, Decimal] = {}
    for grant in grants:
        if grant.effect != "permit":
            continue
        currency = grant.currency or ""
        used[usage.case_key(case_id=row.case_id, kind_code=question.kind_code, currency=currency)] = (
            case_sums.before((row.case_id, currency), row.at, row.order))
        start = periods.bucket_start(grant.period, row.at, question.tz)
        if start is None:
            continue
        agent = period_sums[grant.period]
        in_bucket = agent.before((row.agent_id, currency), row.at, row.order)
        bucket_starts = _midnight(start, question.tz)
        if bucket_starts > cutoff:  # a later bucket than the cutoff's: only the rows since it count
            in_bucket -= agent.before((row.agent_id, currency), bucket_starts, -1)
        used[usage.period_key(agent_id=row.agent_id, kind_code=question.kind_code, currency=currency,
                              period=grant.period, start=start)] = in_bucket
    return used


# --- exchange rates ---------------------------------------------------------------------------


class _RateBook:
    """Dated rates loaded once; `rates` answers as `selectors.latest_rates` would on the row's day."""

    def __init__(self, rates: list[tuple[str, str, Decimal, date]], tz):
        self.by_pair: dict[tuple[str, str], list[tuple[date, Decimal]]] = defaultdict(list)
        for base, quote, rate, valid_on in rates:
            self.by_pair[(base, quote)].append((valid_on, rate))
        for value in self.by_pair.values():
            value.sort()
        self.tz = tz

    def _latest(self, base: str, quote: str, day: date) -> tuple[date, Decimal] | None:
        found = [point for point in self.by_pair.get((base, quote), ()) if point[0] <= day]
        return found[-1] if found else None

    def rates(self, question: Question, grants: list[Grant]) -> dict[str, tuple[Decimal, date]]:
        if not self.by_pair:
            return {}  # one currency throughout (or no rate stored): nothing to convert with
        out = {}
        day = question.at.astimezone(self.tz).date()
        for target in currencies_needed(question, grants):
            direct = self._latest(question.currency, target, day)
            inverse = self._latest(target, question.currency, day)
            if direct and (not inverse or direct[0] >= inverse[0]):
                out[target] = (direct[1], direct[0])
            elif inverse:
                out[target] = ((Decimal(1) / inverse[1]).quantize(RATE_PLACES), inverse[0])
        return out


def _rate_book(*, rows, grants, until, tz) -> _RateBook:
    """Load the rates between the rows' currencies and the grants' (one query, only when they differ)."""
    row_currencies = {row.currency for row in rows if row.currency}
    grant_currencies = {g.currency for g in grants if g.currency}
    currencies = row_currencies | grant_currencies
    if not row_currencies or len(currencies) < 2:
        return _RateBook([], tz)
    return _RateBook(list(ExchangeRate.objects.filter(base__in=currencies, quote__in=currencies,
                                                      valid_on__lte=until.astimezone(tz).date())
                          .values_list("base", "quote", "rate", "valid_on")), tz)
