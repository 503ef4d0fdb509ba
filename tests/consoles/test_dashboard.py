"""The team dashboard: figures from aggregate queries whose number does not grow with the team."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority import reports
from authority.models import RequestStatus
from h2h_core.models import CaseEvent, CaseStatus
from tests.factories import CaseFactory, GrantFactory, kind

from .conftest import member
from .factories import DecisionFactory, RequestFactory

pytestmark = pytest.mark.django_db


def busy_agent(team, username, *, now):
    """An agent with a known month: 3 own decisions, 1 after approval, requests, cases, ratings, a breach."""
    agent = member(team, username)
    GrantFactory(subject_user=agent)
    cases = []
    for index in range(4):
        case = CaseFactory(owner=agent, team=team, status=CaseStatus.RESOLVED, opened_at=now - timedelta(days=3),
                           resolved_at=now - timedelta(days=3) + timedelta(hours=10), rating=index + 2,
                           sla_breached=index == 0)
        cases.append(case)
    CaseEvent.objects.create(case=cases[1], kind=CaseEvent.Kind.REOPENED, at=now - timedelta(days=2))
    CaseEvent.objects.create(case=cases[2], kind=CaseEvent.Kind.HANDOVER, at=now - timedelta(days=2))
    for case in cases[:3]:
        DecisionFactory(case=case, agent=agent, executed_at=now - timedelta(days=2))
    approved = RequestFactory(case=cases[3], requester=agent, status=RequestStatus.APPROVED,
                              created_at=now - timedelta(days=2), decided_at=now - timedelta(days=2, hours=-2))
    RequestFactory(case=cases[3], requester=agent, status=RequestStatus.REJECTED, created_at=now - timedelta(days=1),
                   decided_at=now - timedelta(hours=20))
    DecisionFactory(case=cases[3], agent=agent, request=approved, kind=kind("goodwill_credit"),
                    executed_at=now - timedelta(days=1))
    return agent


def test_the_figures_of_one_agent_are_right(cast):
    now = timezone.now()
    agent = busy_agent(cast["retention"], "zoe", now=now)
    board = reports.team_dashboard(teams=[cast["retention"]], days=30, now=now)
    zoe = next(a for a in board.agents if a.user == agent)
    assert (zoe.own_authority, zoe.via_approval) == (3, 1)
    assert (zoe.requests, zoe.approved, zoe.rejected, zoe.approval_rate) == (2, 1, 1, 50)
    assert zoe.approve_time == timedelta(hours=2)
    assert (zoe.resolved, zoe.resolution_time) == (4, timedelta(hours=10))
    assert (zoe.first_contact, zoe.first_contact_rate) == (2, 50)
    assert (zoe.reopened, zoe.reopen_rate) == (1, 25)
    assert zoe.rating == 3.5 and zoe.rated == 4
    assert (zoe.opened, zoe.breached) == (4, 1)
    assert zoe.ratings_by_kind[kind("refund").pk] == (3.0, 3)
    assert zoe.ratings_by_kind[kind("goodwill_credit").pk] == (5.0, 1)


def test_the_dashboard_shows_charts_with_their_values_in_text(client, cast):
    busy_agent(cast["retention"], "zoe", now=timezone.now())
    client.force_login(cast["maria"])
    page = client.get(reverse("authority:dashboard")).text
    assert page.count('<svg class="chart" role="img"') == 9
    for expected in ("3 + 1", "50 % of 2", "2 h 0 min", "10 h 0 min", "50 % of 4", "25 % of 4", "3.5 of 5",
                     "1 of 4", "within own authority", "after approval", "All figures as a table"):
        assert expected in page, expected
    assert "erin" not in page


def test_a_manager_sees_only_her_teams_even_when_asking_for_another(client, cast):
    busy_agent(cast["onboarding"], "olly", now=timezone.now())
    client.force_login(cast["maria"])
    page = client.get(reverse("authority:dashboard"), {"team": cast["onboarding"].pk}).text
    assert "olly" not in page and "Billing, Retention" in page


def test_the_dashboard_costs_the_same_queries_for_two_or_ten_agents(client, cast, django_assert_max_num_queries):
    # given a team of two busy agents
    team = cast["onboarding"]
    now = timezone.now()
    for index in range(2):
        busy_agent(team, f"first{index}", now=now)
    client.force_login(cast["mike"])
    client.get(reverse("authority:dashboard"))
    with CaptureQueriesContext(connection) as two:
        client.get(reverse("authority:dashboard"))
    # when eight more join
    for index in range(8):
        busy_agent(team, f"more{index}", now=now)
    # then the page costs no more queries
    with django_assert_max_num_queries(len(two.captured_queries)):
        page = client.get(reverse("authority:dashboard"))
    assert "more7" in page.text
    assert len(two.captured_queries) <= 20, [q["sql"][:80] for q in two.captured_queries]


def test_a_period_cap_nearly_used_shows_in_the_utilisation_chart(client, cast):
    from tests.consoles.test_people import use

    use(cast["alice"], "1400")
    client.force_login(cast["maria"])
    page = client.get(reverse("authority:dashboard")).text
    assert "93 % refund · over 90 %" in page
