"""Which authority requests a person may read: one selector, asked by the approvals pages and the API."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from authority.policy import requests_visible_to
from authority.services import authority_request_open
from authority.services.oversight import delegation_create
from tests.factories import CaseFactory, kind


def ask(agent, team):
    case = CaseFactory(owner=agent, team=team)
    return authority_request_open(actor=agent, case=case, kind=kind("refund"), amount="1200", currency="EUR",
                                  justification="outage")


def api_status(user, request) -> int:
    api = APIClient()
    api.force_authenticate(user)
    return api.get(f"/api/v1/authority-requests/{request.pk}/").status_code


def test_the_approve_page_and_the_api_agree_on_who_may_read_a_request(client, cast):
    # given alice's request to Retention's managers, and mike holding maria's approval rights this week
    request = ask(cast["alice"], cast["retention"])
    now = timezone.now()
    delegation_create(actor=cast["maria"], delegate=cast["mike"], starts_at=now - timedelta(minutes=1),
                      ends_at=now + timedelta(days=7), reason="holiday")
    visible = set(requests_visible_to(cast["mike"]).values_list("pk", flat=True))
    # when mike, the delegate, reads it on both edges
    client.force_login(cast["mike"])
    page = client.post(reverse("authority:reject", args=[request.pk]), {"note": ""})
    # then both let him in (the page refuses the empty reason, it does not hide the request)
    assert request.pk in visible
    assert page.status_code != 404 and api_status(cast["mike"], request) == 200


def test_someone_with_no_part_in_a_request_reads_it_nowhere(client, cast):
    # given alice's request, and erin, an agent of another team
    request = ask(cast["alice"], cast["retention"])
    erin = cast["erin"]
    # when she tries the approve page and the API
    client.force_login(erin)
    page = client.post(reverse("authority:approve", args=[request.pk]))
    # then both answer as if it did not exist
    assert not requests_visible_to(erin).filter(pk=request.pk).exists()
    assert page.status_code in (403, 404) and api_status(erin, request) == 404


def test_the_selector_costs_a_fixed_number_of_queries(cast, django_assert_max_num_queries):
    for _ in range(3):
        ask(cast["alice"], cast["retention"])
    with django_assert_max_num_queries(6):
        assert len(list(requests_visible_to(cast["maria"]))) == 3
