"""`/healthz/`: database and timers, for a load balancer; no login, nothing else revealed."""

from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.utils import timezone

from tests.factories import CustomerFactory
from workflows import services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _production(settings):
    settings.DEBUG = False


def test_healthz_answers_200_with_the_database_and_timers(client):
    # given nobody is logged in and the timers never ran
    # when the load balancer asks
    response = client.get("/healthz/")
    # then the database answered and the timers are reported as never run
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["reachable"] is True and body["database"]["latency_ms"] >= 0
    assert body["timers"] == {"last_run": None, "age_seconds": None}
    assert set(body) == {"status", "database", "timers"}
    assert "no-cache" in response["Cache-Control"] and not response.cookies


def test_healthz_reports_the_last_timer_run(client, alice, maria, django_capture_on_commit_callbacks):
    # given a case whose first response is overdue, and the timer dispatcher has run
    services.case_flow_open(actor=alice, customer=CustomerFactory(), subject="Charged twice", category="complaint",
                            amount_at_stake="250", currency="EUR", opened_at=timezone.now() - timedelta(hours=6))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("workflow_timers")
    # when the load balancer asks
    body = client.get("/healthz/").json()
    # then the last run is the one just now
    assert body["status"] == "ok"
    assert body["timers"]["last_run"] is not None and 0 <= body["timers"]["age_seconds"] < 60


def test_healthz_answers_503_when_the_database_does_not(client):
    # given the database refuses every cursor
    with mock.patch.object(connection, "cursor", side_effect=OperationalError("connection refused")):
        response = client.get("/healthz/")
    # then the probe fails, without the error's text
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["database"] == {"reachable": False}
    assert "refused" not in response.content.decode()


def test_healthz_is_exempt_from_the_https_redirect(client, settings):
    # given production's HTTPS redirect (the exemption is in the settings whatever DEBUG says)
    settings.SECURE_SSL_REDIRECT = True
    # then plain HTTP reaches the probe while the pages are redirected
    assert client.get("/healthz/").status_code == 200
    assert client.get("/login/").status_code == 301


def test_healthz_takes_no_writes(client):
    assert client.post("/healthz/").status_code == 405
