"""The row locks of the authority domain: which rows, in which order, and never more rows than named.

Each helper orders by primary key and locks `of=("self",)`, so a `select_related("kind")` reads
the authority kind without locking it: requests and grant changes of one kind never queue behind
each other, and a foreign-key check on the kind (every new request, grant and decision makes one)
never waits for them.

Lock order (the whole order is in `h2h_core.lock_objects`): the workflow process row, the case
row, then the rows below, then the usage counters in key order (then, on SQLite only, the audit
head; on PostgreSQL the sealer takes it after commit):

- an authority request (approve, reject, expire, offer to the fallback pool, start its flow);
- grant versions in key order, older before newer: confirming locks the version it replaces,
  then the pending change; ending locks the version, then its pending changes (which it voids);
- a delegation, a webhook endpoint, a decision (its reversal) (each locked alone).

Usage counters are not locked by a SELECT: each is raised by one conditional UPDATE, in key order
(`authority.services.usage.usage_consume`), which takes the row lock itself.

The webhook deliverers (authority/webhooks.py) lock one endpoint row FOR NO KEY UPDATE while they
claim or record an attempt of one of its deliveries (so the per-endpoint cap is exact and one
delivery is never claimed twice), then update that delivery, then (when they disable the endpoint)
the audit head. NO KEY: a decision that inserts a delivery takes a KEY SHARE lock on the endpoint
for its foreign key, and must never wait for a deliverer. The webhook sweep claims outbox messages
with SKIP LOCKED: sweeps never wait for each other.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from .models import AuthorityRequest, Decision, Delegation, Grant, OutboxMessage, WebhookDelivery, WebhookEndpoint


def authority_request_qs_select_for_update() -> QuerySet[AuthorityRequest]:
    """Return authority requests to lock, in key order; the kind and case joined stay unlocked."""
    return AuthorityRequest.objects.order_by("pk").select_for_update(of=("self",))


def grant_qs_select_for_update() -> QuerySet[Grant]:
    """Return grant versions to lock, in key order; the kind (and superseded version) joined stay unlocked."""
    return Grant.objects.order_by("pk").select_for_update(of=("self",))


def decision_qs_select_for_update() -> QuerySet[Decision]:
    """Return decisions to lock (a reversal), in key order; the case and kind joined stay unlocked."""
    return Decision.objects.order_by("pk").select_for_update(of=("self",))


def delegation_qs_select_for_update() -> QuerySet[Delegation]:
    return Delegation.objects.order_by("pk").select_for_update(of=("self",))


def webhook_endpoint_qs_select_for_update() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("pk").select_for_update(of=("self",))


def webhook_endpoint_qs_lock_for_delivery() -> QuerySet[WebhookEndpoint]:
    """Return endpoints to lock while an attempt of one of their deliveries is claimed or recorded."""
    return WebhookEndpoint.objects.order_by("pk").select_for_update(of=("self",), no_key=True)


def webhook_delivery_qs_select_for_update() -> QuerySet[WebhookDelivery]:
    """Return deliveries to lock (an administrator's retry), in key order."""
    return WebhookDelivery.objects.order_by("pk").select_for_update(of=("self",))


def _skip_locked(queryset: QuerySet) -> QuerySet:
    # PostgreSQL; SQLite has no row locks (one writer at a time) and Django ignores the clause there.
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset


def outbox_message_qs_skip_locked() -> QuerySet[OutboxMessage]:
    """Return outbox messages to fan out: the rows another sweep holds are skipped, not waited for."""
    return _skip_locked(OutboxMessage.objects.order_by("pk"))
