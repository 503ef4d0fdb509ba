"""Outcomes by moment that matters in the consoles: managers see their teams, auditors everything (read-only),
agents nothing; a CSV that is safe and audited; bad filters refused clearly; the same queries for any data size."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority.reports.outcomes import PATHS
from h2h_core.models import AuditEvent, CaseCategory, CaseEvent, CaseStatus, HandOff, HandOffReason
from tests.factories import CaseFactory, CustomerFactory, ai_agent

from .factories import DecisionFactory, RequestFactory

pytestmark = pytest.mark.django_db

MANAGER_PAGE, MANAGER_CSV = "authority:outcomes", "authority:outcomes_csv"
AUDITOR_PAGE, AUDITOR_CSV = "audit:outcomes", "audit:outcomes_csv"


def resolved(owner, team, *, category=CaseCategory.COMPLAINT, days_ago=3, **fields):
    now = timezone.now()
    return CaseFactory(owner=owner, team=team, category=category, status=CaseStatus.RESOLVED,
                       opened_at=now - timedelta(days=days_ago, hours=5), resolved_at=now - timedelta(days=days_ago),
                       **fields)


def body(response) -> str:
    assert response.streaming, "the CSV is streamed"
    return b"".join(response.streaming_content).decode()


def every_path(owner, bot, team, category):
    """One resolved case of `category` on each resolution path, rated, one of them reopened."""
    own = resolved(owner, team, category=category, rating=4)
    DecisionFactory(case=own, agent=owner)
    approved = resolved(owner, team, category=category, rating=5)
    DecisionFactory(case=approved, agent=owner, request=RequestFactory(case=approved, requester=owner,
                                                                       status="approved"))
    resolved(bot, team, category=category, rating=3)
    handed = resolved(owner, team, category=category, rating=2)
    HandOff.objects.create(case=handed, from_agent=bot, to_user=owner, reason=HandOffReason.ASKED,
                           reason_text="asked", created_at=handed.opened_at)
    nothing = resolved(owner, team, category=category, rating=1)
    CaseEvent.objects.create(case=nothing, kind=CaseEvent.Kind.REOPENED, at=timezone.now() - timedelta(days=4))


@pytest.fixture
def quarter(cast):
    """Retention: every path on complaints; billing: carol's two renewals; onboarding (mike's only): 3 cases."""
    bot = ai_agent(cast["retention"], "ava-bot").user
    every_path(cast["alice"], bot, cast["retention"], CaseCategory.COMPLAINT)
    resolved(cast["carol"], cast["billing"], category=CaseCategory.RENEWAL, rating=5)
    resolved(cast["carol"], cast["billing"], category=CaseCategory.RENEWAL, days_ago=120)  # older than 90 days
    for _ in range(3):
        resolved(cast["erin"], cast["onboarding"], category=CaseCategory.ONBOARDING)
    return cast


def test_a_manager_sees_the_outcomes_of_her_teams_with_a_chart_and_a_table_per_figure(client, quarter):
    client.force_login(quarter["maria"])
    response = client.get(reverse(MANAGER_PAGE))
    assert response.status_code == 200
    report = response.context["report"]
    # then retention's five complaints and billing's recent renewal count; onboarding (mike's) does not
    assert report.total.figures.cases == 6 and report.by_category[CaseCategory.ONBOARDING].figures.cases == 0
    assert [report.cells[(CaseCategory.COMPLAINT, path)].figures.rating for path, _ in PATHS] == [4, 5, 3, 2, 1]
    page = response.text
    assert 'aria-current="page">Outcomes' in page and "All my teams" in page
    assert page.count('<svg class="chart" role="img"') == 5 and page.count("<table") == 5
    assert "4 of 5 (1 rated)" in page and "100 % (1 of 1)" in page  # the reopened complaint, as text


def test_a_manager_narrows_to_one_of_her_teams_and_a_longer_period(client, quarter):
    client.force_login(quarter["maria"])
    response = client.get(reverse(MANAGER_PAGE), {"team": quarter["billing"].pk, "days": "180"})
    report = response.context["report"]
    assert report.total.figures.cases == 2 and report.until - report.since == timedelta(days=180)
    assert client.get(reverse(MANAGER_PAGE), {"days": "30"}).context["report"].total.figures.cases == 6


def test_a_manager_asking_for_another_managers_team_gets_a_clear_error_and_no_figures(client, quarter):
    client.force_login(quarter["maria"])
    response = client.get(reverse(MANAGER_PAGE), {"team": quarter["onboarding"].pk})
    assert response.status_code == 400 and response.context["report"] is None
    assert "Select a valid choice" in response.text and "<svg" not in response.text


@pytest.mark.parametrize("days", ["abc", "7", "-1", "90.5"])
def test_a_period_that_is_not_offered_is_refused_with_a_message(client, quarter, days):
    client.force_login(quarter["maria"])
    response = client.get(reverse(MANAGER_PAGE), {"days": days})
    assert response.status_code == 400 and response.context["report"] is None
    assert "Resolved in:" in response.text and "Select a valid choice" in response.text


def test_agents_and_auditors_may_not_open_the_managers_page(client, quarter):
    for person in ("alice", "audrey"):
        client.force_login(quarter[person])
        assert client.get(reverse(MANAGER_PAGE)).status_code == 403
        assert client.get(reverse(MANAGER_CSV)).status_code == 403
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_managers_and_agents_may_not_open_the_auditors_page(client, quarter):
    for person in ("maria", "alice"):
        client.force_login(quarter[person])
        assert client.get(reverse(AUDITOR_PAGE)).status_code == 403
        assert client.get(reverse(AUDITOR_CSV)).status_code == 403


def test_the_auditor_sees_every_team_read_only(client, quarter):
    client.force_login(quarter["audrey"])
    response = client.get(reverse(AUDITOR_PAGE))
    assert response.status_code == 200
    report = response.context["report"]
    assert report.teams is None and report.total.figures.cases == 9
    assert response.text.lower().count('method="post"') == 1  # the log-out form only: nothing here changes anything
    narrowed = client.get(reverse(AUDITOR_PAGE), {"team": quarter["onboarding"].pk}).context["report"]
    assert narrowed.total.figures.cases == 3


def test_the_csv_follows_the_filters_is_safe_and_is_audited(client, quarter):
    # given maria asks for the outcomes of her teams as CSV
    client.force_login(quarter["maria"])
    response = client.get(reverse(MANAGER_CSV), {"days": "90"})
    assert response["Content-Type"].startswith("text/csv") and "attachment;" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body(response))))
    # then every cell, then the totals per category, per path and overall
    assert len(rows) == len(CaseCategory.values) * (len(PATHS) + 1) + len(PATHS) + 1
    own = next(r for r in rows if (r["category"], r["resolution_path"]) == ("complaint", "own"))
    assert (own["cases"], own["mean_rating"], own["median_hours_to_resolution"]) == ("1", "4.0", "5.0")
    assert rows[-1]["category"] == "all" and rows[-1]["cases"] == "6"
    # and the export is on the record, with its filters
    event = AuditEvent.objects.get(action="audit.exported")
    assert (event.actor_username, event.object_id) == ("maria", "outcomes")
    assert event.after["filters"]["team"] == "all my teams" and event.after["filters"]["days"] == 90


def test_no_cell_of_the_csv_can_run_as_a_formula(client, quarter, monkeypatch):
    # given a report whose text cells would start like formulas
    from authority.reports import outcomes as report_module

    columns = (("category", lambda row: "=HYPERLINK(\"http://x\")"), ("cases", lambda row: -row.figures.cases))
    monkeypatch.setattr("edges.web.outcomes.CSV_COLUMNS", columns)
    monkeypatch.setattr(report_module, "CSV_COLUMNS", columns)
    client.force_login(quarter["audrey"])
    rows = list(csv.reader(io.StringIO(body(client.get(reverse(AUDITOR_CSV))))))
    # then text is quoted and numbers stay numbers
    assert rows[1][0] == "'=HYPERLINK(\"http://x\")" and rows[-1][1] == "-9"


def test_the_auditors_csv_covers_every_case(client, quarter):
    client.force_login(quarter["audrey"])
    rows = list(csv.DictReader(io.StringIO(body(client.get(reverse(AUDITOR_CSV))))))
    assert rows[-1]["cases"] == "9"
    assert AuditEvent.objects.get(action="audit.exported").after["filters"]["team"] == "every case"


def test_a_csv_asked_with_bad_filters_is_refused_and_not_recorded(client, quarter):
    client.force_login(quarter["maria"])
    response = client.get(reverse(MANAGER_CSV), {"days": "abc"})
    assert response.status_code == 302 and reverse(MANAGER_PAGE) in response["Location"]
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


@pytest.mark.parametrize(("who", "url"), [("maria", MANAGER_PAGE), ("audrey", AUDITOR_PAGE)])
def test_the_page_costs_the_same_queries_for_few_or_many_cases(client, cast, who, url,
                                                               django_assert_max_num_queries):
    # given a few resolved cases
    bot = ai_agent(cast["retention"], "ava-bot").user
    every_path(cast["alice"], bot, cast["retention"], CaseCategory.COMPLAINT)
    client.force_login(cast[who])
    client.get(reverse(url))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse(url))
    # when many more are resolved, on every path in every category, with customers who came back
    for category in CaseCategory.values:
        every_path(cast["alice"], bot, cast["retention"], category)
        customer = CustomerFactory()
        resolved(cast["alice"], cast["retention"], category=category, days_ago=30, customer=customer)
        CaseFactory(customer=customer, opened_at=timezone.now() - timedelta(days=2))
    # then the page costs no more queries
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse(url))
    assert response.context["report"].total.figures.cases == 5 + 6 * len(CaseCategory.values)
    assert response.context["report"].total.figures.retained == len(CaseCategory.values)
    assert len(few.captured_queries) <= 15, [q["sql"][:80] for q in few.captured_queries]


def test_a_period_without_resolved_cases_says_so_in_every_chart_and_table(client, cast):
    # given nothing was resolved
    client.force_login(cast["audrey"])
    response = client.get(reverse(AUDITOR_PAGE))
    # then each chart says there is no data, and each table shows dashes, not zeros dressed as figures
    assert response.status_code == 200 and response.context["report"].total.figures.cases == 0
    assert response.text.count("No data in this period.") == 5
    assert " of 5 (" not in response.text and "0 %" not in response.text
