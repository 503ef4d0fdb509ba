"""The stakes score: a deterministic, explainable 0-100 number that orders work.

score = category weight + customer value points + amount-at-stake points + age points, capped at
100. Each part comes with a sentence, so the number is never a mystery. Money is compared in the
amount's own units (the organisation's base currency in practice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .models import CaseCategory

CATEGORY_WEIGHT = {
    CaseCategory.CRISIS: 40,
    CaseCategory.HIGH_VALUE: 30,
    CaseCategory.COMPLAINT: 25,
    CaseCategory.BILLING_ERROR: 20,
    CaseCategory.RENEWAL: 20,
    CaseCategory.ONBOARDING: 10,
    CaseCategory.OTHER: 5,
}
# (threshold, points): the first threshold the value reaches wins.
CUSTOMER_VALUE_POINTS = ((Decimal(250_000), 25), (Decimal(50_000), 15), (Decimal(10_000), 8))
AMOUNT_POINTS = ((Decimal(10_000), 20), (Decimal(1_000), 12), (Decimal(100), 5))
AGE_POINTS = ((14, 15), (7, 10), (2, 5))


@dataclass(frozen=True)
class Stakes:
    score: int
    reasons: tuple[str, ...]


def _points(value, table) -> int:
    return next((points for threshold, points in table if value >= threshold), 0)


def stakes_score(
    *, category: str, customer_annual_value: Decimal, amount_at_stake: Decimal, opened_at: datetime, now: datetime
) -> Stakes:
    """Return the score and one reason per part that contributed."""
    category_points = CATEGORY_WEIGHT[CaseCategory(category)]
    value_points = _points(customer_annual_value, CUSTOMER_VALUE_POINTS)
    amount_points = _points(amount_at_stake, AMOUNT_POINTS)
    age_days = max((now - opened_at).days, 0)
    age_points = _points(age_days, AGE_POINTS)
    reasons = [f"{CaseCategory(category).label} moment: +{category_points}"]
    if value_points:
        reasons.append(f"customer worth {customer_annual_value:,.0f} a year: +{value_points}")
    if amount_points:
        reasons.append(f"{amount_at_stake:,.0f} at stake: +{amount_points}")
    if age_points:
        reasons.append(f"open {age_days} days: +{age_points}")
    total = category_points + value_points + amount_points + age_points
    if total > 100:
        reasons.append("capped at 100")
    return Stakes(score=min(total, 100), reasons=tuple(reasons))
