"""`/healthz/`: is this application server able to serve, for a load balancer or a monitor.

No login, and nothing beyond these facts: whether the database answers a `SELECT 1` (and how
fast), whether the job queue can be read (how many jobs wait, the oldest one's age), the
timers (when the worker last swept them, when one last fired, and how late the most overdue one
is), and the audit sealer (events waiting for their chain link, the oldest one's age, the p99 lag).
200 while the database answers, 503 when it does not. "degraded" marks a database that
answers while the queue or the timers cannot be read. Ages are reported, not judged: how old is
too old depends on the deployment (the monitor decides; /metrics/ has the same figures). Exempt
from the HTTPS redirect (SECURE_REDIRECT_EXEMPT) so a load balancer can probe it over plain HTTP.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import vitals

logger = logging.getLogger("h2h.health")


def _database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.exception("Health check: the database does not answer")
        return {"reachable": False}
    return {"reachable": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def _queue() -> dict:
    try:
        queue = vitals.queue()
    except DatabaseError:
        logger.exception("Health check: the job queue cannot be read")
        return {"reachable": False}
    return {"reachable": True, "ready": queue.ready, "oldest_ready_age_seconds": _seconds(queue.oldest_ready_age)}


def _timers() -> dict | None:
    now = timezone.now()
    try:
        timers = vitals.timers(now)
    except DatabaseError:
        logger.exception("Health check: the timer tasks cannot be read")
        return None
    return {
        "last_sweep": _iso(timers.last_sweep),
        "sweep_age_seconds": _seconds(None if timers.last_sweep is None else (now - timers.last_sweep).total_seconds()),
        "last_run": _iso(timers.last_fired),
        "age_seconds": _seconds(None if timers.last_fired is None else (now - timers.last_fired).total_seconds()),
        "lag_seconds": _seconds(timers.lag),
    }


def _audit_sealer() -> dict | None:
    try:
        sealer = vitals.audit_sealer()
    except DatabaseError:
        logger.exception("Health check: the audit sealer's lag cannot be read")
        return None
    return {"pending": sealer.pending, "oldest_pending_age_seconds": round(sealer.oldest_pending_age, 3),
            "lag_p99_seconds": round(sealer.p99, 3)}


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def _seconds(value: float | None) -> int | None:
    return None if value is None else int(value)


@never_cache
@require_safe
def healthz(request):
    database = _database()
    queue = _queue() if database["reachable"] else {"reachable": False}
    timers = _timers() if database["reachable"] else None
    healthy = database["reachable"] and queue["reachable"] and timers is not None
    return JsonResponse(
        {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "queue": queue,
            "timers": timers or {"last_sweep": None, "sweep_age_seconds": None, "last_run": None,
                                 "age_seconds": None, "lag_seconds": None},
            "audit_sealer": (_audit_sealer() if database["reachable"] else None)
            or {"pending": None, "oldest_pending_age_seconds": None, "lag_p99_seconds": None},
        },
        status=200 if database["reachable"] else 503,
    )
