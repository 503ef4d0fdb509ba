"""How far the sealer is behind: events waiting for their chain link, and how long the last ones waited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min
from django.utils import timezone

from h2h_core.models import AuditEvent


@dataclass(frozen=True)
class SealLag:
    pending: int  # events committed (or still in their transaction) without a chain link yet
    oldest_pending_age: float  # seconds since the oldest of them was written (0: none)
    p50: float  # seconds from writing to sealing, over the last `sample` sealed events
    p99: float
    max: float
    sample: int

    def summary(self) -> str:
        pending = (f"{self.pending} entries waiting to be sealed (oldest {self.oldest_pending_age:.1f} s)"
                   if self.pending else "no entries waiting to be sealed")
        if not self.sample:
            return pending
        return (f"{pending}; seal lag over the last {self.sample} entries: p50 {self.p50:.2f} s, "
                f"p99 {self.p99:.2f} s, max {self.max:.2f} s")


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def seal_lag(*, last: int = 1000, now: datetime | None = None) -> SealLag:
    """Measure the sealer's lag: the unsealed events, and sealed_at - occurred_at over the last `last` sealed."""
    now = now or timezone.now()
    # The partial index on unsealed rows keeps this small however long the log is.
    waiting = AuditEvent.objects.filter(seq__isnull=True).aggregate(count=Count("id"), oldest=Min("occurred_at"))
    pairs = (AuditEvent.objects.filter(seq__isnull=False, sealed_at__isnull=False).order_by("-seq")
             .values_list("occurred_at", "sealed_at")[:last])
    lags = sorted(max(0.0, (sealed - occurred).total_seconds()) for occurred, sealed in pairs)
    oldest = waiting["oldest"]
    return SealLag(
        pending=waiting["count"], oldest_pending_age=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        p50=_percentile(lags, 0.5), p99=_percentile(lags, 0.99), max=lags[-1] if lags else 0.0, sample=len(lags),
    )
