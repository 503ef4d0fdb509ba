"""The next-best action: what resolved most similar cases, asked of the policy engine for this agent.

Whether the agent may do it now is the verdict of `authority.policy.evaluate`, the same question
the decision form's review and `decision_execute` ask; nothing here executes anything.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError

from authority.models import AuthorityKind
from authority.policy import evaluate
from authority.policy.verdict import Verdict
from authority.quantities import allowed_places, format_quantity
from h2h_core.models import Case

from .similar import SimilarCase


@dataclass(frozen=True)
class NextAction:
    kind: AuthorityKind
    amount: Decimal
    currency: str
    resolved: int
    out_of: int
    verdict: Verdict

    @property
    def quantity(self) -> str:
        return format_quantity(self.amount, unit=self.kind.unit, currency=self.currency)

    @property
    def evidence(self) -> str:
        return f"A {self.quantity} {self.kind.name.lower()} resolved {self.resolved} of {self.out_of} similar cases"

    @property
    def answer(self) -> str:
        """Say whether the agent may do it now and, if not, the one hop that would let them."""
        verdict = self.verdict
        if verdict.allowed:
            return "you can do it now"
        if verdict.over_limit:
            return f"over your authority: ask {', '.join(verdict.approvers)} (one hop)"
        if verdict.suspended:
            return "your authority for it is suspended"
        return "over your authority, and nobody can approve it: " + (verdict.no_approver or " ".join(verdict.reasons))


def _typical(decisions) -> tuple[Decimal, str]:
    """Return the median amount of the decisions in their most common currency."""
    currency = Counter(d.currency for d in decisions).most_common(1)[0][0]
    median = statistics.median(d.amount for d in decisions if d.currency == currency)
    return Decimal(median), currency


def next_best_action(*, agent, case: Case, similar: list[SimilarCase]) -> NextAction | None:
    """Return the decision kind that resolved most of the similar cases, at its typical amount, or None.

    A kind counts once per similar case that has it; ties go to the kind of the most similar case.
    """
    resolved_by: Counter = Counter()
    decisions_of: dict[int, list] = {}
    first_seen: dict[int, int] = {}
    kinds: dict[int, AuthorityKind] = {}
    for position, item in enumerate(similar):
        for decision in item.decisions:
            kinds[decision.kind_id] = decision.kind
            decisions_of.setdefault(decision.kind_id, []).append(decision)
            first_seen.setdefault(decision.kind_id, position)
        resolved_by.update({d.kind_id for d in item.decisions})
    if not resolved_by:
        return None
    kind_id = min(resolved_by, key=lambda k: (-resolved_by[k], first_seen[k]))
    kind = kinds[kind_id]
    amount, currency = _typical(decisions_of[kind_id])
    currency = currency if kind.is_money else ""
    amount = amount.quantize(Decimal(1).scaleb(-allowed_places(unit=kind.unit, currency=currency or None)))
    try:
        verdict = evaluate(agent=agent, kind=kind, amount=amount, currency=currency or None, case=case)
    except ValidationError:
        # A median that is no valid amount for the kind (rounded to zero, say) suggests nothing.
        return None
    return NextAction(kind=kind, amount=amount, currency=currency, resolved=resolved_by[kind_id],
                      out_of=len(similar), verdict=verdict)
