"""Integrators: the outbox and its webhook deliveries, and the endpoints (audited; the secret never is).

`outbox_message_publish` is the one place an outbox message is written, and it fans the message
out in the same transaction: one delivery per active endpoint subscribed to its topic, and one
`webhook_deliver` job per delivery (see authority/webhooks.py for what a job does).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from authority.lock_objects import (
    webhook_delivery_qs_select_for_update,
    webhook_endpoint_qs_select_for_update,
)
from authority.models import Decision, DeliveryStatus, OutboxMessage, WebhookDelivery, WebhookEndpoint
from h2h_core.audit import audit_record
from h2h_core.errors import DomainError, NotAllowed
from h2h_core.jobs import enqueue
from h2h_core.prepared import PreparedQuery
from h2h_core.prepared_writes import InsertBatch, PreparedInsert
from h2h_core.transactions import service_atomic

NOBODY_SUBSCRIBED = "No active endpoint subscribed."
#: The endpoint columns an administrator edits; the rest is the deliverers' bookkeeping.
ENDPOINT_SETTINGS = ["name", "url", "secret", "topics", "active"]
ENDPOINT_HEALTH = ["consecutive_failures", "disabled_at", "disabled_reason"]


def webhook_delivery_schedule(delivery_id: int, *, at: datetime | None = None) -> None:
    """Enqueue the job that attempts a delivery (at `at`, or now), in the caller's transaction."""
    from authority.jobs import webhook_deliver  # the job wraps authority.webhooks, which imports this module

    enqueue(webhook_deliver, delivery_id, run_after=at)


def subscribed(endpoint: WebhookEndpoint, topic: str) -> bool:
    """Every topic when none are listed; a listed topic includes its sub-topics (a refund's reversal)."""
    return not endpoint.topics or any(topic == listed or topic.startswith(f"{listed}.") for listed in endpoint.topics)


def webhook_fan_out(*, message: OutboxMessage, at: datetime) -> list[int]:
    """Create a message's deliveries and their jobs; settle it at once when nobody subscribes.

    Runs in the caller's transaction; returns the new deliveries' ids.
    """
    endpoints = _subscribers(message.topic)
    if not endpoints:
        OutboxMessage.objects.filter(pk=message.pk).update(delivered_at=at, last_error=NOBODY_SUBSCRIBED)
        return []
    return _deliver(message, endpoints, at=at)


def _active_endpoints(shape) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(active=True).only("pk", "topics").order_by("pk")


# Read by every decision's outbox message: compiled once per process (h2h_core.prepared). Not cached
# beyond that: an endpoint switched on must get the very next message.
_ACTIVE_ENDPOINTS = PreparedQuery(_active_endpoints)


def _subscribers(topic: str) -> list[WebhookEndpoint]:
    return [endpoint for endpoint in _ACTIVE_ENDPOINTS.all() if subscribed(endpoint, topic)]


def _deliver(message: OutboxMessage, endpoints: list[WebhookEndpoint], *, at: datetime) -> list[int]:
    deliveries = WebhookDelivery.objects.bulk_create([
        WebhookDelivery(message=message, endpoint=endpoint, created_at=at, next_attempt_at=at)
        for endpoint in endpoints
    ])
    for delivery in deliveries:
        webhook_delivery_schedule(delivery.pk)
    return [delivery.pk for delivery in deliveries]


# Written by every decision: compiled once per process (h2h_core.prepared_writes).
_NEW_MESSAGE = PreparedInsert(OutboxMessage)


def outbox_message_publish(*, decision: Decision, topic: str, payload: dict, at: datetime,
                           batch: InsertBatch | None = None) -> OutboxMessage:
    """Write what integrators must be told about an executed decision, and its deliveries and jobs.

    Part of the decision's transaction: the message, its deliveries and their jobs commit with the
    decision or not at all. With `batch`, a message nobody subscribes to is written with the batch
    (its key is set when the batch ends); one with subscribers is written at once, for its deliveries.
    """
    # Subscribers first: a message nobody subscribes to is written settled, not written and then settled.
    endpoints = _subscribers(topic)
    settled = {} if endpoints else {"delivered_at": at, "last_error": NOBODY_SUBSCRIBED}
    message = OutboxMessage(topic=topic, decision=decision, payload=payload, created_at=at, next_attempt_at=at,
                            **settled)
    if batch is not None and not endpoints:
        return batch.add(_NEW_MESSAGE, message)
    _NEW_MESSAGE.insert(message)
    if endpoints:
        _deliver(message, endpoints, at=at)
    return message


def messages_without_deliveries():
    """Outbox messages not settled that have no delivery (fanned out by the sweep)."""
    return OutboxMessage.objects.filter(delivered_at__isnull=True).exclude(
        Exists(WebhookDelivery.objects.filter(message=OuterRef("pk"))))


def _endpoint_snapshot(endpoint: WebhookEndpoint) -> dict:
    return {"name": endpoint.name, "url": endpoint.url, "topics": endpoint.topics, "active": endpoint.active,
            "disabled_at": endpoint.disabled_at, "disabled_reason": endpoint.disabled_reason}


def webhook_endpoint_save(*, actor, endpoint: WebhookEndpoint, secret_changed: bool) -> WebhookEndpoint:
    """Create or change an endpoint (superusers only); validates it and records before and after.

    Saving a disabled endpoint active re-enables it: its failure count starts again, and its waiting
    deliveries go out (the sweep enqueues them).
    """
    if not actor.is_superuser:
        raise NotAllowed("Only administrators configure webhook endpoints.")
    endpoint.full_clean()
    with service_atomic():
        before = None
        fields = list(ENDPOINT_SETTINGS)
        if endpoint.pk:
            stored = webhook_endpoint_qs_select_for_update().get(pk=endpoint.pk)
            before = _endpoint_snapshot(stored)
            # The form's copy of the health columns may be stale (a job counts failures meanwhile).
            for name in ENDPOINT_HEALTH:
                setattr(endpoint, name, getattr(stored, name))
            if endpoint.active and not stored.active:
                endpoint.consecutive_failures, endpoint.disabled_at, endpoint.disabled_reason = 0, None, ""
                fields += ENDPOINT_HEALTH
            endpoint.save(update_fields=fields)
        else:
            endpoint.save()
        audit_record(actor=actor, action="webhook_endpoint.changed" if before else "webhook_endpoint.created",
                     object_type="webhook_endpoint", object_id=endpoint.pk, before=before,
                     after={**_endpoint_snapshot(endpoint), "secret_changed": secret_changed})
    return endpoint


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, at: datetime) -> None:
    """Disable an endpoint that keeps failing (a system action, audited); its deliveries wait.

    Called by the deliverer with the endpoint's row already locked, inside its transaction.
    """
    before = _endpoint_snapshot(endpoint)
    endpoint.active, endpoint.disabled_at, endpoint.disabled_reason = False, at, reason[:300]
    endpoint.save(update_fields=["active", "disabled_at", "disabled_reason"])
    audit_record(actor=None, action="webhook_endpoint.disabled", object_type="webhook_endpoint",
                 object_id=endpoint.pk, before=before, after=_endpoint_snapshot(endpoint), reason=reason)


def _delivery_snapshot(delivery: WebhookDelivery) -> dict:
    return {"message_id": delivery.message_id, "endpoint_id": delivery.endpoint_id, "status": delivery.status,
            "attempts": delivery.attempts, "next_attempt_at": delivery.next_attempt_at,
            "last_status": delivery.last_status, "last_error": delivery.last_error, "dead_at": delivery.dead_at}


def webhook_delivery_retry(*, actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Give a dead delivery a new round of attempts, starting now (superusers only; audited).

    If its endpoint is disabled, the delivery waits until the endpoint is enabled again.
    """
    if not actor.is_superuser:
        raise NotAllowed("Only administrators retry webhook deliveries.")
    with service_atomic():
        delivery = webhook_delivery_qs_select_for_update().get(pk=delivery.pk)
        if delivery.status != DeliveryStatus.DEAD:
            raise DomainError(f"Delivery {delivery.pk} is {delivery.get_status_display().lower()}, not dead: "
                              "only dead deliveries are retried.")
        before = _delivery_snapshot(delivery)
        now = timezone.now()
        delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.PENDING, 0, now
        delivery.dead_at = delivery.leased_until = None
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "dead_at", "leased_until"])
        webhook_delivery_schedule(delivery.pk)
        audit_record(actor=actor, action="webhook_delivery.retried", object_type="webhook_delivery",
                     object_id=delivery.pk, before=before, after=_delivery_snapshot(delivery))
    return delivery
