"""Hand-offs from AI agents to people, for managers: how many, where (moment that matters, reason),
and how long a person took to pick them up.

Time to pickup is from the hand-off's `created_at` to its `picked_up_at` (recorded when the receiver
picks it up, or when a person claims an unowned one from the queue). The median is the usual one
(the mean of the two middle values for an even count); the p90 is the nearest-rank percentile (the
smallest value at least 90 % of pickups are at or below). Hand-offs not picked up yet count as
waiting and are left out of the times. Three queries, whatever the number of hand-offs.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet

from h2h_core.models import CaseCategory, HandOff, HandOffReason


@dataclass(frozen=True)
class PickupTimes:
    """Seconds from hand-off to pickup: how many were picked up, the median and the p90."""

    picked_up: int = 0
    median_seconds: float | None = None
    p90_seconds: float | None = None

    @property
    def median(self) -> timedelta | None:
        return timedelta(seconds=self.median_seconds) if self.median_seconds is not None else None

    @property
    def p90(self) -> timedelta | None:
        return timedelta(seconds=self.p90_seconds) if self.p90_seconds is not None else None


@dataclass(frozen=True)
class HandOffRow:
    key: str
    label: str
    total: int
    waiting: int
    pickup: PickupTimes = field(default_factory=PickupTimes)


@dataclass(frozen=True)
class HandOffMetrics:
    total: int
    waiting: int
    pickup: PickupTimes
    by_category: list[HandOffRow]
    by_reason: list[HandOffRow]


def pickup_times(seconds: Iterable[float]) -> PickupTimes:
    """Return the count, median and nearest-rank p90 of these durations in seconds."""
    values = sorted(seconds)
    if not values:
        return PickupTimes()
    p90 = values[max(math.ceil(0.9 * len(values)) - 1, 0)]
    return PickupTimes(picked_up=len(values), median_seconds=statistics.median(values), p90_seconds=p90)


def hand_offs_in_scope(*, team_ids: Iterable[int] | None = None, since: datetime | None = None,
                       until: datetime | None = None) -> QuerySet[HandOff]:
    """Hand-offs of cases of these teams (None: every team), created in [since, until)."""
    hand_offs = HandOff.objects.all()
    if team_ids is not None:
        hand_offs = hand_offs.filter(case__team_id__in=list(team_ids))
    if since is not None:
        hand_offs = hand_offs.filter(created_at__gte=since)
    if until is not None:
        hand_offs = hand_offs.filter(created_at__lt=until)
    return hand_offs


def hand_off_metrics(*, team_ids: Iterable[int] | None = None, since: datetime | None = None,
                     until: datetime | None = None) -> HandOffMetrics:
    """Hand-offs per moment that matters and per reason, and the time to human pickup (three queries)."""
    scope = hand_offs_in_scope(team_ids=team_ids, since=since, until=until)
    counts = {"total": Count("pk"), "waiting": Count("pk", filter=Q(picked_up_at__isnull=True))}
    per_category = {row["case__category"]: row for row in scope.order_by().values("case__category").annotate(**counts)}
    per_reason = {row["reason"]: row for row in scope.order_by().values("reason").annotate(**counts)}
    seconds_by_category: dict[str, list[float]] = defaultdict(list)
    seconds_by_reason: dict[str, list[float]] = defaultdict(list)
    for category, reason, created, picked in scope.filter(picked_up_at__isnull=False).values_list(
            "case__category", "reason", "created_at", "picked_up_at"):
        seconds = (picked - created).total_seconds()
        seconds_by_category[category].append(seconds)
        seconds_by_reason[reason].append(seconds)

    def rows(choices, counted, seconds) -> list[HandOffRow]:
        return [HandOffRow(key=value, label=label, total=counted[value]["total"], waiting=counted[value]["waiting"],
                           pickup=pickup_times(seconds[value]))
                for value, label in choices if value in counted]

    return HandOffMetrics(
        total=sum(row["total"] for row in per_category.values()),
        waiting=sum(row["waiting"] for row in per_category.values()),
        pickup=pickup_times(s for values in seconds_by_category.values() for s in values),
        by_category=rows(CaseCategory.choices, per_category, seconds_by_category),
        by_reason=rows(HandOffReason.choices, per_reason, seconds_by_reason),
    )
