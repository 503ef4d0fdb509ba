"""The periodic jobs, and the one function every worker calls to enqueue those that are due.

Every worker runs a scheduler thread that calls `schedule_due()` every few seconds. For each entry
of `SCHEDULE` it computes the current slot (time aligned to the entry's period) and inserts a
`PeriodicRun` for it; the (name, slot) constraint lets exactly one insert win whatever the number of
workers and machines, and the winner enqueues the `periodic_run` job in the same transaction. The
job takes the job's lease (so two runs of one job never overlap), calls the function, and records
the outcome on the row, which /healthz/ and /metrics/ read.

Periods are short on purpose: a sweep that finds nothing due costs one or two queries, and the
issue this answers is "a breach shows within a minute". Each function is the domain's own
(the layers below never know they are scheduled).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from authority.jobs import webhook_sweep
from edges.auditor.jobs import export_files_expire
from h2h_core.api_tokens import api_tokens_purge
from h2h_core.audit.jobs import audit_checkpoint_sign, chain_verification_scheduled
from h2h_core.jobs import enqueue, task
from h2h_core.mail import mail_sweep
from h2h_core.presence import case_presence_purge
from workflows.timers import timers_fire

from . import upkeep
from .models import PeriodicLease, PeriodicRun

logger = logging.getLogger("h2h.worker")


@dataclass(frozen=True)
class Periodic:
    name: str
    every: timedelta
    run: Callable[[], Any]  # returns a JSON-serialisable summary
    #: How long one run may hold the job before another may start (a killed worker's lease expires).
    lease: timedelta = timedelta(minutes=10)


MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def _schedule() -> tuple[Periodic, ...]:
    return (
        # Service levels, approval windows, follow-up: a breach shows within a minute.
        Periodic("workflow-timers", timedelta(seconds=settings.H2H_TIMER_SWEEP_SECONDS), timers_fire),
        # Deliveries and mail whose job was lost (a killed worker) go out again.
        Periodic("webhook-sweep", MINUTE, webhook_sweep.call),
        Periodic("mail-sweep", MINUTE, mail_sweep.call),
        # Seal the audit chain's head, then check what was added since the last verified checkpoint;
        # once a day the whole chain from its first entry.
        Periodic("audit-checkpoint", HOUR, audit_checkpoint_sign.call),
        Periodic("audit-verify", HOUR, lambda: chain_verification_scheduled.call(full=False)),
        Periodic("audit-verify-full", DAY, lambda: chain_verification_scheduled.call(full=True)),
        Periodic("export-cleanup", DAY, export_files_expire),
        Periodic("presence-purge", HOUR, case_presence_purge),
        Periodic("api-token-purge", DAY, api_tokens_purge.call),
        Periodic("jobs-upkeep", HOUR, upkeep.jobs_upkeep),
        Periodic("retention", DAY, upkeep.retention_purge),
    )


def schedule() -> dict[str, Periodic]:
    return {periodic.name: periodic for periodic in _schedule()}


def slot_of(moment: datetime, every: timedelta) -> datetime:
    """The start of the period `moment` falls in, aligned to the Unix epoch (the same on every machine)."""
    seconds = every.total_seconds()
    return datetime.fromtimestamp((moment.timestamp() // seconds) * seconds, tz=UTC)


def schedule_due(*, now: datetime | None = None) -> list[str]:
    """Enqueue every periodic job whose current slot has no run yet; return the names enqueued."""
    now = now or timezone.now()
    slots = {periodic.name: slot_of(now, periodic.every) for periodic in _schedule()}
    taken = Q(pk__in=[])
    for name, slot in slots.items():
        taken |= Q(name=name, slot=slot)
    existing = set(PeriodicRun.objects.filter(taken).values_list("name", flat=True))
    enqueued = []
    for name, slot in slots.items():
        if name in existing:
            continue
        try:
            with transaction.atomic():
                run = PeriodicRun.objects.create(name=name, slot=slot, enqueued_at=now)
                enqueue(periodic_run, run.pk)
        except IntegrityError:  # another worker's scheduler took this slot first
            continue
        enqueued.append(name)
    return enqueued


def _lease_take(*, name: str, holder: str, until: datetime, now: datetime) -> bool:
    PeriodicLease.objects.get_or_create(name=name)
    taken = PeriodicLease.objects.filter(Q(held_until__isnull=True) | Q(held_until__lt=now), name=name).update(
        held_until=until, holder=holder)
    return taken == 1


def _lease_give_back(*, name: str, holder: str) -> None:
    PeriodicLease.objects.filter(name=name, holder=holder).update(held_until=None, holder="")


def _finish(run_id: int, outcome: str, result: dict) -> None:
    PeriodicRun.objects.filter(pk=run_id).update(outcome=outcome, result=result, finished_at=timezone.now())


@task()
def periodic_run(run_id: int) -> dict:
    """Run one slot of a periodic job, unless it already ran or the job is still running elsewhere."""
    now = timezone.now()
    claimed = PeriodicRun.objects.filter(pk=run_id, outcome=PeriodicRun.Outcome.QUEUED).update(
        outcome=PeriodicRun.Outcome.RUNNING, started_at=now)
    if not claimed:
        return {"skipped": "already run"}
    run = PeriodicRun.objects.get(pk=run_id)
    periodic = schedule().get(run.name)
    if periodic is None:
        _finish(run_id, PeriodicRun.Outcome.FAILED, {"error": f"{run.name} is no longer scheduled"})
        return {"error": "not scheduled"}
    holder = f"run {run_id}"
    if not _lease_take(name=run.name, holder=holder, until=now + periodic.lease, now=now):
        _finish(run_id, PeriodicRun.Outcome.SKIPPED, {"skipped": "the previous run is still going"})
        return {"skipped": "overlap"}
    try:
        result = periodic.run()
    except Exception as error:
        logger.exception("Periodic job %s failed", run.name)
        _finish(run_id, PeriodicRun.Outcome.FAILED, {"error": f"{type(error).__name__}: {error}"[:500]})
        raise
    finally:
        _lease_give_back(name=run.name, holder=holder)
    summary = result if isinstance(result, dict) else {"result": result}
    _finish(run_id, PeriodicRun.Outcome.DONE, summary)
    return summary


def last_finished(name: str) -> PeriodicRun | None:
    """The latest finished run of a periodic job (done or failed), for health and metrics."""
    return (PeriodicRun.objects.filter(name=name, finished_at__isnull=False)
            .exclude(outcome=PeriodicRun.Outcome.SKIPPED).order_by(F("finished_at").desc()).first())
