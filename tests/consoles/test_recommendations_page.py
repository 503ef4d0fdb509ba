"""The manager console's limit recommendations: who may open it, what it shows, a constant query count,
and the one-click accept, executed once."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from authority import usage
from authority.errors import AuthorityDenied
from authority.models import Grant, GrantStatus, Period, RequestStatus
from authority.reports.recommendations import _last_buckets
from authority.services import decision_execute
from h2h_core.models import Role
from h2h_core.organisation import current_organisation
from tests.factories import CaseFactory, kind, set_usage

from .conftest import member
from .factories import DecisionFactory, RequestFactory

pytestmark = pytest.mark.django_db

PAGE, ACCEPT = "authority:recommendations", "authority:recommendation_accept"
TOKEN = re.compile(r'name="once_token" value="([^"]+)"')


def evidence(agent, team, *, requests=2, refusals=1, decisions=2, share=90):
    """High monthly refund utilisation, approved requests, refusals just over, rated decisions."""
    grant = Grant.objects.filter(subject_user=agent, kind__code="refund").first()
    cap = grant.period_limit if grant else Decimal("1000")  # else the Agent role's
    for start in _last_buckets(Period.MONTH, timezone.now(), current_organisation().tz):
        set_usage(usage.period_key(agent_id=agent.pk, kind_code="refund", currency="EUR", period=Period.MONTH,
                                   start=start),
                  Decimal(share) * cap / 100, kind_obj=kind("refund"), agent=agent, period=Period.MONTH,
                  bucket_start=start, currency="EUR")
    for index in range(requests):
        RequestFactory(case=CaseFactory(owner=agent, team=team), amount=Decimal(600 + 10 * index),
                       status=RequestStatus.APPROVED, decided_at=timezone.now())
    for _ in range(refusals):
        with pytest.raises(AuthorityDenied):
            decision_execute(actor=agent, case=CaseFactory(owner=agent, team=team), kind=kind("refund"),
                             amount="3000", currency="EUR", rationale="charged twice")
    for _ in range(decisions):
        DecisionFactory(case=CaseFactory(owner=agent, team=team, rating=5), agent=agent,
                        **({"grant": grant} if grant else {}), executed_at=timezone.now() - timedelta(days=2))


def test_a_manager_sees_the_suggestions_for_her_teams_with_their_evidence(client, cast):
    # given alice (retention) used 90 % of her 1,500 monthly cap three months running, her requests approved
    evidence(cast["alice"], cast["retention"])
    evidence(cast["erin"], cast["onboarding"])  # mike's team
    # when maria opens the page
    client.force_login(cast["maria"])
    page = client.get(reverse(PAGE)).text
    # then alice's raise is offered with its evidence and a one-click button; erin is not maria's
    assert "alice" in page and "erin" not in page
    assert "90 % / 90 % / 90 %" in page and "2 of 2" in page
    assert "Accept: propose 610.00 EUR per case and 1,900.00 EUR per month" in page
    assert 'action="/authority/recommendations/accept/"' in page and 'name="once_token"' in page


def test_agents_and_auditors_may_not_open_it(client, cast):
    for who in ("alice", "audrey"):
        client.force_login(cast[who])
        assert client.get(reverse(PAGE)).status_code == 403
        assert client.post(reverse(ACCEPT), {"agent": cast["alice"].pk, "kind": "refund"}).status_code == 403
    assert Grant.objects.filter(subject_user=cast["alice"]).count() == 1


def test_the_page_costs_the_same_queries_for_more_agents_and_evidence(client, cast, django_assert_max_num_queries):
    # given a little evidence, the query count of the page
    evidence(cast["alice"], cast["retention"], requests=1, refusals=1, decisions=1)
    client.force_login(cast["maria"])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert client.get(reverse(PAGE)).status_code == 200
    # when there are more agents, requests, refusals and decisions
    for name in ("fred", "gina", "hugo"):
        evidence(member(cast["billing"], name, Role.AGENT), cast["billing"], requests=4, refusals=3, decisions=5)
    evidence(cast["alice"], cast["retention"], requests=5, refusals=3, decisions=8)
    # then the page costs no more
    with django_assert_max_num_queries(len(small.captured_queries)):
        page = client.get(reverse(PAGE)).text
    assert "fred" in page and "hugo" in page


def test_accepting_proposes_the_change_once_and_links_to_it(client, cast):
    # given a raise above the refund threshold is suggested for alice (her need is 2,000; maria may decide 2,000)
    Grant.objects.filter(subject_user=cast["alice"]).update(period_limit=Decimal("2000"))
    evidence(cast["alice"], cast["retention"], requests=0, refusals=0, decisions=0, share=95)
    for amount in ("1900", "2000"):
        RequestFactory(case=CaseFactory(owner=cast["alice"], team=cast["retention"]), amount=Decimal(amount),
                       status=RequestStatus.APPROVED, decided_at=timezone.now())
    client.force_login(cast["maria"])
    page = client.get(reverse(PAGE)).text
    alices = next(form for form in re.findall(r"<form.*?</form>", page, re.DOTALL)
                  if f'name="agent" value="{cast["alice"].pk}"' in form and 'value="refund"' in form)
    token = TOKEN.search(alices).group(1)
    expected = re.search(r'name="expected" value="([^"]+)"', alices).group(1)
    form = {"agent": cast["alice"].pk, "kind": "refund", "expected": expected, "once_token": token}
    before = Grant.objects.count()
    # when she clicks accept, twice
    first = client.post(reverse(ACCEPT), form, follow=True)
    client.post(reverse(ACCEPT), form)
    # then one pending change exists, carrying the evidence, and the page links to it
    change = Grant.objects.get(subject_user=cast["alice"], status=GrantStatus.PENDING)
    assert Grant.objects.count() == before + 1
    assert change.reason.startswith("Recommended from evidence")
    assert f'href="/authority/pending/#pending-{change.pk}"' in first.text
    assert "waits for a second manager" in first.text


def test_a_tampered_or_foreign_accept_changes_nothing(client, cast):
    # given a suggestion for alice, and erin of mike's team
    evidence(cast["alice"], cast["retention"])
    evidence(cast["erin"], cast["onboarding"])
    client.force_login(cast["maria"])
    before = Grant.objects.count()
    # when maria posts tampered numbers, and an accept for erin
    tampered = client.post(reverse(ACCEPT), {"agent": cast["alice"].pk, "kind": "refund",
                                             "expected": "raise:99999:99999"}, follow=True)
    foreign = client.post(reverse(ACCEPT), {"agent": cast["erin"].pk, "kind": "refund"})
    bad = client.post(reverse(ACCEPT), {"agent": "x1", "kind": "refund"})
    # then the first is refused with the reason, the others are not found, and nothing changed
    assert "The evidence changed since the page was shown" in tampered.text
    assert foreign.status_code == 404 and bad.status_code == 404
    assert Grant.objects.count() == before
