"""Deliver executed decisions to integrators' webhook endpoints: one job per delivery, at least once.

Fan-out: `authority.services.integration.outbox_message_publish` writes a decision's outbox message
with one delivery per active endpoint subscribed to its topic (no topics: every topic) and one
`authority.jobs.webhook_deliver` job per delivery, in the decision's transaction. A message nobody
subscribes to is settled at once.

An attempt (`attempt`, what the job runs):

1. Claim, in a short transaction holding the endpoint's row lock (FOR NO KEY UPDATE; see
   authority/lock_objects.py): the delivery must be pending, due, not leased, and its endpoint
   active. It is then leased for LEASE and its attempt counted. Every claim of an endpoint's
   deliveries takes that lock, so two jobs for one delivery never both POST, and the cap below is
   exact.
2. POST outside any transaction, signed in the Standard Webhooks format (authority/standard_webhooks.py),
   no redirects followed, DEFAULT_TIMEOUT seconds at most.
3. Record, only while the lease is still this attempt's: a 2xx answer delivers it; anything else
   schedules the next attempt (`H2H_WEBHOOK_BACKOFF_SECONDS`, default 30 s, doubling, at most an
   hour, plus up to 10 % jitter) as a job with `run_after`; after `H2H_WEBHOOK_MAX_ATTEMPTS`
   (default 8) the delivery is dead: a dead letter, listed in the admin, which retries it through
   `webhook_delivery_retry`.

Endpoint health: a failed attempt adds one to the endpoint's `consecutive_failures`, a success sets
it to 0. At `H2H_WEBHOOK_DISABLE_AFTER` (default 20) the endpoint is disabled (an audited system
action). Its deliveries are not attempted meanwhile and not dead-lettered: they wait, pending, with
their attempts unchanged, and go out when an administrator saves the endpoint active again (the
next sweep enqueues them).

Concurrency is bounded twice. The number of worker processes consuming the `webhooks` queue bounds
the POSTs in flight overall. Per endpoint, at most `H2H_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT` (default
4) attempts are leased at once: a job that finds its endpoint at the cap moves the delivery's next
attempt BUSY_DELAY later and enqueues itself for then, without counting an attempt.

A worker that dies mid-attempt loses its lease, and a job row can be lost; `sweep` (the job
`authority.jobs.webhook_sweep`, every minute) re-enqueues every pending delivery of an active
endpoint that is due (by more than SWEEP_GRACE) and neither leased nor waiting in the job queue,
and fans out any unsettled outbox message that has no delivery. Hence at least once: receivers
deduplicate by the `webhook-id` header (the message id, the same on every retry and to every
endpoint).

`deliver_due` attempts the due deliveries synchronously, in this process (`manage.py
deliver_webhooks --once`, an operator's tool); it claims exactly as the jobs do.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from authority import standard_webhooks
from authority.lock_objects import outbox_message_qs_skip_locked, webhook_endpoint_qs_lock_for_delivery
from authority.models import DeliveryStatus, OutboxMessage, WebhookDelivery, WebhookEndpoint
from authority.services.integration import (
    messages_without_deliveries,
    webhook_delivery_schedule,
    webhook_endpoint_disable,
    webhook_fan_out,
)
from h2h_core.backoff import backoff_delay
from h2h_core.jobs import in_database

logger = logging.getLogger("h2h.webhooks")

USER_AGENT = "H2H-Webhooks/2"
DEFAULT_TIMEOUT = 10.0
#: How long a claimed delivery is reserved for its attempt: well above the request timeout.
LEASE = timedelta(minutes=2)
#: How long a job waits when its endpoint already has its maximum of attempts in flight.
BUSY_DELAY = timedelta(seconds=5)
#: A due delivery is left to its job this long before the sweep treats it as orphaned.
SWEEP_GRACE = timedelta(seconds=60)
SWEEP_BATCH = 500
BACKOFF_CAP_SECONDS = 3600
ERROR_TEXT_MAX = 500


def max_attempts() -> int:
    return max(1, int(getattr(settings, "H2H_WEBHOOK_MAX_ATTEMPTS", 8)))


def disable_after() -> int:
    return max(1, int(getattr(settings, "H2H_WEBHOOK_DISABLE_AFTER", 20)))


def max_in_flight() -> int:
    return max(1, int(getattr(settings, "H2H_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", 4)))


def retry_delay(attempts: int) -> timedelta:
    """How long after failed attempt number `attempts` the next one is due."""
    return backoff_delay(attempts, base=float(getattr(settings, "H2H_WEBHOOK_BACKOFF_SECONDS", 30)),
                         cap=BACKOFF_CAP_SECONDS)


def request_body(message: OutboxMessage) -> bytes:
    """Return the exact bytes POSTed for a message (compact JSON, keys sorted; the same on every retry)."""
    document = {
        "id": message.pk,
        "topic": message.topic,
        "created_at": message.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
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


@dataclass(frozen=True)
class Outcome:
    """What one job did: `kind` is delivered, failed (retried later), dead, or skipped (nothing sent)."""

    kind: str
    text: str


@dataclass(frozen=True)
class _Claim:
    delivery: WebhookDelivery
    endpoint: WebhookEndpoint
    attempt: int


def _claim(delivery_id: int) -> _Claim | Outcome:
    """Lease a due delivery for one attempt, or say why not (and reschedule it when its endpoint is busy)."""
    with transaction.atomic():
        now = timezone.now()
        endpoint = webhook_endpoint_qs_lock_for_delivery().filter(deliveries__pk=delivery_id).first()
        delivery = WebhookDelivery.objects.select_related("message").filter(pk=delivery_id).first()
        if endpoint is None or delivery is None:
            return Outcome("skipped", "gone")
        if delivery.status != DeliveryStatus.PENDING:
            return Outcome("skipped", f"already {delivery.status}")
        if not endpoint.active:
            return Outcome("skipped", "waiting: the endpoint is disabled")
        if delivery.leased_until and delivery.leased_until > now:
            return Outcome("skipped", "in flight in another job")
        if delivery.next_attempt_at > now:
            return Outcome("skipped", f"not due before {delivery.next_attempt_at.isoformat()}")
        in_flight = WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING,
                                                   leased_until__gt=now).count()
        if in_flight >= max_in_flight():
            later = now + BUSY_DELAY
            WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=later)
            webhook_delivery_schedule(delivery.pk, at=later)
            return Outcome("skipped", f"endpoint busy: rescheduled at {later.isoformat()}")
        delivery.attempts += 1
        delivery.leased_until, delivery.last_attempt_at = now + LEASE, now
        delivery.save(update_fields=["attempts", "leased_until", "last_attempt_at"])
    return _Claim(delivery=delivery, endpoint=endpoint, attempt=delivery.attempts)


def _post(claim: _Claim, *, timeout: float) -> tuple[bool, int | None, str]:
    body = request_body(claim.delivery.message)
    try:
        headers = standard_webhooks.sign(secret=claim.endpoint.secret, msg_id=str(claim.delivery.message_id),
                                         timestamp=int(time.time()), body=body)
        status = post(claim.endpoint.url, body, {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                                                 **headers}, timeout=timeout)
    except (OSError, ValueError) as error:
        return False, None, f"{type(error).__name__}: {error}"[:ERROR_TEXT_MAX]
    if 200 <= status < 300:
        return True, status, ""
    return False, status, f"HTTP {status}"


def _record(claim: _Claim, *, ok: bool, status: int | None, error: str) -> Outcome:
    """Write an attempt's outcome, if its lease still stands; count it against the endpoint."""
    delivery = claim.delivery
    with transaction.atomic():
        now = timezone.now()
        endpoint = webhook_endpoint_qs_lock_for_delivery().get(pk=claim.endpoint.pk)
        mine = WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=claim.attempt)
        if ok:
            recorded = mine.update(status=DeliveryStatus.DELIVERED, delivered_at=now, leased_until=None,
                                   last_status=status, last_error="")
            if endpoint.consecutive_failures:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
            outcome = Outcome("delivered", f"delivered on attempt {claim.attempt}")
        else:
            if claim.attempt >= max_attempts():
                recorded = mine.update(status=DeliveryStatus.DEAD, dead_at=now, leased_until=None, last_status=status,
                                       last_error=error)
                outcome = Outcome("dead", f"dead after {claim.attempt} attempts: {error}")
            else:
                later = now + retry_delay(claim.attempt)
                recorded = mine.update(next_attempt_at=later, leased_until=None, last_status=status, last_error=error)
                if recorded:
                    webhook_delivery_schedule(delivery.pk, at=later)
                outcome = Outcome("failed", f"attempt {claim.attempt} failed ({error}); next at {later.isoformat()}")
            OutboxMessage.objects.filter(pk=delivery.message_id).update(
                last_error=f"{endpoint.name}: {error}"[:ERROR_TEXT_MAX])
            endpoint.consecutive_failures += 1
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=F("consecutive_failures") + 1)
            if endpoint.active and endpoint.consecutive_failures >= disable_after():
                webhook_endpoint_disable(endpoint=endpoint, at=now, reason=(
                    f"{endpoint.consecutive_failures} consecutive failed attempts; the last: {error}"))
    if not recorded:
        outcome = Outcome(outcome.kind, f"{outcome.text}; not recorded: the lease expired and another job took over")
    if ok:
        # After the commit above, so the last delivery of a message to finish always sees the others done.
        settled = WebhookDelivery.objects.filter(message=OuterRef("pk")).exclude(status=DeliveryStatus.DELIVERED)
        OutboxMessage.objects.filter(pk=delivery.message_id, delivered_at__isnull=True).exclude(
            Exists(settled)).update(delivered_at=timezone.now(), last_error="")
    else:
        logger.warning("Webhook delivery %s to %s: %s", delivery.pk, claim.endpoint.name, outcome.text)
    return outcome


def attempt(delivery_id: int, *, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Attempt one delivery if it is due and free (claim, POST, record); return what happened."""
    claim = _claim(delivery_id)
    if isinstance(claim, Outcome):
        return claim
    ok, status, error = _post(claim, timeout=timeout)
    return _record(claim, ok=ok, status=status, error=error)


def _orphaned(now: datetime):
    """Pending deliveries of active endpoints, due for a while, not leased: their job should have run."""
    return WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, endpoint__active=True, next_attempt_at__lte=now - SWEEP_GRACE,
    ).filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))


def _waiting_jobs(delivery_ids: list[int]) -> set[int]:
    """Of these deliveries, those with a job still waiting in the database queue."""
    from django_tasks_db.models import DBTaskResult

    from authority.jobs import webhook_deliver
    from h2h_core.jobs import TaskResultStatus

    rows = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=webhook_deliver.module_path,
                                       args_kwargs__args__0__in=delivery_ids)
    return {row["args_kwargs"]["args"][0] for row in rows.values("args_kwargs")}


@dataclass
class SweepReport:
    requeued: list[int] = field(default_factory=list)
    fanned_out: int = 0

    def summary(self) -> str:
        return f"{len(self.requeued)} delivery(ies) re-enqueued, {self.fanned_out} message(s) fanned out"


def sweep(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> SweepReport:
    """Re-enqueue due deliveries that no job will attempt; fan out messages that have no delivery."""
    now = now or timezone.now()
    report = SweepReport()
    candidates = list(_orphaned(now).order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:batch])
    # With jobs in the database a waiting job is visible: a queue that is merely behind is left alone.
    waiting = _waiting_jobs(candidates) if candidates and in_database() else set()
    with transaction.atomic():
        for delivery_id in candidates:
            if delivery_id not in waiting:
                webhook_delivery_schedule(delivery_id)
                report.requeued.append(delivery_id)
    with transaction.atomic():
        for message in outbox_message_qs_skip_locked().filter(pk__in=messages_without_deliveries())[:batch]:
            webhook_fan_out(message=message, at=now)
            report.fanned_out += 1
    if report.requeued or report.fanned_out:
        logger.warning("Webhook sweep: %s", report.summary())
    return report


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.delivered} delivered, {self.failed} failed, {self.skipped} skipped"


def deliver_due(*, timeout: float = DEFAULT_TIMEOUT, limit: int = 1000) -> DeliveryReport:
    """Attempt every due delivery now, in this process, one after the other (an operator's tool).

    Each attempt claims its delivery as a job would, so running this beside the workers never
    sends one twice; the jobs of what it delivered find nothing to do.
    """
    report = DeliveryReport()
    now = timezone.now()
    due = (WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, endpoint__active=True,
                                          next_attempt_at__lte=now)
           .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
           .order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    for delivery_id in list(due):
        outcome = attempt(delivery_id, timeout=timeout)
        if outcome.kind == "delivered":
            report.delivered += 1
        elif outcome.kind == "skipped":
            report.skipped += 1
        else:
            report.failed += 1
            report.errors.append(f"delivery {delivery_id}: {outcome.text}")
    return report
