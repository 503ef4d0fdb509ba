"""Webhooks: executed decisions reach integrators signed, retried with backoff, at least once, never twice.

Each test starts a local HTTP server in a thread and points a webhook endpoint at it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import io
import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from authority import webhooks
from authority.models import OutboxMessage, Period, WebhookDelivery, WebhookEndpoint
from authority.services import decision_execute
from tests.factories import CaseFactory, GrantFactory, kind

SECRET = "whsec-test-0123456789"


class Receiver:
    """A local HTTP server that records every POST and answers with the statuses it is given."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0):
        self.statuses = list(statuses or [])
        self.delay = delay
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/h2h"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def execute_refunds(alice, retention, count: int, amount: str = "10.00") -> list:
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("100000"),
                 period=Period.MONTH)
    return [
        decision_execute(actor=alice, case=CaseFactory(owner=alice, team=retention), kind=kind("refund"),
                         amount=amount, currency="EUR", rationale=f"refund {number}")
        for number in range(count)
    ]


def endpoint(url: str, **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name=fields.pop("name", "billing"), url=url, secret=SECRET, **fields)


@pytest.mark.django_db
def test_an_executed_decision_is_delivered_signed_with_the_endpoint_secret(alice, retention, receiver):
    # given a billing system listening, and alice executes a refund
    endpoint(receiver.url)
    (decision,) = execute_refunds(alice, retention, 1, "200.00")
    # when the deliverer runs once
    output = io.StringIO()
    call_command("deliver_webhooks", "--once", stdout=output)
    assert "1 delivered, 0 failed" in output.getvalue()
    # then the billing system got one POST whose signature verifies with the shared secret
    (request,) = receiver.received
    headers = {name.lower(): value for name, value in request["headers"].items()}
    expected = "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-h2h-signature"], expected)
    assert webhooks.signature_valid(request["body"], SECRET, headers["x-h2h-signature"])
    assert not webhooks.signature_valid(request["body"], "another secret", headers["x-h2h-signature"])
    # and it carries the decision, with a signed timestamp close to now
    document = json.loads(request["body"])
    assert document["topic"] == decision.kind.outbox_topic == headers["x-h2h-topic"]
    assert document["data"]["id"] == decision.pk and document["data"]["amount"] == "200"
    assert document["data"]["case_reference"] == decision.case.reference
    assert int(headers["x-h2h-timestamp"]) == document["sent_at"]
    assert abs(document["sent_at"] - time.time()) < 60
    assert headers["content-type"] == "application/json"
    # and both the delivery and the message are marked delivered
    delivery = WebhookDelivery.objects.get()
    assert delivery.delivered_at and delivery.last_status == 200 and delivery.attempts == 1
    assert headers["x-h2h-delivery"] == str(delivery.pk)
    assert OutboxMessage.objects.get().delivered_at is not None


@pytest.mark.django_db
def test_a_failing_endpoint_is_retried_later_with_backoff_until_it_answers(alice, retention):
    with Receiver(statuses=[500, 503, 200]) as flaky:
        # given an endpoint that fails twice, then recovers
        endpoint(flaky.url)
        execute_refunds(alice, retention, 1)
        # when the deliverer runs: the first attempt fails and is scheduled 30 s later
        first = webhooks.deliver_due()
        delivery = WebhookDelivery.objects.get()
        assert (first.delivered, first.failed) == (0, 1)
        assert delivery.delivered_at is None and delivery.last_status == 500 and delivery.attempts == 1
        assert timedelta(seconds=25) < delivery.next_attempt_at - timezone.now() <= timedelta(seconds=30)
        assert "500" in OutboxMessage.objects.get().last_error
        # and running again right away sends nothing: it is not due yet
        assert webhooks.deliver_due().failed == 0 and len(flaky.received) == 1
        # when it is due: the second attempt fails too, and waits twice as long
        webhooks.deliver_due(now=timezone.now() + timedelta(seconds=31))
        delivery.refresh_from_db()
        assert delivery.attempts == 2 and delivery.last_status == 503
        assert timedelta(seconds=55) < delivery.next_attempt_at - timezone.now() <= timedelta(seconds=60)
        # and the third attempt succeeds
        third = webhooks.deliver_due(now=timezone.now() + timedelta(seconds=61))
        delivery.refresh_from_db()
        assert third.delivered == 1 and delivery.delivered_at and delivery.attempts == 3
        assert OutboxMessage.objects.get().delivered_at is not None
    # the three attempts carried the same event
    assert len({json.loads(request["body"])["id"] for request in flaky.received}) == 1


@pytest.mark.django_db
def test_an_unreachable_endpoint_is_a_failure_to_retry_not_a_crash(alice, retention):
    # given an endpoint on a port nobody listens on (taken and released)
    with Receiver() as gone:
        url = gone.url
    endpoint(url)
    execute_refunds(alice, retention, 1)
    report = webhooks.deliver_due(timeout=2)
    delivery = WebhookDelivery.objects.get()
    assert report.failed == 1 and delivery.delivered_at is None and delivery.last_status is None
    assert delivery.last_error and delivery.next_attempt_at > timezone.now()


@pytest.mark.django_db
def test_a_redirect_is_not_a_delivery(alice, retention):
    with Receiver(statuses=[302]) as moved:
        endpoint(moved.url)
        execute_refunds(alice, retention, 1)
        report = webhooks.deliver_due()
    assert report.failed == 1 and WebhookDelivery.objects.get().last_status == 302


@pytest.mark.django_db
def test_only_active_endpoints_subscribed_to_the_topic_receive_it(alice, retention, receiver):
    # given a refunds subscriber, a subscriber of another topic, and a disabled endpoint
    endpoint(receiver.url, name="refunds", topics=[kind("refund").outbox_topic])
    endpoint(receiver.url, name="credits only", topics=["billing.credit.apply"])
    endpoint(receiver.url, name="disabled", active=False)
    execute_refunds(alice, retention, 2)
    # when delivered
    webhooks.deliver_due()
    # then only the refunds subscriber got both, once each
    assert len(receiver.received) == 2
    assert set(WebhookDelivery.objects.values_list("endpoint__name", flat=True)) == {"refunds"}


@pytest.mark.django_db
def test_a_message_nobody_subscribes_to_is_settled_without_a_delivery(alice, retention):
    execute_refunds(alice, retention, 1)
    report = webhooks.deliver_due()
    assert report.fanned_out == 1 and not WebhookDelivery.objects.exists()
    assert OutboxMessage.objects.get().delivered_at is not None


@pytest.mark.django_db
def test_a_deliverer_that_died_mid_flight_leaves_the_delivery_due_again_after_its_lease(alice, retention,
                                                                                       receiver):
    # given a delivery claimed by a deliverer that then died (its lease is in the future, nothing sent)
    endpoint(receiver.url)
    execute_refunds(alice, retention, 1)
    webhooks.fan_out()
    claimed = webhooks._claim(now=timezone.now(), batch=10)
    assert len(claimed) == 1
    # when another deliverer runs now, the claimed delivery is not taken twice
    assert webhooks.deliver_due().delivered == 0 and receiver.received == []
    # and after the lease it is delivered (at least once)
    assert webhooks.deliver_due(now=timezone.now() + webhooks.LEASE + timedelta(seconds=1)).delivered == 1
    assert len(receiver.received) == 1


def test_the_command_rejects_nonsense_options():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("deliver_webhooks", "--once", "--timeout", "0")
    with pytest.raises(CommandError):
        call_command("deliver_webhooks", "--once", "--batch-size", "0")


@pytest.mark.django_db
def test_loop_mode_delivers_and_stops_when_asked(alice, retention, receiver):
    endpoint(receiver.url)
    execute_refunds(alice, retention, 1)
    passes = []
    webhooks.deliver_forever(interval=0.01, stop=lambda: len(passes) >= 2, on_report=passes.append)
    assert passes[0].delivered == 1 and passes[1].delivered == 0 and len(receiver.received) == 1


# --- several deliverers at once (PostgreSQL) -------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_deliverers_at_once_deliver_each_message_once_to_each_endpoint(alice, retention, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with Receiver(delay=0.02) as billing_system, Receiver(delay=0.02) as crm:
        # given 12 executed decisions and two endpoints
        endpoint(billing_system.url, name="billing")
        endpoint(crm.url, name="crm")
        decisions = execute_refunds(alice, retention, 12)
        # when two deliverers (think: two machines) run at the same instant, in small batches
        barrier = threading.Barrier(2)
        reports, errors = [], []

        def deliverer():
            try:
                barrier.wait(timeout=30)
                reports.append(webhooks.deliver_due(batch=3))
            except BaseException as error:  # reported to the main thread
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=deliverer) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        # then each endpoint got each message exactly once, and both deliverers did part of the work
        for system in (billing_system, crm):
            ids = [json.loads(request["body"])["data"]["id"] for request in system.received]
            assert sorted(ids) == sorted(decision.pk for decision in decisions)
        assert sum(report.delivered for report in reports) == 24
        assert all(report.delivered for report in reports), [report.summary() for report in reports]
        assert WebhookDelivery.objects.filter(delivered_at__isnull=False, attempts=1).count() == 24
        assert not OutboxMessage.objects.filter(delivered_at__isnull=True).exists()
