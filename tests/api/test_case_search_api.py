"""The API's case list takes the agent list's search, SLA state, approval wait and sort."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from authority.models import AuthorityRequest
from authority.models.decisions import RequestStatus
from h2h_core.models import CaseStatus
from tests.factories import CaseFactory, CustomerFactory, kind

from .helpers import assert_error_shape, client_for

pytestmark = pytest.mark.django_db


def ids(client, query: str) -> list[int]:
    response = client.get(f"/api/v1/cases/?{query}")
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_search_sla_waiting_and_sort_narrow_the_api_list(as_alice, alice, retention):
    now = timezone.now()
    late = CaseFactory(team=retention, owner=alice, subject="Router reboots", stakes_score=10,
                       resolution_due=now - timedelta(hours=2))
    waiting = CaseFactory(team=retention, owner=alice, customer=CustomerFactory(name="Initech"), stakes_score=90,
                          resolution_due=now + timedelta(days=2))
    AuthorityRequest.objects.create(
        case=waiting, requester=alice, kind=kind("refund"), amount=Decimal("900"), currency="EUR",
        justification="Over my limit", verdict={}, status=RequestStatus.OPEN, created_at=now,
        expires_at=now + timedelta(days=2))
    assert ids(as_alice, "q=router") == [late.pk]
    assert ids(as_alice, "q=INITECH") == [waiting.pk]
    assert ids(as_alice, f"q={late.reference}") == [late.pk]
    assert ids(as_alice, "sla=breached") == [late.pk]
    assert ids(as_alice, "waiting=true") == [waiting.pk]
    assert ids(as_alice, "sort=stakes") == [waiting.pk, late.pk]
    assert ids(as_alice, "sort=due") == [late.pk, waiting.pk]


def test_the_api_search_never_reaches_another_teams_case(carol, retention):
    other = CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED, subject="Cancel my contract")
    as_carol = client_for(carol)
    assert ids(as_carol, f"q={other.reference}") == [] and ids(as_carol, "q=cancel") == []


def test_a_bad_search_parameter_is_a_400(as_alice):
    assert_error_shape(as_alice.get("/api/v1/cases/?sla=late"), 400, "invalid")
