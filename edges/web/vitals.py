"""The operational figures of a running H2H, read from the database: health and metrics share them.

Every figure is a query against the shared database, so any app server answers the same, however
many there are (no per-process counters to add up). Each is one short query on an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from authority.models import AuthorityRequest, Decision, DeliveryStatus, RequestStatus, WebhookDelivery
from edges.worker.models import PeriodicRun
from edges.worker.schedule import last_finished
from h2h_core.audit.seal_lag import SealLag, seal_lag
from h2h_core.jobs import TaskResultStatus
from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead, MailStatus, OutboundMail
from workflows.selectors import last_timer_run


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())


@dataclass(frozen=True)
class Queue:
    ready: int
    oldest_ready_age: float | None
    running: int
    failed: int


def queue(now: datetime | None = None) -> Queue:
    """Jobs waiting, running and failed (failed within the retention window)."""
    now = now or timezone.now()
    ready = DBTaskResult.objects.ready()
    oldest = ready.aggregate(oldest=Min("enqueued_at"))["oldest"]
    return Queue(
        ready=ready.count(),
        oldest_ready_age=_age(oldest, now),
        running=DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).count(),
        failed=DBTaskResult.objects.filter(status=TaskResultStatus.FAILED).count(),
    )


@dataclass(frozen=True)
class Timers:
    last_sweep: datetime | None  # when the worker last swept the timers (whether or not one was due)
    last_fired: datetime | None  # when a timer last fired
    lag: float  # how late the most overdue timer is: 0 when every due timer has fired


def timers(now: datetime | None = None) -> Timers:
    now = now or timezone.now()
    sweep = last_finished("workflow-timers")
    overdue = Task.objects.filter(flow_task_type="TIMER", status=STATUS.SCHEDULED, scheduled__lte=now).aggregate(
        oldest=Min("scheduled"))["oldest"]
    return Timers(last_sweep=sweep.finished_at if sweep else None, last_fired=last_timer_run(),
                  lag=_age(overdue, now) or 0.0)


@dataclass(frozen=True)
class AuditSeal:
    head_seq: int
    sealed_seq: int  # the entry the newest signed checkpoint covers
    lag: float  # age of the oldest entry no checkpoint covers yet: 0 when the head is sealed


def audit_seal(now: datetime | None = None) -> AuditSeal:
    now = now or timezone.now()
    head = AuditHead.objects.order_by("pk").values_list("seq", flat=True).first() or 0
    sealed = AuditCheckpoint.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    oldest_unsealed = None
    if head > sealed:
        oldest_unsealed = AuditEvent.objects.filter(seq=sealed + 1).values_list("occurred_at", flat=True).first()
    return AuditSeal(head_seq=head, sealed_seq=sealed, lag=_age(oldest_unsealed, now) or 0.0)


def audit_sealer(now: datetime | None = None) -> SealLag:
    """Events waiting for their chain link, and how long the last sealed ones waited (h2h_core/audit/sealer.py)."""
    return seal_lag(now=now)


def decisions_executed() -> int:
    return Decision.objects.count()


def decisions_refused() -> int:
    return AuditEvent.objects.filter(action="decision.refused").count()


def requests_open() -> int:
    return AuthorityRequest.objects.filter(status=RequestStatus.OPEN).count()


def periodic_failures() -> dict[str, int]:
    """Failed runs of each periodic job within the retention window."""
    failed = PeriodicRun.objects.filter(outcome=PeriodicRun.Outcome.FAILED).values_list("name", flat=True)
    counts: dict[str, int] = {}
    for name in failed:
        counts[name] = counts.get(name, 0) + 1
    return counts


def _by_status(queryset, states) -> dict[str, int]:
    counts = dict(queryset.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    return {state: counts.get(state, 0) for state in states}


def webhooks() -> dict[str, int]:
    """Webhook deliveries by state: pending is the backlog, dead the dead letters."""
    return _by_status(WebhookDelivery.objects.order_by(), DeliveryStatus.values)


def mail() -> dict[str, int]:
    """Outgoing mail by state: pending is the backlog, failed what gave up."""
    return _by_status(OutboundMail.objects.order_by(), MailStatus.values)
