"""Calendar buckets for period caps, in the organisation's time zone."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .models import Period

PERIOD_ADJECTIVE = {
    Period.DAY: "today",
    Period.WEEK: "this week",
    Period.MONTH: "this month",
    Period.QUARTER: "this quarter",
}


def bucket_start(period: str, at: datetime, tz: ZoneInfo) -> date | None:
    """Return the first local day of the bucket that contains `at`, or None for no period."""
    day = at.astimezone(tz).date()
    if period == Period.DAY:
        return day
    if period == Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period == Period.MONTH:
        return day.replace(day=1)
    if period == Period.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return None


def next_bucket_start(period: str, start: date) -> date:
    if period == Period.DAY:
        return start + timedelta(days=1)
    if period == Period.WEEK:
        return start + timedelta(days=7)
    months = 1 if period == Period.MONTH else 3
    month_index = start.month - 1 + months
    return date(start.year + month_index // 12, month_index % 12 + 1, 1)


def resets_at(period: str, at: datetime, tz: ZoneInfo) -> datetime | None:
    """Return the instant the bucket containing `at` ends: local midnight, DST-aware."""
    start = bucket_start(period, at, tz)
    if start is None:
        return None
    nxt = next_bucket_start(period, start)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
