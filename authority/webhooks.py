"""Deliver executed decisions from the outbox to integrators' webhook endpoints, at least once.

Two steps, each safe to run on several machines at once:

1. Fan-out: every outbox message not yet handed on gets one WebhookDelivery per active endpoint
   subscribed to its topic (an endpoint with no topics takes every topic). Messages are claimed
   with `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, and the (message, endpoint) unique
   constraint makes a repeated fan-out harmless. A message nobody subscribes to is marked
   delivered at once (there is nobody to tell).
2. Delivery: due deliveries are claimed in a short transaction (skip-locked again) by pushing
   their next attempt a lease into the future, then POSTed outside any transaction. Success (2xx)
   sets `delivered_at`; anything else schedules a retry with exponential backoff (30 s, 1 min,
   2 min … at most 1 hour). A deliverer that dies mid-flight loses only its lease: the delivery
   becomes due again, hence at least once. Receivers deduplicate by the `X-H2H-Delivery` header.

An outbox message's `delivered_at` is set when every one of its deliveries has succeeded.

Each request is a JSON body signed with the endpoint's secret:

    X-H2H-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the endpoint secret>
    X-H2H-Timestamp: <Unix seconds when sent; also in the body as "sent_at", so it is signed>

On SQLite there is one writer at a time, so the claim is safe there too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from authority.lock_objects import outbox_message_qs_skip_locked, webhook_delivery_qs_skip_locked
from authority.models import OutboxMessage, WebhookDelivery, WebhookEndpoint
from authority.services.decisions import outbox_retry_delay

logger = logging.getLogger("h2h.webhooks")

SIGNATURE_HEADER = "X-H2H-Signature"
TIMESTAMP_HEADER = "X-H2H-Timestamp"
DELIVERY_HEADER = "X-H2H-Delivery"
TOPIC_HEADER = "X-H2H-Topic"
USER_AGENT = "H2H-Webhooks/1"
DEFAULT_TIMEOUT = 10.0
#: How long a claimed delivery is reserved for its deliverer: well above the request timeout.
LEASE = timedelta(minutes=2)
BATCH = 50
ERROR_TEXT_MAX = 500


def sign(body: bytes, secret: str) -> str:
    """Return the signature header value for `body`: `sha256=` and the hex HMAC-SHA256 keyed with `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, secret: str, header: str) -> bool:
    """Check a signature header in constant time (what a receiver does)."""
    return hmac.compare_digest(sign(body, secret), header or "")


@dataclass
class DeliveryReport:
    fanned_out: int = 0
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DeliveryReport) -> None:
        self.fanned_out += other.fanned_out
        self.delivered += other.delivered
        self.failed += other.failed
        self.errors.extend(other.errors)

    def summary(self) -> str:
        return f"{self.fanned_out} message(s) fanned out, {self.delivered} delivered, {self.failed} failed"


def _subscribed(endpoint: WebhookEndpoint, topic: str) -> bool:
    return not endpoint.topics or topic in endpoint.topics


def fan_out(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Create the deliveries of messages not yet handed on; return how many messages were handled."""
    now = now or timezone.now()
    endpoints = list(WebhookEndpoint.objects.filter(active=True).order_by("pk"))
    has_deliveries = WebhookDelivery.objects.filter(message=OuterRef("pk"))
    with transaction.atomic():
        messages = list(
            outbox_message_qs_skip_locked().filter(delivered_at__isnull=True).exclude(Exists(has_deliveries))
            .order_by("pk")[:batch]
        )
        rows, nobody = [], []
        for message in messages:
            targets = [endpoint for endpoint in endpoints if _subscribed(endpoint, message.topic)]
            rows += [WebhookDelivery(message=message, endpoint=endpoint, next_attempt_at=now) for endpoint in targets]
            if not targets:
                nobody.append(message.pk)
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
        if nobody:
            OutboxMessage.objects.filter(pk__in=nobody).update(delivered_at=now,
                                                               last_error="No active endpoint subscribed.")
    return len(messages)


def _claim(*, now: datetime, batch: int) -> list[WebhookDelivery]:
    """Take up to `batch` due deliveries for this deliverer by leasing them; commit at once."""
    with transaction.atomic():
        due = list(
            webhook_delivery_qs_skip_locked().filter(delivered_at__isnull=True, next_attempt_at__lte=now,
                                                     endpoint__active=True)
            .order_by("next_attempt_at", "pk")[:batch]
        )
        if not due:
            return []
        for delivery in due:
            delivery.attempts += 1
            delivery.next_attempt_at = now + LEASE
        WebhookDelivery.objects.bulk_update(due, ["attempts", "next_attempt_at"])
    return list(WebhookDelivery.objects.select_related("message", "endpoint").filter(pk__in=[d.pk for d in due])
                .order_by("next_attempt_at", "pk"))


def request_body(message: OutboxMessage, *, sent_at: datetime) -> bytes:
    """Return the exact bytes POSTed for a message (compact JSON, keys sorted)."""
    document = {
        "id": message.pk,
        "topic": message.topic,
        "created_at": message.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "sent_at": int(sent_at.timestamp()),
        "data": message.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that answers with a redirect has not received the message: treat 3xx as a failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    """POST `body` and return the HTTP status; raise OSError (URLError, timeout) when nothing answered."""
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"Only http and https endpoints are delivered to, not {url[:40]!r}.")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (scheme checked)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def _deliver_one(delivery: WebhookDelivery, *, timeout: float) -> tuple[bool, int | None, str]:
    sent_at = timezone.now()
    body = request_body(delivery.message, sent_at=sent_at)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(body, delivery.endpoint.secret),
        TIMESTAMP_HEADER: str(int(sent_at.timestamp())),
        DELIVERY_HEADER: str(delivery.pk),
        TOPIC_HEADER: delivery.message.topic,
    }
    try:
        status = post(delivery.endpoint.url, body, headers, timeout=timeout)
    except (OSError, ValueError) as error:
        return False, None, f"{type(error).__name__}: {error}"[:ERROR_TEXT_MAX]
    if 200 <= status < 300:
        return True, status, ""
    return False, status, f"HTTP {status}"


def _record(delivery: WebhookDelivery, *, ok: bool, status: int | None, error: str) -> None:
    now = timezone.now()
    if ok:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(delivered_at=now, last_status=status, last_error="")
        remaining = WebhookDelivery.objects.filter(message=OuterRef("pk"), delivered_at__isnull=True)
        # Runs after this delivery committed, so the last deliverer of a message always sees all of them done.
        OutboxMessage.objects.filter(pk=delivery.message_id, delivered_at__isnull=True).exclude(
            Exists(remaining)).update(delivered_at=now, last_error="")
        return
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=now + outbox_retry_delay(delivery.attempts), last_status=status, last_error=error
    )
    OutboxMessage.objects.filter(pk=delivery.message_id).update(last_error=f"{delivery.endpoint.name}: {error}"[
        :ERROR_TEXT_MAX])


def deliver_due(*, now: datetime | None = None, batch: int = BATCH, timeout: float = DEFAULT_TIMEOUT,
                max_batches: int | None = None) -> DeliveryReport:
    """Fan out new messages, then deliver every due delivery, batch after batch, until none is due."""
    report = DeliveryReport()
    started = now or timezone.now()
    while fanned := fan_out(now=started, batch=batch):
        report.fanned_out += fanned
    batches = 0
    while max_batches is None or batches < max_batches:
        claimed = _claim(now=now or timezone.now(), batch=batch)
        if not claimed:
            break
        batches += 1
        for delivery in claimed:
            ok, status, error = _deliver_one(delivery, timeout=timeout)
            _record(delivery, ok=ok, status=status, error=error)
            if ok:
                report.delivered += 1
            else:
                report.failed += 1
                report.errors.append(f"delivery {delivery.pk} to {delivery.endpoint.name}: {error}")
                logger.warning("Webhook delivery %s to %s failed (attempt %s): %s", delivery.pk,
                               delivery.endpoint.name, delivery.attempts, error)
    return report


def deliver_forever(*, interval: float, batch: int = BATCH, timeout: float = DEFAULT_TIMEOUT,
                    stop=lambda: False, on_report=None) -> None:
    """Deliver, sleep `interval` seconds, and again, until `stop()` says so (for `--loop`)."""
    while not stop():
        report = deliver_due(batch=batch, timeout=timeout)
        if on_report is not None:
            on_report(report)
        deadline = time.monotonic() + interval
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(0.2, interval))
