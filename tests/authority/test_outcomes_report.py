"""Outcomes by moment that matters and resolution path: every path and figure on hand-made cases, in two queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authority.models import RequestStatus
from authority.reports.outcomes import (
    AI,
    APPROVAL,
    HAND_OFF,
    NO_DECISION,
    OWN,
    PATHS,
    csv_rows,
    outcomes,
    resolved_cases,
)
from h2h_core.models import CaseCategory, CaseEvent, CaseStatus, HandOff, HandOffReason
from tests.consoles.factories import DecisionFactory, RequestFactory
from tests.factories import CaseFactory, CustomerFactory, ai_agent, kind

pytestmark = pytest.mark.django_db


def resolved(owner, team, *, category=CaseCategory.COMPLAINT, took=timedelta(hours=10), ago=timedelta(days=5),
             now, **fields):
    """A case of `team` resolved `ago` before `now`, `took` after it was opened."""
    return CaseFactory(owner=owner, team=team, category=category, status=CaseStatus.RESOLVED,
                       resolved_at=now - ago, opened_at=now - ago - took, **fields)


def hand_off(bot, case, *, to):
    return HandOff.objects.create(case=case, from_agent=bot, to_user=to, reason=HandOffReason.OVER_AUTHORITY,
                                  reason_text="over its authority", created_at=case.opened_at)


def approved_decision(case, agent, *, status=RequestStatus.APPROVED):
    request = RequestFactory(case=case, requester=agent, status=status)
    return DecisionFactory(case=case, agent=agent, request=request, executed_at=case.resolved_at - timedelta(hours=1))


def paths(**filters):
    return dict(resolved_cases(team_ids=None, **filters).values_list("subject", "path"))


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def bot(retention):
    return ai_agent(retention, "ava-bot").user


def test_each_resolution_path_is_told_apart_by_its_precedence(alice, retention, bot, now):
    # given one case per path, and cases where two paths' conditions meet
    own = resolved(alice, retention, subject="own", now=now)
    DecisionFactory(case=own, agent=alice, executed_at=now - timedelta(days=6))
    approval = resolved(alice, retention, subject="approval", now=now)
    DecisionFactory(case=approval, agent=alice, executed_at=now - timedelta(days=6))
    approved_decision(approval, alice)
    voided_after_use = resolved(alice, retention, subject="voided after use", now=now)
    approved_decision(voided_after_use, alice, status=RequestStatus.VOIDED)
    unused = resolved(alice, retention, subject="request rejected", now=now)
    RequestFactory(case=unused, requester=alice, status=RequestStatus.REJECTED)
    DecisionFactory(case=unused, agent=alice, executed_at=now - timedelta(days=6))
    by_ai = resolved(bot, retention, subject="ai", now=now)
    DecisionFactory(case=by_ai, agent=bot, by_ai_agent=True, executed_at=now - timedelta(days=6))
    ai_with_approval = resolved(bot, retention, subject="ai with approval", now=now)
    approved_decision(ai_with_approval, bot)
    handed = resolved(alice, retention, subject="hand-off", now=now)
    hand_off(bot, handed, to=alice)
    approved_decision(handed, alice)
    resolved(alice, retention, subject="nothing", now=now)
    handed_back = resolved(bot, retention, subject="handed off, back with the AI", now=now)
    hand_off(bot, handed_back, to=alice)
    # then each counts once, on the first path that applies
    assert paths(since=now - timedelta(days=90), until=now) == {
        "own": OWN, "approval": APPROVAL, "voided after use": APPROVAL, "request rejected": OWN, "ai": AI,
        "ai with approval": AI, "hand-off": HAND_OFF, "nothing": NO_DECISION,
        "handed off, back with the AI": AI,
    }
    report = outcomes(now=now)
    assert {path: report.by_path[path].figures.cases for path, _ in PATHS} == {
        OWN: 2, APPROVAL: 2, AI: 3, HAND_OFF: 1, NO_DECISION: 1}
    assert report.total.figures.cases == 9 and report.by_category[CaseCategory.COMPLAINT].figures.cases == 9


def test_csat_is_the_mean_rating_of_the_rated_cases_per_cell_and_in_the_totals(alice, retention, bot, now):
    resolved(alice, retention, rating=5, now=now)
    resolved(alice, retention, rating=2, now=now)
    resolved(alice, retention, now=now)  # not rated
    resolved(bot, retention, rating=4, now=now)
    resolved(alice, retention, category=CaseCategory.RENEWAL, rating=1, now=now)
    report = outcomes(now=now)
    own_complaints = report.cells[(CaseCategory.COMPLAINT, NO_DECISION)].figures
    assert (own_complaints.cases, own_complaints.rated, own_complaints.rating) == (3, 2, 3.5)
    assert report.cells[(CaseCategory.COMPLAINT, AI)].figures.rating == 4
    assert report.by_category[CaseCategory.COMPLAINT].figures.rating == round(11 / 3, 2)
    assert report.by_path[NO_DECISION].figures.rating == round(8 / 3, 2)
    assert (report.total.figures.rated, report.total.figures.rating) == (4, 3.0)
    assert report.cells[(CaseCategory.CRISIS, OWN)].figures.rating is None


def test_the_reopen_rate_counts_cases_reopened_at_least_once(alice, retention, now):
    reopened_twice = resolved(alice, retention, now=now)
    for days in (3, 2):
        CaseEvent.objects.create(case=reopened_twice, kind=CaseEvent.Kind.REOPENED, at=now - timedelta(days=days))
    for _ in range(2):
        noted = resolved(alice, retention, now=now)
        CaseEvent.objects.create(case=noted, kind=CaseEvent.Kind.NOTE, at=now - timedelta(days=2))
    resolved(alice, retention, now=now)
    figures = outcomes(now=now).total.figures
    assert (figures.reopened, figures.reopen_rate) == (1, 25.0)


def test_time_to_resolution_is_the_median_per_cell_category_path_and_overall(alice, retention, bot, now):
    # given complaints resolved in 1, 2, 3 and 10 hours, a renewal in 20 hours, and the AI's complaint in 4
    for hours in (1, 2, 3, 10):
        resolved(alice, retention, took=timedelta(hours=hours), now=now)
    resolved(alice, retention, category=CaseCategory.RENEWAL, took=timedelta(hours=20), now=now)
    resolved(bot, retention, took=timedelta(hours=4), now=now)
    report = outcomes(now=now)
    # then an even count takes the mean of the two middle values, an odd one the middle value
    assert report.cells[(CaseCategory.COMPLAINT, NO_DECISION)].figures.median_hours == 2.5
    assert report.cells[(CaseCategory.COMPLAINT, AI)].figures.median_hours == 4
    assert report.by_category[CaseCategory.COMPLAINT].figures.median_hours == 3  # 1 2 3 4 10
    assert report.by_path[NO_DECISION].figures.median_hours == 3  # 1 2 3 10 20
    assert report.total.figures.median_hours == 3.5  # 1 2 3 4 10 20
    assert report.cells[(CaseCategory.CRISIS, OWN)].figures.median_time is None


def test_an_even_number_of_cases_takes_the_mean_of_both_middle_values(alice, retention, now):
    for hours in (7, 1, 5, 2):
        resolved(alice, retention, took=timedelta(hours=hours), now=now)
    assert outcomes(now=now).total.figures.median_hours == 3.5


def test_the_retention_proxy_counts_a_new_case_or_a_renewal_within_90_days(alice, retention, now):
    # given five customers whose cases were resolved 100 days ago (the window has closed for every one)
    ago = timedelta(days=100)
    came_back = resolved(alice, retention, ago=ago, now=now)
    CaseFactory(customer=came_back.customer, opened_at=now - timedelta(days=40))
    too_late = resolved(alice, retention, ago=ago, now=now)
    CaseFactory(customer=too_late.customer, opened_at=now - timedelta(days=5))  # 95 days after
    renewed = resolved(alice, retention, ago=ago, now=now)
    DecisionFactory(case=renewed, agent=alice, kind=kind("contract_extension"), executed_at=now - timedelta(days=50))
    reversed_renewal = resolved(alice, retention, ago=ago, now=now)
    DecisionFactory(case=reversed_renewal, agent=alice, kind=kind("contract_extension"),
                    executed_at=now - timedelta(days=50), reversed_at=now - timedelta(days=49))
    refunded_later = resolved(alice, retention, ago=ago, now=now)
    DecisionFactory(case=refunded_later, agent=alice, executed_at=now - timedelta(days=50))
    before = CustomerFactory()
    resolved(alice, retention, ago=ago, now=now, customer=before)
    CaseFactory(customer=before, opened_at=now - timedelta(days=120))  # before the resolution
    # when the period holds them
    figures = outcomes(since=now - timedelta(days=180), until=now).total.figures
    # then the customer who opened a case and the one who renewed came back: 2 of 6
    assert (figures.cases, figures.retained, figures.retention_rate) == (6, 2, 33.3)


def test_the_period_and_the_teams_choose_the_cases(alice, carol, retention, billing, now):
    resolved(alice, retention, ago=timedelta(days=10), now=now)
    resolved(alice, retention, ago=timedelta(days=100), now=now)  # before the default 90 days
    resolved(carol, billing, ago=timedelta(days=10), now=now)
    CaseFactory(owner=alice, team=retention, opened_at=now - timedelta(days=3))  # still open
    CaseFactory(team=None, status=CaseStatus.RESOLVED, opened_at=now - timedelta(days=3),
                resolved_at=now - timedelta(days=2))  # no team: only "every case" holds it
    assert outcomes(now=now).total.figures.cases == 3
    assert outcomes(teams=[retention], now=now).total.figures.cases == 1
    assert outcomes(teams=[retention, billing], now=now).total.figures.cases == 2
    assert outcomes(teams=[], now=now).total.figures.cases == 0
    assert outcomes(since=now - timedelta(days=200), until=now).total.figures.cases == 4
    assert outcomes(since=now - timedelta(days=200), until=now - timedelta(days=50)).total.figures.cases == 1
    with pytest.raises(ValueError, match="start before"):
        outcomes(since=now, until=now)


def test_the_report_costs_three_selects_and_its_csv_has_every_cell_then_the_totals(alice, retention, bot, now):
    with CaptureQueriesContext(connection) as empty:
        outcomes(now=now)
    for category in CaseCategory.values:
        DecisionFactory(case=resolved(alice, retention, category=category, now=now), agent=alice,
                        executed_at=now - timedelta(days=6))
        resolved(bot, retention, category=category, rating=5, now=now)
    with CaptureQueriesContext(connection) as full:
        report = outcomes(now=now)
    assert len(empty.captured_queries) == len(full.captured_queries)
    # the renewal kind's id, the grouped figures, the medians
    assert [q["sql"].split()[0] for q in full.captured_queries if q["sql"].startswith("SELECT")] == ["SELECT"] * 3
    rows = csv_rows(report)
    assert len(rows) == len(CaseCategory.values) * (len(PATHS) + 1) + len(PATHS) + 1
    assert rows[0][:3] == [CaseCategory.values[0], PATHS[0][0], 1]
    assert rows[-1][:5] == ["all", "all", 2 * len(CaseCategory.values), len(CaseCategory.values), 5.0]
