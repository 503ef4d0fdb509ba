"""Webhooks as jobs: one job per delivery, backoff, dead letters, endpoint health, in-flight cap, the sweep.

A local HTTP server in a thread receives the POSTs; `tests.jobs.run_jobs` runs the queued jobs
as a worker would. "Time passes" by moving waiting jobs and deliveries to now.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from authority import webhooks
from authority.jobs import webhook_deliver, webhook_sweep
from authority.models import DeliveryStatus, OutboxMessage, Period, WebhookDelivery, WebhookEndpoint
from authority.services import decision_execute
from authority.standard_webhooks import secret_generate, verify
from h2h_core.jobs import TaskResultStatus
from h2h_core.models import AuditEvent
from tests.factories import CaseFactory, GrantFactory, UserFactory, kind
from tests.jobs import failed_jobs, queued, run_jobs
from tests.webhook_receiver import Receiver

SECRET = secret_generate()


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


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


def time_passes() -> None:
    """Make every waiting job and pending delivery due now, as if their time had come."""
    now = timezone.now()
    DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=now)
    WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).update(next_attempt_at=now)


def delivery_jobs():
    return queued("webhook_deliver")


def test_an_executed_decision_gets_one_delivery_and_one_job_per_subscribed_active_endpoint(alice, retention):
    # given two subscribers of refunds, a subscriber of another topic, and a disabled endpoint
    billing = endpoint("https://billing.example.test/h", topics=[kind("refund").outbox_topic])
    crm = endpoint("https://crm.example.test/h", name="crm")
    endpoint("https://credits.example.test/h", name="credits only", topics=["billing.credit.apply"])
    endpoint("https://off.example.test/h", name="off", active=False)
    # when alice executes two refunds
    decisions = execute_refunds(alice, retention, 2)
    # then each message has one delivery per subscribed active endpoint, in the decision's transaction
    for decision in decisions:
        message = OutboxMessage.objects.get(decision=decision)
        assert sorted(message.deliveries.values_list("endpoint_id", flat=True)) == [billing.pk, crm.pk]
    # and one job per delivery waits on the webhooks queue
    jobs = delivery_jobs()
    assert sorted(job.args_kwargs["args"][0] for job in jobs) == sorted(WebhookDelivery.objects.values_list("pk",
                                                                                                           flat=True))
    assert {job.queue_name for job in jobs} == {"webhooks"} and jobs.count() == 4


def test_a_message_nobody_subscribes_to_is_settled_without_a_delivery_or_job(alice, retention):
    execute_refunds(alice, retention, 1)
    assert OutboxMessage.objects.get().delivered_at is not None
    assert not WebhookDelivery.objects.exists() and not delivery_jobs().exists()


def test_an_endpoint_switched_on_gets_the_very_next_message_and_one_switched_off_none(alice, retention):
    # given a refund executed while no endpoint listened (its message settled), so the process has read
    # the endpoints once already
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("100000"),
                 period=Period.MONTH)

    def refund(number: int):
        return decision_execute(actor=alice, case=CaseFactory(owner=alice, team=retention), kind=kind("refund"),
                                amount="10.00", currency="EUR", rationale=f"refund {number}")

    refund(0)
    # when an endpoint is switched on, the next refund is executed, the endpoint is switched off, and
    # another refund is executed
    billing = endpoint("https://billing.example.test/h")
    switched_on = OutboxMessage.objects.get(decision=refund(1))
    WebhookEndpoint.objects.filter(pk=billing.pk).update(active=False)
    switched_off = OutboxMessage.objects.get(decision=refund(2))
    # then only the message written while it was on has a delivery to it
    assert list(switched_on.deliveries.values_list("endpoint_id", flat=True)) == [billing.pk]
    assert switched_on.delivered_at is None
    assert not switched_off.deliveries.exists() and switched_off.delivered_at is not None


def test_the_job_delivers_signed_and_settles_delivery_and_message(alice, retention, receiver):
    # given a billing system listening, and alice executes a refund
    endpoint(receiver.url)
    (decision,) = execute_refunds(alice, retention, 1, "200.00")
    # when the worker runs the jobs
    assert run_jobs() == 1
    # then the billing system got one POST that verifies as a Standard Webhook
    (request,) = receiver.received
    assert verify(secret=SECRET, headers=request["headers"], body=request["body"])
    document = json.loads(request["body"])
    assert document["topic"] == decision.kind.outbox_topic and document["data"]["id"] == decision.pk
    assert request["headers"]["webhook-id"] == str(OutboxMessage.objects.get().pk)
    # and the delivery and the message are delivered, and no job waits
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1 and delivery.last_status == 200
    assert OutboxMessage.objects.get().delivered_at is not None
    assert not delivery_jobs().exists() and not failed_jobs().exists()


def test_a_failed_attempt_is_retried_by_a_later_job_with_exponential_backoff(alice, retention):
    with Receiver(statuses=[500, 503, 502, 200]) as flaky:
        endpoint(flaky.url)
        execute_refunds(alice, retention, 1)
        delays = []
        for attempt in (1, 2, 3):
            # when the attempt's job runs and the endpoint fails
            run_jobs()
            delivery = WebhookDelivery.objects.get()
            assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == attempt
            # then the next attempt is a job for later, not now
            (job,) = delivery_jobs()
            assert job.run_after == delivery.next_attempt_at > timezone.now()
            delays.append((job.run_after - delivery.last_attempt_at).total_seconds())
            assert run_jobs() == 0 and len(flaky.received) == attempt
            time_passes()
        # and the wait doubles each time (30 s, 1 min, 2 min, with up to 10 % jitter)
        for delay, base in zip(delays, (30, 60, 120), strict=True):
            assert base <= delay <= base * 1.1 + 1, delays
        # and the fourth attempt succeeds
        run_jobs()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 4
    assert len({request["headers"]["webhook-id"] for request in flaky.received}) == 1


def test_after_the_last_attempt_the_delivery_is_dead_and_the_admin_lists_and_retries_it(
        alice, retention, root, client, settings):
    settings.H2H_WEBHOOK_MAX_ATTEMPTS = 3
    with Receiver(statuses=[500, 500, 500]) as broken:
        billing = endpoint(broken.url)
        execute_refunds(alice, retention, 1)
        # given three failed attempts
        for _ in range(3):
            run_jobs()
            time_passes()
        # then the delivery is dead, and no job waits for it
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == DeliveryStatus.DEAD and delivery.attempts == 3 and delivery.dead_at
        assert delivery.last_status == 500 and not delivery_jobs().exists()
        assert run_jobs() == 0 and len(broken.received) == 3
        # and the administrator sees it among the dead deliveries of the endpoint
        client.force_login(root)
        changelist = reverse("admin:authority_webhookdelivery_changelist")
        listing = client.get(changelist, {"status__exact": "dead", "endpoint__id__exact": billing.pk})
        assert listing.status_code == 200 and listing.context["cl"].result_count == 1
        assert "Dead (gave up)" in listing.text
        # when they retry it now (the endpoint has recovered: it answers 200 from here on)
        response = client.post(changelist, {"action": "retry_dead_deliveries", "_selected_action": [delivery.pk]})
        assert response.status_code == 302
        # then it is pending with a new round of attempts, and the retry is on the record
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0
        event = AuditEvent.objects.get(action="webhook_delivery.retried")
        assert event.actor_username == "root" and event.before["status"] == "dead"
        assert event.after["status"] == "pending"
        # and the job delivers it
        run_jobs()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and len(broken.received) == 4


def test_retrying_a_delivery_that_is_not_dead_is_refused_and_changes_nothing(alice, retention, root, client):
    endpoint("https://billing.example.test/h")
    execute_refunds(alice, retention, 1)
    delivery = WebhookDelivery.objects.get()
    client.force_login(root)
    response = client.post(reverse("admin:authority_webhookdelivery_changelist"),
                           {"action": "retry_dead_deliveries", "_selected_action": [delivery.pk]}, follow=True)
    assert response.status_code == 200 and "only dead deliveries are retried" in response.text
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING and delivery_jobs().count() == 1
    assert not AuditEvent.objects.filter(action="webhook_delivery.retried").exists()


def test_consecutive_failures_disable_the_endpoint_and_its_deliveries_wait_until_it_is_enabled(
        alice, retention, root, client, settings):
    settings.H2H_WEBHOOK_DISABLE_AFTER = 3
    with Receiver(statuses=[500, 500, 500]) as failing:
        billing = endpoint(failing.url)
        # given three refunds whose first attempts all fail
        execute_refunds(alice, retention, 3)
        run_jobs()
        # then the endpoint is disabled, by the system, on the record
        billing.refresh_from_db()
        assert not billing.active and billing.consecutive_failures == 3 and billing.disabled_at
        assert "3 consecutive failed attempts" in billing.disabled_reason
        event = AuditEvent.objects.get(action="webhook_endpoint.disabled")
        assert event.actor_id is None and event.before["active"] and not event.after["active"]
        # and its deliveries are not attempted while it is disabled, nor dead-lettered
        time_passes()
        run_jobs()
        webhooks.sweep(now=timezone.now() + timedelta(minutes=5))
        assert len(failing.received) == 3 and not delivery_jobs().exists()
        assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.PENDING, 1)}
        # and the administrator sees why
        client.force_login(root)
        listing = client.get(reverse("admin:authority_webhookendpoint_changelist"))
        assert listing.status_code == 200 and "consecutive failed attempts" in listing.text
        # when they enable it again in the admin (the endpoint answers 200 from here on)
        response = client.post(reverse("admin:authority_webhookendpoint_change", args=[billing.pk]), {
            "name": billing.name, "url": billing.url, "secret": billing.secret, "topics": "[]", "active": "on"})
        assert response.status_code == 302
        billing.refresh_from_db()
        assert billing.active and billing.consecutive_failures == 0 and billing.disabled_at is None
        assert AuditEvent.objects.filter(action="webhook_endpoint.changed", after__active=True).exists()
        # then the next sweep sends the waiting deliveries
        assert len(webhooks.sweep(now=timezone.now() + timedelta(minutes=5)).requeued) == 3
        run_jobs()
    assert len(failing.received) == 6
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def test_a_success_resets_the_endpoints_failure_count(alice, retention, settings):
    settings.H2H_WEBHOOK_DISABLE_AFTER = 3
    with Receiver(statuses=[500, 500, 200, 500, 500]) as shaky:
        billing = endpoint(shaky.url)
        # given five deliveries: two fail, one succeeds, two fail
        execute_refunds(alice, retention, 5)
        run_jobs()
    # then the endpoint was never three failures in a row: it stays active
    billing.refresh_from_db()
    assert len(shaky.received) == 5
    assert billing.active and billing.consecutive_failures == 2 and billing.disabled_at is None
    assert not AuditEvent.objects.filter(action="webhook_endpoint.disabled").exists()


def test_an_endpoint_at_its_in_flight_cap_makes_the_job_wait_instead_of_posting(alice, retention, receiver,
                                                                               settings):
    settings.H2H_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 1
    endpoint(receiver.url)
    first, second = execute_refunds(alice, retention, 2)
    in_flight = WebhookDelivery.objects.get(message__decision=first)
    waiting = WebhookDelivery.objects.get(message__decision=second)
    # given the first delivery is being attempted (leased) by another worker
    WebhookDelivery.objects.filter(pk=in_flight.pk).update(leased_until=timezone.now() + webhooks.LEASE)
    # when the jobs run
    run_jobs()
    # then the second does not POST: it moves its attempt a few seconds later and enqueues itself for then
    assert receiver.received == []
    waiting.refresh_from_db()
    assert waiting.attempts == 0 and waiting.next_attempt_at > timezone.now()
    (later,) = delivery_jobs()
    assert later.args_kwargs["args"] == [waiting.pk] and later.run_after == waiting.next_attempt_at
    # and once the first attempt is over, the second goes out when its time comes
    WebhookDelivery.objects.filter(pk=in_flight.pk).update(leased_until=None, status=DeliveryStatus.DELIVERED)
    time_passes()
    run_jobs()
    waiting.refresh_from_db()
    assert waiting.status == DeliveryStatus.DELIVERED and len(receiver.received) == 1


def test_the_sweep_re_enqueues_a_delivery_whose_worker_died_mid_attempt(alice, retention, receiver):
    # given a worker claimed the delivery (its lease) and died before posting; its job row is stuck
    endpoint(receiver.url)
    execute_refunds(alice, retention, 1)
    delivery = WebhookDelivery.objects.get()
    assert not isinstance(webhooks._claim(delivery.pk), webhooks.Outcome)
    delivery_jobs().update(status=TaskResultStatus.RUNNING)
    # when the sweep runs before the lease expires, it leaves the delivery alone
    assert webhooks.sweep().requeued == [] and run_jobs() == 0
    # and after the lease expired, it enqueues a new job, which delivers it
    report = webhook_sweep.call()
    assert report.startswith("0 delivery")
    assert webhooks.sweep(now=timezone.now() + webhooks.LEASE + timedelta(seconds=1)).requeued == [delivery.pk]
    WebhookDelivery.objects.filter(pk=delivery.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    run_jobs()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2 and len(receiver.received) == 1


def test_the_sweep_does_not_duplicate_a_job_that_is_only_waiting_in_a_busy_queue(alice, retention):
    # given a delivery due long ago whose job still waits in the queue (the workers are behind)
    endpoint("https://billing.example.test/h")
    execute_refunds(alice, retention, 1)
    # when the sweep runs, then it adds nothing
    assert webhooks.sweep(now=timezone.now() + timedelta(minutes=10)).requeued == []
    assert delivery_jobs().count() == 1
    # but when that job row was lost, it enqueues one
    delivery_jobs().delete()
    assert len(webhooks.sweep(now=timezone.now() + timedelta(minutes=10)).requeued) == 1
    assert delivery_jobs().count() == 1


def test_the_sweep_fans_out_a_message_that_has_no_delivery(alice, retention, receiver):
    # given a message written without its deliveries (a bulk import, say) and an endpoint
    (decision,) = execute_refunds(alice, retention, 1)  # settled at once: nobody subscribed then
    endpoint(receiver.url)
    OutboxMessage.objects.filter(decision=decision).update(delivered_at=None, last_error="")
    # when the sweep runs
    assert webhooks.sweep().fanned_out == 1
    run_jobs()
    # then the message went out once
    assert len(receiver.received) == 1 and OutboxMessage.objects.get().delivered_at is not None
    assert webhooks.sweep().fanned_out == 0


def test_the_operator_command_attempts_due_deliveries_at_once(alice, retention, receiver):
    import io

    endpoint(receiver.url)
    execute_refunds(alice, retention, 2)
    output = io.StringIO()
    call_command("deliver_webhooks", "--once", stdout=output)
    assert "2 delivered, 0 failed" in output.getvalue() and len(receiver.received) == 2
    # the jobs of those deliveries find nothing left to do
    run_jobs()
    assert len(receiver.received) == 2 and not failed_jobs().exists()


def test_the_command_rejects_nonsense_options(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("deliver_webhooks", "--once", "--timeout", "0")
    with pytest.raises(CommandError):
        call_command("deliver_webhooks", "--once", "--limit", "0")


# --- two workers at once (PostgreSQL) -------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent transactions")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_jobs_for_the_same_delivery_at_once_post_once(alice, retention, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with Receiver(delay=0.3) as slow:
        # given one delivery, and its job run twice at the same instant (a duplicate from a sweep)
        endpoint(slow.url)
        execute_refunds(alice, retention, 1)
        delivery = WebhookDelivery.objects.get()
        barrier = threading.Barrier(2)
        outcomes, errors = [], []

        def worker():
            try:
                barrier.wait(timeout=30)
                outcomes.append(webhook_deliver.call(delivery.pk))
            except BaseException as error:  # reported to the main thread
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
    # then the endpoint got one POST, and one job says the other had it
    assert len(slow.received) == 1
    assert sorted(outcome.split(" ")[0] for outcome in outcomes) == ["delivered", "in"], outcomes
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
