"""Period caps roll over at local midnight in the organisation's time zone, DST days included."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from authority import periods, policy, usage
from authority.models import Period
from tests.factories import GrantFactory, kind, loaded_case, set_usage

BERLIN = ZoneInfo("Europe/Berlin")
ONE_MICROSECOND = timedelta(microseconds=1)

# Each row: a bucket boundary written in UTC (so the DST offsets are spelled out, not derived),
# the bucket that ends there, the bucket that starts there, and when that new bucket ends.
# Summer time in 2026 runs from 29 March 01:00 UTC to 25 October 01:00 UTC.
ROLLOVERS = [
    pytest.param(Period.DAY, "2026-03-28T23:00", date(2026, 3, 28), date(2026, 3, 29), "2026-03-29T22:00",
                 id="day-into-the-23-hour-spring-day"),
    pytest.param(Period.DAY, "2026-03-29T22:00", date(2026, 3, 29), date(2026, 3, 30), "2026-03-30T22:00",
                 id="day-out-of-the-23-hour-spring-day"),
    pytest.param(Period.DAY, "2026-10-24T22:00", date(2026, 10, 24), date(2026, 10, 25), "2026-10-25T23:00",
                 id="day-into-the-25-hour-autumn-day"),
    pytest.param(Period.DAY, "2026-10-25T23:00", date(2026, 10, 25), date(2026, 10, 26), "2026-10-26T23:00",
                 id="day-out-of-the-25-hour-autumn-day"),
    pytest.param(Period.WEEK, "2026-03-29T22:00", date(2026, 3, 23), date(2026, 3, 30), "2026-04-05T22:00",
                 id="week-ending-on-the-spring-sunday"),
    pytest.param(Period.WEEK, "2026-10-25T23:00", date(2026, 10, 19), date(2026, 10, 26), "2026-11-01T23:00",
                 id="week-ending-on-the-autumn-sunday"),
    pytest.param(Period.MONTH, "2026-02-28T23:00", date(2026, 2, 1), date(2026, 3, 1), "2026-03-31T22:00",
                 id="month-containing-the-spring-change"),
    pytest.param(Period.MONTH, "2026-03-31T22:00", date(2026, 3, 1), date(2026, 4, 1), "2026-04-30T22:00",
                 id="month-after-the-spring-change"),
    pytest.param(Period.MONTH, "2026-09-30T22:00", date(2026, 9, 1), date(2026, 10, 1), "2026-10-31T23:00",
                 id="month-containing-the-autumn-change"),
    pytest.param(Period.MONTH, "2026-10-31T23:00", date(2026, 10, 1), date(2026, 11, 1), "2026-11-30T23:00",
                 id="month-after-the-autumn-change"),
    pytest.param(Period.QUARTER, "2025-12-31T23:00", date(2025, 10, 1), date(2026, 1, 1), "2026-03-31T22:00",
                 id="quarter-containing-the-spring-change"),
    pytest.param(Period.QUARTER, "2026-03-31T22:00", date(2026, 1, 1), date(2026, 4, 1), "2026-06-30T22:00",
                 id="quarter-after-the-spring-change"),
    pytest.param(Period.QUARTER, "2026-06-30T22:00", date(2026, 4, 1), date(2026, 7, 1), "2026-09-30T22:00",
                 id="quarter-before-the-autumn-change"),
    pytest.param(Period.QUARTER, "2026-09-30T22:00", date(2026, 7, 1), date(2026, 10, 1), "2026-12-31T23:00",
                 id="quarter-containing-the-autumn-change"),
]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- The calendar itself ------------------------------------------------------------------------


@pytest.mark.parametrize(("period", "boundary", "old_start", "new_start", "new_end"), ROLLOVERS)
def test_buckets_change_at_local_midnight(period, boundary, old_start, new_start, new_end):
    # given a bucket boundary that is local midnight in Europe/Berlin
    boundary = utc(boundary)
    assert boundary.astimezone(BERLIN).time() == time(0)
    # when the buckets just before and at the boundary are computed
    before = periods.bucket_start(period, boundary - ONE_MICROSECOND, BERLIN)
    at = periods.bucket_start(period, boundary, BERLIN)
    # then the old bucket runs up to the boundary and the new one from it to the next local midnight
    assert (before, at) == (old_start, new_start)
    assert periods.resets_at(period, boundary - ONE_MICROSECOND, BERLIN) == boundary
    assert periods.resets_at(period, boundary, BERLIN) == utc(new_end)
    assert utc(new_end).astimezone(BERLIN).time() == time(0)


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        pytest.param(date(2026, 3, 29), 23, id="spring-day-has-23-hours"),
        pytest.param(date(2026, 10, 25), 25, id="autumn-day-has-25-hours"),
        pytest.param(date(2026, 5, 14), 24, id="ordinary-day-has-24-hours"),
    ],
)
def test_a_day_bucket_lasts_from_local_midnight_to_local_midnight(day, hours):
    # given an instant in the small hours of a day (after any DST jump)
    instant = datetime(day.year, day.month, day.day, 4, 0, tzinfo=BERLIN)
    # when its day bucket is computed
    start = periods.bucket_start(Period.DAY, instant, BERLIN)
    ends = periods.resets_at(Period.DAY, instant, BERLIN)
    # then the bucket is the local calendar day, of its real length
    begins = datetime(start.year, start.month, start.day, tzinfo=BERLIN)
    assert start == day
    assert (ends.astimezone(UTC) - begins.astimezone(UTC)) == timedelta(hours=hours)


def test_no_period_has_no_bucket():
    # given the "no period" setting, when buckets are computed, then there is none and nothing resets
    assert periods.bucket_start(Period.NONE, datetime(2026, 5, 14, tzinfo=UTC), BERLIN) is None
    assert periods.resets_at(Period.NONE, datetime(2026, 5, 14, tzinfo=UTC), BERLIN) is None


@pytest.mark.parametrize(
    ("period", "instant", "start"),
    [
        pytest.param(Period.WEEK, datetime(2026, 5, 10, 23, 59, tzinfo=BERLIN), date(2026, 5, 4),
                     id="sunday-night-is-the-old-week"),
        pytest.param(Period.WEEK, datetime(2026, 5, 11, 0, 0, tzinfo=BERLIN), date(2026, 5, 11),
                     id="monday-midnight-is-the-new-week"),
        pytest.param(Period.WEEK, datetime(2026, 12, 31, 23, 0, tzinfo=UTC), date(2026, 12, 28),
                     id="week-across-new-year"),
        pytest.param(Period.QUARTER, datetime(2026, 12, 31, 22, 59, tzinfo=UTC), date(2026, 10, 1),
                     id="quarter-before-local-new-year"),
        pytest.param(Period.MONTH, datetime(2026, 4, 30, 22, 30, tzinfo=UTC), date(2026, 5, 1),
                     id="month-by-local-date-not-utc-date"),
    ],
)
def test_weeks_start_on_monday_and_the_local_date_decides(period, instant, start):
    # given an instant, when its bucket is computed, then it starts on the local date expected
    assert periods.bucket_start(period, instant, BERLIN) == start


# --- Through evaluate: usage in the previous bucket does not count -------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("period", "boundary", "old_start", "new_start", "new_end"), ROLLOVERS)
def test_period_usage_rolls_over_at_local_midnight(alice, case_owned_by_alice, period, boundary, old_start,
                                                   new_start, new_end):
    # given 1,000 a period, fully used in the bucket that ends at the boundary
    GrantFactory(subject_user=alice, per_case_limit=None, period=period, period_limit=Decimal("1000"))
    refund = kind("refund")
    old_key = usage.period_key(agent_id=alice.pk, kind_code="refund", currency="EUR", period=period, start=old_start)
    set_usage(old_key, "1000", kind_obj=refund, agent=alice, period=period, bucket_start=old_start, currency="EUR")
    case = loaded_case(case_owned_by_alice)
    boundary = utc(boundary)

    def ask(at):
        return policy.evaluate(agent=alice, kind=refund, amount="1000", currency="EUR", case=case, at=at)

    # when alice asks for the whole cap just before and exactly at local midnight
    before, after = ask(boundary - ONE_MICROSECOND), ask(boundary)
    # then before it the cap is spent and resets at the boundary; from it the new bucket is empty
    assert not before.allowed
    assert before.period_used == Decimal("1000") and before.period_resets_at == boundary
    assert after.allowed, after.reasons
    assert after.period_used == Decimal("0") and after.period_headroom == Decimal("1000")
    assert after.period_resets_at == utc(new_end)
    assert after.period_resets_at.astimezone(BERLIN).time() == time(0)
    period_consumption = next(c for c in after.consumptions if c.scope == "period")
    assert period_consumption.bucket_start == new_start
