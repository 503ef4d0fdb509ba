"""AI agents beside people in the consoles: managers see their teams, auditors everything (read-only), and a
CSV that is audited; the pages cost the same queries however many decisions they count."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from h2h_core.models import AuditEvent, CaseCategory, HandOff, HandOffReason
from tests.factories import CaseFactory, ai_agent

from .factories import DecisionFactory

pytestmark = pytest.mark.django_db

MANAGER_PAGE, MANAGER_CSV = "authority:ai_vs_human", "authority:ai_vs_human_csv"
AUDITOR_PAGE, AUDITOR_CSV = "audit:ai_vs_human", "audit:ai_vs_human_csv"


def ai_decisions(team, username, count, *, category=CaseCategory.BILLING_ERROR):
    """`count` decisions by the AI agent `username` of `team`, executed yesterday, one case each."""
    bot = ai_agent(team, username).user
    for _ in range(count):
        case = CaseFactory(owner=bot, team=team, category=category)
        DecisionFactory(case=case, agent=bot, by_ai_agent=True, executed_at=timezone.now() - timedelta(days=1))
    return bot


def human_decisions(agent, team, count, *, category=CaseCategory.COMPLAINT):
    for _ in range(count):
        DecisionFactory(case=CaseFactory(owner=agent, team=team, category=category), agent=agent,
                        executed_at=timezone.now() - timedelta(days=1))


def body(response) -> str:
    assert response.streaming, "the CSV is streamed"
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def month(cast):
    """Retention: 3 AI decisions and a hand-off; billing: 2 of carol's; onboarding (mike's only): 5 AI."""
    bot = ai_decisions(cast["retention"], "ava-bot", 3)
    HandOff.objects.create(case=CaseFactory(owner=cast["alice"], team=cast["retention"],
                                            category=CaseCategory.RENEWAL),
                           from_agent=bot, to_user=cast["alice"], reason=HandOffReason.OVER_AUTHORITY,
                           reason_text="over its authority", created_at=timezone.now() - timedelta(hours=3))
    human_decisions(cast["carol"], cast["billing"], 2)
    ai_decisions(cast["onboarding"], "olly-bot", 5)
    return cast


def test_a_manager_sees_ai_and_people_side_by_side_in_her_teams_only(client, month):
    client.force_login(month["maria"])
    response = client.get(reverse(MANAGER_PAGE))
    assert response.status_code == 200
    report = response.context["report"]
    # then retention's AI decisions and billing's human ones count, and onboarding's (mike's team) do not
    assert report.totals["ai"].figures.decisions == 3 and report.totals["human"].figures.decisions == 2
    assert report.totals["ai"].figures.hand_offs == 1
    page = response.text
    assert 'aria-current="page">AI and people' in page and "All my teams" in page
    assert page.count('<svg class="chart" role="img"') == 2 and "3 + 0" in page and "0 + 2" in page


def test_a_manager_narrows_to_one_of_her_teams(client, month):
    client.force_login(month["maria"])
    response = client.get(reverse(MANAGER_PAGE), {"team": month["billing"].pk, "days": "7"})
    report = response.context["report"]
    assert (report.total.figures.decisions, report.totals["ai"].figures.decisions) == (2, 0)
    assert report.until - report.since == timedelta(days=7)


def test_a_manager_asking_for_another_managers_team_gets_an_error_and_no_figures(client, month):
    client.force_login(month["maria"])
    response = client.get(reverse(MANAGER_PAGE), {"team": month["onboarding"].pk})
    assert response.status_code == 400 and response.context["report"] is None
    assert "Select a valid choice" in response.text and "olly-bot" not in response.text


def test_a_period_that_is_not_offered_is_refused_clearly(client, month):
    client.force_login(month["maria"])
    response = client.get(reverse(MANAGER_PAGE), {"days": "abc"})
    assert response.status_code == 400 and "Period:" in response.text and response.context["report"] is None


def test_agents_and_auditors_may_not_open_the_managers_page(client, month):
    for person in ("alice", "audrey"):
        client.force_login(month[person])
        assert client.get(reverse(MANAGER_PAGE)).status_code == 403
        assert client.get(reverse(MANAGER_CSV)).status_code == 403


def test_the_auditor_sees_every_team_read_only(client, month):
    client.force_login(month["audrey"])
    response = client.get(reverse(AUDITOR_PAGE))
    assert response.status_code == 200
    report = response.context["report"]
    assert report.teams is None and report.totals["ai"].figures.decisions == 8
    assert response.text.lower().count('method="post"') == 1  # the log-out form only: nothing here changes anything
    narrowed = client.get(reverse(AUDITOR_PAGE), {"team": month["onboarding"].pk}).context["report"]
    assert narrowed.total.figures.decisions == 5


def test_managers_and_agents_may_not_open_the_auditors_page(client, month):
    for person in ("maria", "alice"):
        client.force_login(month[person])
        assert client.get(reverse(AUDITOR_PAGE)).status_code == 403
        assert client.get(reverse(AUDITOR_CSV)).status_code == 403


def test_the_csv_follows_the_filters_and_is_audited(client, month):
    # given maria asks for billing's figures as CSV
    client.force_login(month["maria"])
    response = client.get(reverse(MANAGER_CSV), {"team": month["billing"].pk})
    # then the file holds every category for AI and people, then the totals
    assert response["Content-Type"].startswith("text/csv") and "attachment;" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert len(rows) == 2 * len(CaseCategory.values) + 3
    complaint = next(r for r in rows if (r["agent_kind"], r["category"]) == ("human", "complaint"))
    assert complaint["decisions"] == "2"
    assert rows[-1]["agent_kind"] == "all" and rows[-1]["decisions"] == "2"
    # and the export is on the record, with its filters
    event = AuditEvent.objects.get(action="audit.exported")
    assert (event.actor_username, event.object_id) == ("maria", "ai-vs-human")
    assert event.after["filters"]["team"] == month["billing"].pk and event.after["filters"]["days"] == 30


def test_the_auditors_csv_covers_every_case(client, month):
    client.force_login(month["audrey"])
    rows = list(csv.DictReader(io.StringIO(body(client.get(reverse(AUDITOR_CSV))))))
    assert rows[-1]["decisions"] == "10"
    assert AuditEvent.objects.get(action="audit.exported").after["filters"]["team"] == "every case"


def test_a_csv_asked_with_bad_filters_is_refused_and_not_recorded(client, month):
    client.force_login(month["maria"])
    response = client.get(reverse(MANAGER_CSV), {"team": month["onboarding"].pk})
    assert response.status_code == 302 and reverse(MANAGER_PAGE) in response["Location"]
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


@pytest.mark.parametrize(("who", "url"), [("maria", MANAGER_PAGE), ("audrey", AUDITOR_PAGE)])
def test_the_page_costs_the_same_queries_for_few_or_many_decisions(client, cast, who, url,
                                                                   django_assert_max_num_queries):
    # given a few decisions by an AI agent and a person
    bot = ai_decisions(cast["retention"], "ava-bot", 2)
    human_decisions(cast["alice"], cast["retention"], 2)
    client.force_login(cast[who])
    client.get(reverse(url))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse(url))
    # when many more are made, in every category, with hand-offs
    for category in CaseCategory.values:
        human_decisions(cast["alice"], cast["retention"], 3, category=category)
        case = CaseFactory(owner=cast["alice"], team=cast["retention"], category=category)
        DecisionFactory(case=case, agent=bot, by_ai_agent=True)
        HandOff.objects.create(case=case, from_agent=bot, to_user=cast["alice"], reason=HandOffReason.ASKED,
                               reason_text="asked", created_at=timezone.now())
    # then the page costs no more queries
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse(url))
    assert response.context["report"].total.figures.decisions == 4 + 4 * len(CaseCategory.values)
    assert len(few.captured_queries) <= 15, [q["sql"][:80] for q in few.captured_queries]
