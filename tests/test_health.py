"""`/healthz/`: database, job queue and timers, for a load balancer; no login, nothing else revealed."""

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


def test_healthz_answers_200_with_the_database_queue_and_timers(client):
    # given nobody is logged in, no job is waiting and the timers never ran
    # when the load balancer asks
    response = client.get("/healthz/")
    # then the database answered, the queue is empty and the timers are reported as never run
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["reachable"] is True and body["database"]["latency_ms"] >= 0
    assert body["queue"] == {"reachable": True, "ready": 0, "oldest_ready_age_seconds": None}
    assert body["timers"] == {"last_sweep": None, "sweep_age_seconds": None, "last_run": None,
                              "age_seconds": None, "lag_seconds": 0}
    assert set(body) == {"status", "database", "queue", "timers", "audit_sealer"}
    assert body["audit_sealer"] == {"pending": 0, "oldest_pending_age_seconds": 0.0, "lag_p99_seconds": 0.0}
    assert "no-cache" in response["Cache-Control"] and not response.cookies


def test_healthz_reports_waiting_jobs_and_an_overdue_timer_until_the_worker_sweeps(
    client, alice, maria, django_capture_on_commit_callbacks
):
    from edges.worker.schedule import schedule_due
    from tests.jobs import run_jobs

    # given a case whose first response is 2 h overdue and a schedule nobody has run yet
    services.case_flow_open(actor=alice, customer=CustomerFactory(), subject="Charged twice", category="complaint",
                            amount_at_stake="250", currency="EUR", opened_at=timezone.now() - timedelta(hours=6))
    schedule_due()
    before = client.get("/healthz/").json()
    # then the probe shows the waiting jobs and the timer's lag
    assert before["queue"]["ready"] >= 1 and before["queue"]["oldest_ready_age_seconds"] >= 0
    assert before["timers"]["lag_seconds"] >= 2 * 3600 - 60 and before["timers"]["last_sweep"] is None
    # when a worker runs them
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    after = client.get("/healthz/").json()
    # then the queue is empty, the sweep is recent and no timer is late
    assert after["queue"]["ready"] == 0
    assert after["timers"]["lag_seconds"] == 0 and 0 <= after["timers"]["sweep_age_seconds"] < 60


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
    assert body["queue"] == {"reachable": False}
    assert "refused" not in response.content.decode()


def test_healthz_is_exempt_from_the_https_redirect(client, settings):
    # given production's HTTPS redirect (the exemption is in the settings whatever DEBUG says)
    settings.SECURE_SSL_REDIRECT = True
    # then plain HTTP reaches the probe while the pages are redirected
    assert client.get("/healthz/").status_code == 200
    assert client.get("/login/").status_code == 301


def test_healthz_takes_no_writes(client):
    assert client.post("/healthz/").status_code == 405
