"""One approver pool (rule 3a): the live check, the case page, the review page and the request
service name the same people, because they ask one function; and who may approve says why not."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority import periods, policy, usage
from authority.errors import AuthorityDenied, NotAllowed
from authority.models import AuthorityRequest, Delegation, Period, RequestStatus, UsageCounter
from authority.services import authority_request_approve, authority_request_open, authority_request_reject
from h2h_core.models import CaseEvent, Role
from h2h_core.organisation import current_organisation
from tests.factories import (
    GrantFactory,
    UserFactory,
    kind,
    loaded_case,
    set_usage,
    successful_audit_events,
    team_manager,
)

pytestmark = pytest.mark.django_db

NOBODY_AT_10000 = ("Nobody can approve 10,000.00 EUR of refund: the largest approval anyone here can give is "
                   "2,000.00 EUR; lower the amount or ask an administrator to name a fallback approver.")


# --- the cast ----------------------------------------------------------------------------------


def may_refund(user, per_case, per_month="50000"):
    return GrantFactory(subject_user=user, per_case_limit=Decimal(per_case), period_limit=Decimal(per_month),
                        period=Period.MONTH)


@pytest.fixture
def alice_500_maria_2000(alice, maria):
    """Alice may refund 500 per case; maria, Retention's manager, 2,000."""
    may_refund(alice, "500", "1000")
    may_refund(maria, "2000")


@pytest.fixture
def fiona(db):
    """A fallback approver outside the team, with authority for 10,000."""
    user = UserFactory(username="fiona", roles=[Role.MANAGER])
    user.groups.add(Group.objects.get_or_create(name=settings.H2H_FALLBACK_APPROVER_GROUP)[0])
    may_refund(user, "10000")
    return user


def delegate(manager, to, *, days=7):
    now = timezone.now()
    return Delegation.objects.create(manager=manager, delegate=to, starts_at=now - timedelta(minutes=1),
                                     ends_at=now + timedelta(days=days), created_at=now)


# --- what every page shows, and where the service routes ---------------------------------------


def check(client, case, amount):
    response = client.get(reverse("cases:check", args=[case.pk]), {"kind": "refund", "amount": amount,
                                                                   "currency": "EUR"})
    assert response.status_code == 200, response.content
    return response.json()["verdict"]


def case_page_after_refusal(client, case, amount):
    return client.post(reverse("cases:decide", args=[case.pk]), {"kind": "refund", "amount": amount,
                                                                 "currency": "EUR", "rationale": "outage"}).text


def review_page(client, case, amount):
    return client.post(reverse("cases:review", args=[case.pk]), {"kind": "refund", "amount": amount,
                                                                 "currency": "EUR", "rationale": "outage"}).text


def open_request(actor, case, amount):
    return authority_request_open(actor=actor, case=case, kind=kind("refund"), amount=amount, currency="EUR",
                                  justification="Key account, outage")


def state():
    return (list(AuthorityRequest.objects.values_list("pk", flat=True)), CaseEvent.objects.count(),
            dict(UsageCounter.objects.values_list("key", "used")), successful_audit_events())


def test_when_nobody_can_approve_10000_every_page_says_so_with_what_to_do_and_the_service_agrees(
    client, alice, maria, case_owned_by_alice, alice_500_maria_2000
):
    # given alice may refund 500 and maria, her team's manager, only 2,000; no fallback approver
    client.force_login(alice)
    # when alice types 10,000, submits it, and reviews it
    verdict = check(client, case_owned_by_alice, "10000")
    case_page = case_page_after_refusal(client, case_owned_by_alice, "10000")
    review = review_page(client, case_owned_by_alice, "10000")
    # then the live check names nobody and says why, and what to do instead
    assert verdict["approvers"] == [] and verdict["no_approver"] == NOBODY_AT_10000
    # and neither page offers a request: both say nobody can approve it, and why
    for page in (case_page, review):
        assert "Request approval" not in page
        assert NOBODY_AT_10000 in page
    assert "Not possible" in review
    # and the request service, asked the same, refuses with the same words and changes nothing
    before = state()
    with pytest.raises(NotAllowed) as refused:
        open_request(alice, case_owned_by_alice, "10000")
    assert refused.value.message == NOBODY_AT_10000
    assert state() == before


def test_when_no_manager_covers_it_every_page_names_the_fallback_pool_the_service_routes_to(
    client, alice, maria, fiona, case_owned_by_alice, alice_500_maria_2000
):
    # given maria may approve 2,000, fiona (a fallback approver) 10,000
    client.force_login(alice)
    # when alice types 10,000, submits it, and reviews it
    verdict = check(client, case_owned_by_alice, "10000")
    case_page = case_page_after_refusal(client, case_owned_by_alice, "10000")
    review = review_page(client, case_owned_by_alice, "10000")
    # then each names fiona, and only fiona, as the fallback
    assert verdict["approvers"] == ["fiona"] and verdict["approvers_are_fallback"] is True
    for page in (case_page, review):
        assert "Request approval from fiona<" in page
    # and the request goes exactly there
    request = open_request(alice, case_owned_by_alice, "10000")
    assert request.pool == [fiona.pk] and request.pool_is_fallback is True
    assert request.verdict["approvers"] == ["fiona"]


def test_for_a_covered_amount_the_displayed_pool_is_the_services_pool(
    client, alice, maria, retention, case_owned_by_alice, alice_500_maria_2000
):
    # given mona manages Retention but may refund only 1,000; maria (2,000) hands her approvals to mike
    # (5,000) while away; zed, a manager elsewhere, may refund 5,000
    mona = team_manager(retention, "mona")
    may_refund(mona, "1000")
    mike = UserFactory(username="mike", roles=[Role.MANAGER])
    may_refund(mike, "5000")
    delegate(maria, mike)
    may_refund(UserFactory(username="zed", roles=[Role.MANAGER]), "5000")
    client.force_login(alice)
    # when alice types 1,200 and reviews it
    verdict = check(client, case_owned_by_alice, "1200")
    review = review_page(client, case_owned_by_alice, "1200")
    # then both name maria and mike: the covered manager and the covered delegate, nobody else
    assert verdict["approvers"] == ["maria", "mike"] and verdict["approvers_are_fallback"] is False
    assert "Request approval from maria, mike<" in review
    # and the service routes the request to exactly those people
    request = open_request(alice, case_owned_by_alice, "1200")
    assert request.pool == [maria.pk, mike.pk] and request.pool_is_fallback is False
    pool = policy.approver_pool(requester=alice, case=loaded_case(case_owned_by_alice), kind=kind("refund"),
                                amount="1200", currency="EUR")
    assert pool.names == verdict["approvers"] == request.verdict["approvers"]


def test_the_requester_is_never_in_their_own_pool(alice, maria, retention, case_owned_by_alice,
                                                  alice_500_maria_2000):
    # given alice also manages her own team, and could refund 10,000 as a manager grant would allow
    from guardian.shortcuts import assign_perm

    assign_perm("h2h_core.manage_team", alice, retention)
    # when the pool for her 1,200 is asked
    pool = policy.approver_pool(requester=alice, case=loaded_case(case_owned_by_alice), kind=kind("refund"),
                                amount="1200", currency="EUR")
    # then only maria is in it
    assert pool.names == ["maria"] and not pool.is_fallback and pool.reason == ""


def test_a_suspended_agent_is_offered_no_approvers(client, alice, maria, case_owned_by_alice, alice_500_maria_2000):
    # given alice is suspended from refunds
    GrantFactory(subject_user=alice, effect="forbid", per_case_limit=None, period_limit=None, reason="review")
    client.force_login(alice)
    # when she types 1,200
    verdict = check(client, case_owned_by_alice, "1200")
    # then nobody is named: an approval cannot lift a suspension
    assert verdict["suspended"] is True and verdict["approvers"] == [] and verdict["no_approver"] == ""


# --- query counts ------------------------------------------------------------------------------


def test_the_live_check_costs_the_same_few_queries_for_one_or_many_candidate_approvers(
    client, alice, maria, retention, fiona, case_owned_by_alice, alice_500_maria_2000, django_assert_max_num_queries
):
    # given one manager and one fallback approver
    client.force_login(alice)
    check(client, case_owned_by_alice, "1200")
    with CaptureQueriesContext(connection) as few:
        assert check(client, case_owned_by_alice, "1200")["approvers"] == ["maria"]
    # when there are four more managers (two delegating to others), and three more fallback approvers
    managers = [team_manager(retention, name) for name in ("mona", "nina", "olga", "pia")]
    for manager in managers:
        may_refund(manager, "5000")
    for name, delegating in (("quinn", managers[0]), ("rita", maria)):
        helper = UserFactory(username=name, roles=[Role.MANAGER])
        may_refund(helper, "5000")
        delegate(delegating, helper)
    for name in ("sam", "tess", "uma"):
        extra = UserFactory(username=name, roles=[Role.MANAGER])
        extra.groups.add(Group.objects.get(name=settings.H2H_FALLBACK_APPROVER_GROUP))
        may_refund(extra, "10000", "20000")
    # then the check costs no more, and stays modest
    with django_assert_max_num_queries(len(few.captured_queries)):
        verdict = check(client, case_owned_by_alice, "1200")
    assert verdict["approvers"] == ["maria", "mona", "nina", "olga", "pia", "quinn", "rita"]
    assert len(few.captured_queries) <= 14


def test_the_pool_costs_a_fixed_handful_of_queries(alice, maria, retention, fiona, case_owned_by_alice,
                                                   alice_500_maria_2000, django_assert_max_num_queries):
    # given a case loaded with its customer, and the organisation already read
    case = loaded_case(case_owned_by_alice)
    refund = kind("refund")
    current_organisation()
    # when the pool is asked: candidates (1), memberships (2), grants (1), usage (1); no rate is needed
    with django_assert_max_num_queries(5):
        pool = policy.approver_pool(requester=alice, case=case, kind=refund, amount="1200", currency="EUR")
    # then it is maria's
    assert pool.names == ["maria"]


# --- who may approve: one predicate, with its reason -------------------------------------------


def period_key(agent):
    start = periods.bucket_start(Period.MONTH, timezone.now(), current_organisation().tz)
    return usage.period_key(agent_id=agent.pk, kind_code="refund", currency="EUR", period=Period.MONTH, start=start)


def test_may_approve_says_why_not(alice, maria, retention, case_owned_by_alice, alice_500_maria_2000):
    # given alice asked for 1,200 while maria handed her approval rights to mike; that delegation has
    # since ended, and mona became a manager of the team after the request was opened
    mike = UserFactory(username="mike", roles=[Role.MANAGER])
    may_refund(mike, "5000")
    delegation = delegate(maria, mike)
    request = open_request(alice, case_owned_by_alice, "1200")
    assert request.pool == [maria.pk, mike.pk]
    Delegation.objects.filter(pk=delegation.pk).update(revoked_at=timezone.now())
    mona = team_manager(retention, "mona")
    may_refund(mona, "5000")
    # when each is asked
    answers = {user.username: policy.may_approve(user, request) for user in (alice, maria, mona, mike)}
    # then only maria may, and the others are told why
    assert answers["maria"].allowed and answers["maria"].verdict.allowed
    assert answers["alice"].reason == "Nobody approves their own request."
    assert answers["mona"].reason == "You are not in the approver pool of this request."
    assert answers["mike"].reason == "The delegation that put you in this request's approver pool has ended."
    # and once maria has used 49,000 of her 50,000 this month, her own authority no longer covers it
    set_usage(period_key(maria), "49000", kind_obj=kind("refund"), agent=maria, period=Period.MONTH, currency="EUR")
    no_longer = policy.may_approve(maria, request)
    assert not no_longer.allowed
    assert no_longer.reason.startswith("Your own authority does not cover 1,200.00 EUR: ")
    assert "1,000.00 EUR left this month" in no_longer.reason
    # and rejecting needs no more than being in the pool
    assert policy.may_reject(maria, request).allowed and not policy.may_reject(mike, request).allowed


def test_the_services_refuse_for_the_predicates_reasons_and_change_nothing(
    alice, maria, retention, case_owned_by_alice, alice_500_maria_2000
):
    # given alice's request is with maria, who has since used all but 1,000 of her month
    request = open_request(alice, case_owned_by_alice, "1200")
    set_usage(period_key(maria), "49000", kind_obj=kind("refund"), agent=maria, period=Period.MONTH, currency="EUR")
    outsider = team_manager(retention, "mona")
    before = state()
    # when maria approves, alice approves her own, and mona (outside the pool) rejects
    with pytest.raises(AuthorityDenied) as maria_refused:
        authority_request_approve(actor=maria, request=request)
    with pytest.raises(NotAllowed) as alice_refused:
        authority_request_approve(actor=alice, request=request)
    with pytest.raises(NotAllowed) as mona_refused:
        authority_request_reject(actor=outsider, request=request, note="no")
    # then each is refused with the predicate's reason, and nothing changed
    assert "1,000.00 EUR left this month" in maria_refused.value.message
    assert alice_refused.value.message == "Nobody approves their own request."
    assert mona_refused.value.message == "You are not in the approver pool of this request."
    assert state() == before
    assert AuthorityRequest.objects.get().status == RequestStatus.OPEN
    # and maria may still reject it
    authority_request_reject(actor=maria, request=request, note="Over what I can give this month")
    assert AuthorityRequest.objects.get().status == RequestStatus.REJECTED


def test_the_approvals_page_shows_approve_only_where_the_predicate_allows_it(
    client, alice, maria, retention, case_owned_by_alice, alice_500_maria_2000
):
    # given two requests with maria: 1,200 and 1,900; maria has 1,500 left of her month
    from tests.factories import CaseFactory

    bob = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(bob)
    may_refund(bob, "500", "1000")
    small = open_request(alice, case_owned_by_alice, "1200")
    large = open_request(bob, CaseFactory(owner=bob, team=retention), "1900")
    set_usage(period_key(maria), "48500", kind_obj=kind("refund"), agent=maria, period=Period.MONTH, currency="EUR")
    client.force_login(maria)
    # when she opens her inbox
    page = client.get(reverse("authority:approvals")).text
    # then the 1,200 can be approved or rejected, the 1,900 only rejected, and the page says why
    assert reverse("authority:approve", args=[small.pk]) in page
    assert reverse("authority:approve", args=[large.pk]) not in page
    assert reverse("authority:reject", args=[small.pk]) in page and reverse("authority:reject", args=[large.pk]) in page
    assert "You cannot approve this" in page and "Your own authority does not cover 1,900.00 EUR" in page
