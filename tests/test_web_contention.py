"""A web action that lost a race for a lock says "try again", never a 500."""

from unittest import mock

import psycopg.errors
import pytest
from django.contrib.messages import get_messages
from django.db import OperationalError
from django.urls import reverse

from authority.models import Decision
from edges.web.contention import CONTENTION_MESSAGE
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db


def deadlock() -> OperationalError:
    """Return the error Django raises for a PostgreSQL deadlock: its own, caused by the driver's."""
    error = OperationalError("deadlock detected")
    error.__cause__ = psycopg.errors.DeadlockDetected("deadlock detected")
    return error


def shown(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_an_action_through_run_service_says_try_again(client, alice, case_owned_by_alice):
    # given resolving the case loses a lock race
    client.force_login(alice)
    case = case_owned_by_alice
    with mock.patch("workflows.services.case_flow_resolve", side_effect=deadlock()):
        # when alice resolves her case
        response = client.post(reverse("cases:resolve", args=[case.pk]), {"summary": "Refunded."})
    # then she is back on the case page with the message, and the case is still hers and open
    assert response.status_code == 302 and response["Location"] == reverse("cases:detail", args=[case.pk])
    assert CONTENTION_MESSAGE in shown(response)
    case.refresh_from_db()
    assert case.is_open


def test_a_view_without_run_service_sends_back_to_the_form_page_with_the_message(client, alice, case_owned_by_alice):
    # given executing the decision loses a lock race (the decide view calls the service itself)
    GrantFactory(subject_user=alice)
    client.force_login(alice)
    case = case_owned_by_alice
    page = reverse("cases:detail", args=[case.pk])
    with mock.patch("edges.agent.views.decision_execute", side_effect=deadlock()):
        # when alice submits the reviewed decision from the case page
        response = client.post(reverse("cases:decide", args=[case.pk]),
                               {"kind": "refund", "amount": "100", "currency": "EUR", "rationale": "double charge"},
                               HTTP_REFERER=f"http://testserver{page}")
    # then she is sent back to that page with the message instead of a 500, and nothing was decided
    assert response.status_code == 302 and response["Location"] == f"http://testserver{page}"
    assert CONTENTION_MESSAGE in shown(response)
    assert Decision.objects.count() == 0


def test_without_a_page_to_go_back_to_the_answer_is_a_409_page(client, alice, case_owned_by_alice):
    # given the same lost race, and a post that names no page of ours to return to
    GrantFactory(subject_user=alice)
    client.force_login(alice)
    case = case_owned_by_alice
    with mock.patch("edges.agent.views.decision_execute", side_effect=OperationalError("database is locked")):
        response = client.post(reverse("cases:decide", args=[case.pk]),
                               {"kind": "refund", "amount": "100", "currency": "EUR", "rationale": "double charge"},
                               HTTP_REFERER="https://elsewhere.example/")
    # then a page says what happened, with status 409 and Retry-After
    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert CONTENTION_MESSAGE in response.text
