"""Every page that shows a grant version names its real state, and a grant's page lists every audit
event about it (a one-off grant's include the approval that created it)."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from authority.models import Grant
from authority.services import (
    GrantTerms,
    authority_request_approve,
    authority_request_open,
    grant_change,
    grant_end,
    grant_reject,
)
from h2h_core.models import Role
from tests.api.helpers import client_for
from tests.factories import CaseFactory, kind, role

pytestmark = pytest.mark.django_db


def agents_refund():
    return Grant.objects.get(subject_role=role(Role.AGENT), kind__code="refund")


def terms(per_case: str, period_limit: str = "1000") -> GrantTerms:
    return GrantTerms(per_case_limit=Decimal(per_case), period_limit=Decimal(period_limit), period="month",
                      currency="EUR")


def status_of(page: str) -> str:
    """The text of the 'Status' entry of the grant version page."""
    found = re.search(r"<dt>Status</dt><dd>(.*?)</dd>", page, re.S)
    assert found, "no Status entry"
    return re.sub(r"<[^>]+>", "", found.group(1))


def events_of(page: str) -> str:
    return page.split("<h2>Audit events of this grant", 1)[1]


def test_a_superseded_version_says_when_and_by_which_version(client, cast):
    # given the Agent role's refund grant was changed by maria (within the threshold: in force at once)
    v1 = agents_refund()
    v2 = grant_change(actor=cast["maria"], grant=v1, terms=terms("300"), reason="busy season")
    client.force_login(cast["audrey"])
    # when the auditor opens version 1
    page = client.get(reverse("audit:grant", args=[v1.pk])).text
    # then it is shown as superseded by version 2, not as active until further notice
    status = status_of(page)
    assert "superseded" in status and "by version 2" in status
    this_version = page.split("Terms of this version", 1)[1].split("</section>", 1)[0]
    assert "active" not in status.lower() and "further notice" not in this_version
    # and version 2 is the active one, until further notice
    current = status_of(client.get(reverse("audit:grant", args=[v2.pk])).text)
    assert "active" in current and "until further notice" in current


def test_ended_and_rejected_versions_say_so(client, cast):
    # given a rejected change of the Agent role's refund grant, and alice's grant ended
    v1 = agents_refund()
    proposal = grant_change(actor=cast["maria"], grant=v1, terms=terms("3000"), reason="peak")
    grant_reject(actor=cast["mike"], grant=proposal, reason="too much")
    alice_grant = Grant.objects.get(subject_user=cast["alice"])
    grant_end(actor=cast["maria"], grant=alice_grant, reason="moved team")
    client.force_login(cast["audrey"])
    # when the auditor opens them
    rejected = status_of(client.get(reverse("audit:grant", args=[proposal.pk])).text).lower()
    ended = status_of(client.get(reverse("audit:grant", args=[alice_grant.pk])).text).lower()
    still = status_of(client.get(reverse("audit:grant", args=[v1.pk])).text).lower()
    # then each names its state
    assert "rejected" in rejected and "active" not in rejected
    assert "ended" in ended and "active" not in ended
    assert "active" in still and "until further notice" in still


def test_a_one_off_grant_page_lists_the_approval_that_created_it(client, cast):
    # given maria approved alice's request for 1,200, which created a one-off grant
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    request = authority_request_open(actor=cast["alice"], case=case, kind=kind("refund"), amount="1200",
                                     currency="EUR", justification="key account")
    request = authority_request_approve(actor=cast["maria"], request=request, note="fine once")
    client.force_login(cast["audrey"])
    # when the auditor opens the one-off grant
    page = client.get(reverse("audit:grant", args=[request.one_off_grant_id])).text
    # then its audit events include the request and the approval that created it
    events = events_of(page)
    assert "authority_request.opened" in events and "authority_request.approved" in events
    assert "maria" in events and "None." not in events


def test_the_manager_console_names_the_state_of_every_version(client, cast):
    # given the Agent role's refund grant was changed once
    v1 = agents_refund()
    v2 = grant_change(actor=cast["maria"], grant=v1, terms=terms("300"), reason="busy season")
    client.force_login(cast["maria"])
    # when maria opens the current version's edit page
    page = client.get(reverse("authority:grant_edit", args=[v2.pk])).text
    # then its version list names v1 superseded by version 2
    rows = page.split("Versions of this grant", 1)[1]
    assert "superseded" in rows and "by version 2" in rows


def test_the_api_names_the_state_of_a_version(cast):
    # given a superseded version
    v1 = agents_refund()
    grant_change(actor=cast["maria"], grant=v1, terms=terms("300"), reason="busy season")
    # when an auditor reads it through the API
    body = client_for(cast["audrey"]).get(f"/api/v1/grants/{v1.pk}/").json()
    # then its state says superseded, by version 2
    assert body["status"] == "active"
    assert (body["state"]["code"], body["state"]["version"]) == ("superseded", 2)
    assert body["state"]["at"] is not None


# --- the pending list and the end page ask the same predicates ---------------------------------------


def test_a_change_of_an_ended_grant_offers_reject_but_not_confirm(client, cast):
    # given maria's pending change of the Agent role's grant, whose grant then ended without voiding it
    v1 = agents_refund()
    pending = grant_change(actor=cast["maria"], grant=v1, terms=terms("3000"), reason="peak")
    Grant.objects.filter(pk=v1.pk).update(superseded_at=timezone.now())
    # when mike opens the pending changes
    client.force_login(cast["mike"])
    page = client.get(reverse("authority:pending")).text
    # then it says why it cannot be confirmed, and offers only rejecting it
    assert "has ended" in page
    assert reverse("authority:confirm", args=[pending.pk]) not in page
    assert reverse("authority:reject_grant", args=[pending.pk]) in page


def test_ending_a_grant_in_the_console_warns_of_and_voids_its_waiting_change(client, cast):
    # given maria's pending raise of alice's refunds
    alice_grant = Grant.objects.get(subject_user=cast["alice"])
    pending = grant_change(actor=cast["maria"], grant=alice_grant, terms=terms("3000"), reason="peak")
    client.force_login(cast["maria"])
    # when she opens the end page, then it warns that the change will be voided
    url = reverse("authority:grant_end", args=[alice_grant.pk])
    assert "voids it" in client.get(url).text
    # when she ends the grant
    client.post(url, {"reason": "moved team"})
    # then the change is voided and no longer waits
    pending.refresh_from_db()
    assert pending.status == "voided"
    client.force_login(cast["mike"])
    assert reverse("authority:confirm", args=[pending.pk]) not in client.get(reverse("authority:pending")).text
