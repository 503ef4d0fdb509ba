"""Webhooks over HTTP: what counts as delivered. (Jobs, backoff, dead letters and the sweep:
tests/authority/test_webhook_jobs.py; signatures: tests/authority/test_standard_webhooks.py.)

Each test starts a local HTTP server in a thread and points a webhook endpoint at it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from authority.models import DeliveryStatus, OutboxMessage, Period, WebhookDelivery, WebhookEndpoint
from authority.services import decision_execute
from authority.standard_webhooks import secret_generate
from h2h_core.jobs import TaskResultStatus
from tests.factories import CaseFactory, GrantFactory, kind
from tests.jobs import failed_jobs, run_jobs
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


def execute_refund(alice, retention) -> None:
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"), period=Period.MONTH)
    decision_execute(actor=alice, case=CaseFactory(owner=alice, team=retention), kind=kind("refund"),
                     amount="10.00", currency="EUR", rationale="refund")


def endpoint(url: str) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name="billing", url=url, secret=secret_generate())


def test_an_unreachable_endpoint_is_a_failure_to_retry_not_a_crash(alice, retention):
    # given an endpoint on a port nobody listens on (taken and released)
    with Receiver() as gone:
        url = gone.url
    endpoint(url)
    execute_refund(alice, retention)
    run_jobs()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status is None and delivery.last_error
    assert delivery.next_attempt_at > timezone.now() and not failed_jobs().exists()
    assert OutboxMessage.objects.get().delivered_at is None


def test_a_redirect_is_not_a_delivery(alice, retention):
    with Receiver(statuses=[302]) as moved:
        endpoint(moved.url)
        execute_refund(alice, retention)
        run_jobs()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status == 302 and len(moved.received) == 1


def test_a_body_is_compact_json_of_the_message_the_same_on_every_retry(alice, retention):
    with Receiver(statuses=[500]) as flaky:
        endpoint(flaky.url)
        execute_refund(alice, retention)
        run_jobs()
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=timezone.now())
        run_jobs()
    first, second = flaky.received
    assert first["body"] == second["body"] and first["headers"]["content-type"] == "application/json"
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED
