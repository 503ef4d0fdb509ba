"""Service levels and routing: due times from category and stakes, and the team queue per category."""

from __future__ import annotations

from datetime import datetime, timedelta

from .models import CaseCategory

# Hours to first response and to resolution, by moment that matters.
FIRST_RESPONSE_HOURS = {
    CaseCategory.CRISIS: 1,
    CaseCategory.HIGH_VALUE: 2,
    CaseCategory.COMPLAINT: 4,
    CaseCategory.BILLING_ERROR: 4,
    CaseCategory.RENEWAL: 8,
    CaseCategory.ONBOARDING: 8,
    CaseCategory.OTHER: 24,
}
RESOLUTION_HOURS = {
    CaseCategory.CRISIS: 24,
    CaseCategory.HIGH_VALUE: 48,
    CaseCategory.COMPLAINT: 72,
    CaseCategory.BILLING_ERROR: 72,
    CaseCategory.RENEWAL: 96,
    CaseCategory.ONBOARDING: 120,
    CaseCategory.OTHER: 120,
}
# High stakes halve both targets.
HIGH_STAKES = 70

TEAM_FOR_CATEGORY = {
    CaseCategory.BILLING_ERROR: "billing",
    CaseCategory.ONBOARDING: "onboarding",
    CaseCategory.RENEWAL: "retention",
    CaseCategory.COMPLAINT: "retention",
    CaseCategory.CRISIS: "retention",
    CaseCategory.HIGH_VALUE: "retention",
    CaseCategory.OTHER: "retention",
}


def due_times(*, category: str, stakes: int, opened_at: datetime) -> tuple[datetime, datetime]:
    """Return (first response due, resolution due)."""
    factor = 0.5 if stakes >= HIGH_STAKES else 1.0
    first = opened_at + timedelta(hours=FIRST_RESPONSE_HOURS[CaseCategory(category)] * factor)
    resolution = opened_at + timedelta(hours=RESOLUTION_HOURS[CaseCategory(category)] * factor)
    return first, resolution


def team_slug_for(category: str) -> str:
    return TEAM_FOR_CATEGORY[CaseCategory(category)]
