"""Housekeeping of the job queue and of short-lived records, run as periodic jobs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from authority.models import IdempotencyRecord
from edges.models import FormToken
from edges.web.claim_locks import claim_lock_files_purge
from h2h_core.jobs import TaskResultStatus

from .models import PeriodicRun

#: A job still "running" after this long lost its worker (killed, machine gone): jobs here take seconds.
ABANDONED_AFTER = timedelta(minutes=30)


def jobs_upkeep() -> dict:
    """Mark jobs whose worker vanished as failed, and forget finished jobs and runs after a week.

    A job whose worker was killed stays "running" in the queue for ever. It is not run again from
    here: every job nudges a domain row, and the domain's own sweep (webhooks, mail, timers)
    re-enqueues what that row still needs. Marking it failed keeps the queue's numbers honest.
    """
    now = timezone.now()
    abandoned = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, started_at__lt=now - ABANDONED_AFTER
                                            ).update(status=TaskResultStatus.FAILED, finished_at=now,
                                                     exception_class_path="h2h.WorkerLost",
                                                     traceback="The worker running this job stopped answering.")
    keep = now - timedelta(days=settings.H2H_JOB_RESULTS_DAYS)
    pruned, _ = DBTaskResult.objects.filter(
        status__in=[TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED], finished_at__lt=keep).delete()
    runs, _ = PeriodicRun.objects.filter(enqueued_at__lt=keep).delete()
    return {"abandoned": abandoned, "jobs_pruned": pruned, "runs_pruned": runs}


def retention_purge(*, days: float | None = None) -> dict:
    """Delete API idempotency records and claimed web form tokens older than the retention period.

    Also remove the idempotency lock files nobody holds: a process killed mid-request leaves one.
    """
    days = settings.H2H_SHORT_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    records, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    tokens, _ = FormToken.objects.filter(created_at__lt=cutoff).delete()
    return {"idempotency_records": records, "form_tokens": tokens, "lock_files": claim_lock_files_purge()}
