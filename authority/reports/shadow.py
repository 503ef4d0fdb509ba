"""Shadow decisions beside what a person then decided: agreement, and the evidence for a promotion.

For each shadow decision the human side is the first Decision of the same kind on the same case
executed after it by someone other than the shadow's agent. The outcome is:

- "agreed": that decision has the same amount and currency;
- "differed": it has another amount (or currency);
- "declined": the case was resolved or closed with no such decision;
- "pending": the case is still open and nobody has decided yet.

The agreement rate is agreed / (agreed + differed + declined): pending ones are left out. Every
function documents its query budget (the outcome is one SQL expression, never a query per row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.db.models import Avg, Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Value

from authority.models import AuthorityKind, Decision, ShadowDecision
from h2h_core.models import Case, CaseStatus

OUTCOMES = ("agreed", "differed", "declined", "pending")
OUTCOME_LABELS = {
    "agreed": "Agreed: same amount",
    "differed": "Differed: another amount",
    "declined": "Declined: resolved with no such decision",
    "pending": "Pending: not decided yet",
}
DONE_STATUSES = (CaseStatus.RESOLVED, CaseStatus.CLOSED)
COMPARISONS_LIMIT = 200
RATE_PLACES = Decimal("0.0001")


def _human_decisions() -> QuerySet[Decision]:
    """The human side of the shadow decision in OuterRef: first decision of its kind on its case after
    it, by someone else."""
    return (Decision.objects.filter(case_id=OuterRef("case_id"), kind_id=OuterRef("kind_id"),
                                    executed_at__gte=OuterRef("created_at"))
            .exclude(agent_id=OuterRef("agent_id"))
            .order_by("executed_at", "id"))


def with_outcome(qs: QuerySet[ShadowDecision]) -> QuerySet[ShadowDecision]:
    """Annotate each shadow decision with `human_id`, `human_amount`, `human_currency` and `outcome`."""
    human = _human_decisions()
    return qs.annotate(
        human_id=Subquery(human.values("pk")[:1]),
        human_amount=Subquery(human.values("amount")[:1]),
        human_currency=Subquery(human.values("currency")[:1]),
    ).annotate(outcome=models.Case(
        models.When(Q(human_id__isnull=False, human_amount=F("amount"), human_currency=F("currency")),
                    then=Value("agreed")),
        models.When(human_id__isnull=False, then=Value("differed")),
        models.When(case__status__in=DONE_STATUSES, then=Value("declined")),
        default=Value("pending"),
        output_field=models.CharField(),
    ))


def _shadow_decisions(*, agent_ids=None, kind_id: int | None = None, kind_ids=None,
                      since: datetime | None = None) -> QuerySet[ShadowDecision]:
    qs = ShadowDecision.objects.all()
    if agent_ids is not None:
        qs = qs.filter(agent_id__in=list(agent_ids))
    if kind_id is not None:
        qs = qs.filter(kind_id=kind_id)
    if kind_ids is not None:
        qs = qs.filter(kind_id__in=list(kind_ids))
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    return qs


@dataclass(frozen=True)
class Agreement:
    """Counts of outcomes and the agreement rate (None until something was decided)."""

    agreed: int = 0
    differed: int = 0
    declined: int = 0
    pending: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None

    @property
    def total(self) -> int:
        return self.agreed + self.differed + self.declined + self.pending

    @property
    def decided(self) -> int:
        return self.agreed + self.differed + self.declined

    @property
    def rate(self) -> Decimal | None:
        """agreed / (agreed + differed + declined), as a fraction to four places."""
        if not self.decided:
            return None
        return (Decimal(self.agreed) / Decimal(self.decided)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)

    @property
    def rate_percent(self) -> int | None:
        rate = self.rate
        return None if rate is None else int((rate * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def as_dict(self) -> dict:
        return {"agreed": self.agreed, "differed": self.differed, "declined": self.declined,
                "pending": self.pending, "total": self.total, "decided": self.decided, "rate": self.rate,
                "rate_percent": self.rate_percent}


def _counts() -> dict:
    return {outcome: Count("pk", filter=Q(outcome=outcome)) for outcome in OUTCOMES}


@dataclass(frozen=True)
class AgreementRow:
    agent_id: int
    kind_id: int
    agreement: Agreement


def agreement_by_agent_and_kind(*, agent_ids=None, kind_id: int | None = None, kind_ids=None,
                                since: datetime | None = None) -> list[AgreementRow]:
    """Return the agreement of each (agent, kind) that recorded shadow decisions. One query."""
    rows = (with_outcome(_shadow_decisions(agent_ids=agent_ids, kind_id=kind_id, kind_ids=kind_ids, since=since))
            .values("agent_id", "kind_id")
            .annotate(**_counts(), first_at=Min("created_at"), last_at=Max("created_at"))
            .order_by("agent_id", "kind_id"))
    return [AgreementRow(agent_id=row["agent_id"], kind_id=row["kind_id"],
                         agreement=Agreement(**{key: row[key] for key in (*OUTCOMES, "first_at", "last_at")}))
            for row in rows]


def shadow_agreement(*, agent_id: int, kind_id: int | None = None, since: datetime | None = None) -> dict:
    """Return one agent's outcome counts and agreement rate (of one kind, or all). One query."""
    totals = with_outcome(_shadow_decisions(agent_ids=[agent_id], kind_id=kind_id, since=since)).aggregate(
        **_counts(), first_at=Min("created_at"), last_at=Max("created_at"))
    agreement = Agreement(**totals)
    return {**agreement.as_dict(), "first_at": agreement.first_at, "last_at": agreement.last_at}


@dataclass(frozen=True)
class ShadowComparison:
    """One shadow decision beside the human decision it is compared with (None: nobody decided)."""

    shadow: ShadowDecision
    human: Decision | None
    outcome: str

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS[self.outcome]


def shadow_comparisons(*, agent_ids=None, kind_id: int | None = None, since: datetime | None = None,
                       limit: int = COMPARISONS_LIMIT) -> list[ShadowComparison]:
    """Return the newest shadow decisions (at most `limit`) with the human decision beside each.

    Two queries whatever the number of rows: the shadow decisions with their outcome, case,
    customer, agent, kind and grant; then the human decisions they name, with their agents.
    """
    shadows = list(
        with_outcome(_shadow_decisions(agent_ids=agent_ids, kind_id=kind_id, since=since))
        .select_related("case__customer", "agent", "kind", "grant")
        .order_by("-created_at", "-id")[:limit]
    )
    human_ids = {shadow.human_id for shadow in shadows if shadow.human_id}
    humans = ({decision.pk: decision for decision in Decision.objects.filter(pk__in=human_ids)
               .select_related("agent")} if human_ids else {})
    return [ShadowComparison(shadow=shadow, human=humans.get(shadow.human_id), outcome=shadow.outcome)
            for shadow in shadows]


def ai_grant_evidence(*, agent, kind: AuthorityKind) -> dict:
    """Return the evidence for promoting `agent` to live authority of `kind` (or demoting it).

    - agreement: its shadow decisions of the kind against what people then decided (counts, rate);
    - reversals: its executed decisions of the kind, and how many were reversed since;
    - CSAT: the mean customer rating (and how many ratings) of the cases where it decided the kind
      or recorded a shadow decision of it;
    - period: the first and last of those shadow and executed decisions.

    Three queries: agreement, decisions, ratings.
    """
    return ai_grant_evidence_many([(agent, kind)])[agent.pk, kind.pk]


def ai_grant_evidence_many(pairs) -> dict[tuple[int, int], dict]:
    """Return {(agent id, kind id): evidence} for several (agent, kind) pairs, as `ai_grant_evidence`.

    Three queries whatever the number of pairs (none without pairs): agreement, decisions, ratings.
    """
    pairs = list(dict.fromkeys((agent.pk, kind.pk, kind.code) for agent, kind in pairs))
    if not pairs:
        return {}
    agent_ids = sorted({agent_id for agent_id, _, _ in pairs})
    kind_ids = sorted({kind_id for _, kind_id, _ in pairs})
    agreements = {(row.agent_id, row.kind_id): row.agreement
                  for row in agreement_by_agent_and_kind(agent_ids=agent_ids, kind_ids=kind_ids)}
    decisions = Decision.objects.filter(agent_id__in=agent_ids, kind_id__in=kind_ids)
    executed = {
        (row["agent_id"], row["kind_id"]): row
        for row in decisions.values("agent_id", "kind_id").annotate(
            count=Count("pk"), reversed=Count("pk", filter=Q(reversed_at__isnull=False)),
            first_at=Min("executed_at"), last_at=Max("executed_at")).order_by("agent_id", "kind_id")
    }
    shadows = ShadowDecision.objects.filter(agent_id__in=agent_ids, kind_id__in=kind_ids)
    ratings = {}
    for index, (agent_id, kind_id, _) in enumerate(pairs):
        touched = (Exists(Decision.objects.filter(case_id=OuterRef("pk"), agent_id=agent_id, kind_id=kind_id))
                   | Exists(ShadowDecision.objects.filter(case_id=OuterRef("pk"), agent_id=agent_id,
                                                          kind_id=kind_id)))
        ratings[f"mean_{index}"] = Avg("rating", filter=touched)
        ratings[f"count_{index}"] = Count("pk", filter=touched)
    rated = (Case.objects.filter(Q(pk__in=decisions.values("case_id")) | Q(pk__in=shadows.values("case_id")),
                                 rating__isnull=False).aggregate(**ratings))
    evidence = {}
    for index, (agent_id, kind_id, kind_code) in enumerate(pairs):
        agreement = agreements.get((agent_id, kind_id), Agreement())
        done = executed.get((agent_id, kind_id), {"count": 0, "reversed": 0, "first_at": None, "last_at": None})
        moments = [at for at in (agreement.first_at, agreement.last_at, done["first_at"], done["last_at"])
                   if at is not None]
        mean = rated[f"mean_{index}"]
        evidence[agent_id, kind_id] = {
            "agent_id": agent_id,
            "kind": kind_code,
            "agreement": {**agreement.as_dict(), "first_at": agreement.first_at, "last_at": agreement.last_at},
            "reversals": {
                "decisions": done["count"],
                "reversed": done["reversed"],
                "rate": (Decimal(done["reversed"]) / Decimal(done["count"])).quantize(RATE_PLACES)
                if done["count"] else None,
            },
            "csat": {
                "mean": (Decimal(str(mean)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                         if mean is not None else None),
                "count": rated[f"count_{index}"],
            },
            "period": {"from": min(moments, default=None), "to": max(moments, default=None)},
        }
    return evidence
