"""Delegation while away: a manager hands their approvals to another manager for a dated period.

It does not cascade, it ends when it ends, it is recorded, and the delegate approves only within
their own authority.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from authority.errors import AlreadyDecided, AuthorityDenied, NotAllowed
from authority.models import Delegation, RequestStatus
from authority.reports import inbox_for
from authority.services import authority_request_approve, authority_request_open
from authority.services.oversight import delegation_create, delegation_revoke
from h2h_core.models import AuditEvent, Role
from tests.factories import CaseFactory, GrantFactory, UserFactory, kind

from .conftest import manager_of

pytestmark = pytest.mark.django_db


def ask(agent, team, amount="1200"):
    case = CaseFactory(owner=agent, team=team)
    return authority_request_open(actor=agent, case=case, kind=kind("refund"), amount=amount, currency="EUR",
                                  justification="outage")


def away(manager, delegate, *, days=7, start_in=timedelta(0)):
    now = timezone.now()
    return delegation_create(actor=manager, delegate=delegate, starts_at=now + start_in - timedelta(minutes=1),
                             ends_at=now + start_in + timedelta(days=days), reason="holiday")


def snapshot():
    return (list(Delegation.objects.order_by("pk").values_list("pk", "revoked_at", "ends_at")),
            AuditEvent.objects.exclude(outcome="denied").exclude(action__startswith="auth.").count())  # not sign-ins


def test_a_delegation_is_recorded_and_listed(client, cast):
    client.force_login(cast["maria"])
    now = timezone.now()
    response = client.post(reverse("authority:delegations"), {
        "delegate": "mike", "starts_at": now.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M"), "reason": "two weeks off"}, follow=True)
    delegation = Delegation.objects.get()
    assert (delegation.manager, delegation.delegate) == (cast["maria"], cast["mike"])
    event = AuditEvent.objects.get(action="delegation.created")
    assert event.actor_username == "maria" and event.after["delegate_id"] == cast["mike"].pk
    assert "mike approves for you" in response.text and "in force" in response.text


def test_the_delegate_joins_the_pool_of_requests_opened_during_the_delegation(cast):
    away(cast["maria"], cast["mike"])
    request = ask(cast["alice"], cast["retention"])
    assert set(request.pool) == {cast["maria"].pk, cast["mike"].pk}
    approved = authority_request_approve(actor=cast["mike"], request=request, note="covering for maria")
    assert approved.status == RequestStatus.APPROVED and approved.decided_by == cast["mike"]


def test_the_delegate_may_decide_requests_opened_before_the_delegation(client, cast):
    request = ask(cast["alice"], cast["retention"])
    assert request.pool == [cast["maria"].pk]
    away(cast["maria"], cast["mike"])
    assert list(inbox_for(cast["mike"])) == [request]
    client.force_login(cast["mike"])
    assert "Refund of 1,200.00 EUR" in client.get(reverse("authority:approvals")).text
    client.post(reverse("authority:approve", args=[request.pk]))
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED and request.decided_by == cast["mike"]


def test_what_a_delegate_received_is_never_passed_on(cast):
    # given maria hands her approvals to mike, and mike hands his to nina
    nina = manager_of("nina")
    GrantFactory(subject_user=nina, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    away(cast["maria"], cast["mike"])
    away(cast["mike"], nina)
    # when alice asks Retention for more
    request = ask(cast["alice"], cast["retention"])
    # then nina is not in the pool and cannot approve
    assert nina.pk not in request.pool
    assert request not in inbox_for(nina)
    with pytest.raises(NotAllowed):
        authority_request_approve(actor=nina, request=request)
    request.refresh_from_db()
    assert request.status == RequestStatus.OPEN


def test_when_the_delegation_ends_the_delegate_can_no_longer_approve(cast):
    delegation = away(cast["maria"], cast["mike"])
    request = ask(cast["alice"], cast["retention"])
    delegation_revoke(actor=cast["maria"], delegation=delegation)
    before = AuditEvent.objects.exclude(outcome="denied").count()
    with pytest.raises(NotAllowed) as refused:
        authority_request_approve(actor=cast["mike"], request=request)
    assert "delegation" in refused.value.message
    request.refresh_from_db()
    assert request.status == RequestStatus.OPEN and AuditEvent.objects.exclude(outcome="denied").count() == before
    assert request not in inbox_for(cast["mike"])


def test_a_future_delegation_gives_nothing_yet(cast):
    away(cast["maria"], cast["mike"], start_in=timedelta(days=2))
    request = ask(cast["alice"], cast["retention"])
    assert request.pool == [cast["maria"].pk]
    with pytest.raises(NotAllowed):
        authority_request_approve(actor=cast["mike"], request=request)


def test_the_delegate_approves_only_within_their_own_authority(cast):
    # given mike's own refund authority is 2,000 per case, and maria has 5,000
    from authority.models import Grant

    Grant.objects.filter(subject_user=cast["maria"]).update(per_case_limit=Decimal("5000"),
                                                            period_limit=Decimal("9000"))
    away(cast["maria"], cast["mike"])
    request = ask(cast["alice"], cast["retention"], amount="3000")
    # then the request went to maria only, and mike cannot approve it
    assert request.pool == [cast["maria"].pk]
    with pytest.raises(AuthorityDenied):
        authority_request_approve(actor=cast["mike"], request=request)
    request.refresh_from_db()
    assert request.status == RequestStatus.OPEN


@pytest.mark.parametrize(
    ("who", "to", "change", "error"),
    [
        ("maria", "maria", {}, ValidationError),
        ("maria", "alice", {}, ValidationError),
        ("maria", "mike", {"ends_at": -timedelta(days=2)}, ValidationError),
        ("maria", "mike", {"ends_at": timedelta(days=200)}, ValidationError),
        ("alice", "mike", {}, NotAllowed),
        ("audrey", "mike", {}, NotAllowed),
    ],
    ids=["to-self", "to-an-agent", "ends-before-it-starts", "longer-than-a-quarter", "agent-delegates",
         "auditor-delegates"],
)
def test_bad_delegations_are_refused_and_change_nothing(cast, who, to, change, error):
    now = timezone.now()
    before = snapshot()
    with pytest.raises(error):
        delegation_create(actor=cast[who], delegate=cast[to], starts_at=now,
                          ends_at=now + change.get("ends_at", timedelta(days=3)))
    assert snapshot() == before


def test_overlapping_delegations_are_refused(cast):
    away(cast["maria"], cast["mike"])
    other = UserFactory(username="olga", roles=[Role.MANAGER])
    before = snapshot()
    with pytest.raises(AlreadyDecided):
        away(cast["maria"], other)
    assert snapshot() == before


def test_only_the_delegating_manager_revokes(client, cast):
    delegation = away(cast["maria"], cast["mike"])
    before = snapshot()
    client.force_login(cast["mike"])
    assert client.post(reverse("authority:delegation_revoke", args=[delegation.pk])).status_code == 404
    client.force_login(cast["audrey"])
    assert client.post(reverse("authority:delegation_revoke", args=[delegation.pk])).status_code == 403
    assert snapshot() == before
    client.force_login(cast["maria"])
    client.post(reverse("authority:delegation_revoke", args=[delegation.pk]))
    delegation.refresh_from_db()
    assert delegation.revoked_at is not None
    assert AuditEvent.objects.filter(action="delegation.revoked", object_id=str(delegation.pk)).exists()
    with pytest.raises(AlreadyDecided):
        delegation_revoke(actor=cast["maria"], delegation=delegation)
