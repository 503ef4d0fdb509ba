"""Consume usage counters exactly: one conditional UPDATE per counter, in key order."""

from __future__ import annotations

from django.db.models import F

from authority.models import UsageCounter
from authority.policy.verdict import Consumption


def usage_consume(*, consumptions: list[Consumption], kind_id: int, agent_id: int | None, case_id: int | None) -> bool:
    """Raise every counter by its amount, never past its cap. Return False if one would overflow.

    Must run inside the caller's transaction: on False the caller rolls back, undoing any counter
    already raised. Counters are created first (INSERT … ON CONFLICT DO NOTHING) and updated in
    key order, the fixed lock order that keeps concurrent decisions free of deadlocks.
    """
    ordered = sorted(consumptions, key=lambda c: c.key)
    UsageCounter.objects.bulk_create(
        [
            UsageCounter(
                key=c.key,
                scope=c.scope,
                kind_id=kind_id,
                agent_id=agent_id if c.scope == UsageCounter.Scope.PERIOD else None,
                case_id=case_id if c.scope == UsageCounter.Scope.CASE else None,
                grant_id=c.grant_id,
                period=c.period,
                bucket_start=c.bucket_start,
                currency=c.currency,
            )
            for c in ordered
        ],
        ignore_conflicts=True,
    )
    for consumption in ordered:
        counters = UsageCounter.objects.filter(key=consumption.key)
        if consumption.cap is not None:
            counters = counters.filter(used__lte=consumption.cap - consumption.amount)
        if counters.update(used=F("used") + consumption.amount) != 1:
            return False
    return True
