"""The approvals inbox: one screen to decide a one-hop request, in at most two interactions."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from authority.models import AuthorityRequest, Grant, RequestStatus
from authority.services import authority_request_open, decision_execute
from h2h_core.models import CustomerTier
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, kind, successful_audit_events

from .conftest import member

pytestmark = pytest.mark.django_db


def ask(agent, team, amount="1200", justification="Key account since 2016; outage cost them a day."):
    case = CaseFactory(owner=agent, team=team, customer=CustomerFactory(name=f"Cobalt Pharma {agent}",
                                                                       tier=CustomerTier.GOLD))
    return authority_request_open(actor=agent, case=case, kind=kind("refund"), amount=amount, currency="EUR",
                                  justification=justification)


def state(request):
    request.refresh_from_db()
    return request.status, request.decided_by_id, Grant.objects.count(), successful_audit_events()


def test_the_inbox_shows_everything_needed_to_decide(client, cast):
    # given alice (500 per case) did 2 refunds this quarter and asks for 1,200
    alice = cast["alice"]
    for amount in ("100", "50"):
        decision_execute(actor=alice, case=CaseFactory(owner=alice, team=cast["retention"]), kind=kind("refund"),
                         amount=amount, currency="EUR", rationale="late delivery")
    ask(alice, cast["retention"])
    client.force_login(cast["maria"])
    # when maria opens her inbox
    page = client.get(reverse("authority:approvals")).text
    # then one card tells requester, customer, amount, how far over, her own room, why, how long, the record
    for expected in ("1 waiting", "Refund of 1,200.00 EUR for Cobalt Pharma alice", "alice", "gold customer",
                     "Over the limit by", "700.00 EUR", "500.00 EUR left of the requester's authority",
                     "covers it", "5,000.00 EUR left this week", "2,000.00 EUR per case", "Key account since 2016",
                     "Waiting", "2 decisions (2 within own authority, 0 after approval)"):
        assert expected in page, expected


def test_approving_is_one_interaction_and_creates_the_one_off_grant(client, cast):
    request = ask(cast["alice"], cast["retention"])
    client.force_login(cast["maria"])
    response = client.post(reverse("authority:approve", args=[request.pk]), follow=True)
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED and request.decided_by == cast["maria"]
    assert request.one_off_grant.per_case_limit == Decimal("1200")
    assert "Approved: alice can now execute it" in response.text


def test_rejecting_needs_a_reason_and_without_one_nothing_changes(client, cast):
    request = ask(cast["alice"], cast["retention"])
    client.force_login(cast["maria"])
    before = state(request)
    refused = client.post(reverse("authority:reject", args=[request.pk]), {"note": "  "}, follow=True)
    assert "Give the agent a reason" in refused.text
    assert state(request) == before
    client.post(reverse("authority:reject", args=[request.pk]), {"note": "Offer a goodwill credit instead."})
    request.refresh_from_db()
    assert request.status == RequestStatus.REJECTED and request.decision_note == "Offer a goodwill credit instead."


def test_acting_on_a_request_someone_else_decided_says_so_and_decides_nothing(client, cast):
    # given mona, a second manager of Retention, already approved it
    from .conftest import manager_of

    mona = manager_of("mona", cast["retention"])
    GrantFactory(subject_user=mona, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    request = ask(cast["alice"], cast["retention"])
    assert {cast["maria"].pk, mona.pk} <= set(request.pool)
    client.force_login(mona)
    client.post(reverse("authority:approve", args=[request.pk]))
    client.force_login(cast["maria"])
    before = state(request)
    # when maria approves (or rejects) from a page she loaded earlier
    approved = client.post(reverse("authority:approve", args=[request.pk]), follow=True)
    rejected = client.post(reverse("authority:reject", args=[request.pk]), {"note": "no"}, follow=True)
    # then she reads who decided, and nothing was decided twice
    assert "already approved by mona" in approved.text
    assert "already approved by mona" in rejected.text
    assert state(request) == before


def test_people_outside_the_pool_cannot_decide_and_change_nothing(client, cast):
    request = ask(cast["alice"], cast["retention"])
    before = state(request)
    for person, expected in ((cast["mike"], 404), (cast["audrey"], 403), (cast["bob"], 403)):
        client.force_login(person)
        assert client.post(reverse("authority:approve", args=[request.pk])).status_code == expected
        assert client.post(reverse("authority:reject", args=[request.pk]), {"note": "x"}).status_code == expected
    assert state(request) == before


def test_the_inbox_costs_the_same_queries_for_one_or_six_requests(client, cast, django_assert_max_num_queries):
    ask(cast["alice"], cast["retention"])
    client.force_login(cast["maria"])
    client.get(reverse("authority:approvals"))
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("authority:approvals"))
    for index in range(5):
        agent = member(cast["retention" if index % 2 else "billing"], f"agent{index}")
        GrantFactory(subject_user=agent)
        ask(agent, cast["retention" if index % 2 else "billing"], amount=str(700 + index))
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = client.get(reverse("authority:approvals"))
    assert "6 waiting" in page.text


def test_requests_outside_my_pool_are_not_in_my_inbox(client, cast):
    GrantFactory(subject_user=cast["erin"])
    ask(cast["erin"], cast["onboarding"])
    client.force_login(cast["maria"])
    assert "Nothing waits for you" in client.get(reverse("authority:approvals")).text
    assert AuthorityRequest.objects.count() == 1
