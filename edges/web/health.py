"""`/healthz/`: is this application server able to serve, for a load balancer or a monitor.

No login, and nothing beyond these facts: whether the database answers a `SELECT 1` (and how fast),
and when the timer dispatcher (`workflow_timers`) last fired a timer. 200 while the database
answers, 503 when it does not. "degraded" also marks a database that answers while the timers
cannot be read. The timers' age is reported, not judged: how old is too old depends on the
deployment's timers (the monitor decides). Exempt from the HTTPS redirect (SECURE_REDIRECT_EXEMPT)
so a load balancer can probe it over plain HTTP.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from workflows.selectors import last_timer_run

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


def _timers() -> dict | None:
    try:
        last_run = last_timer_run()
    except DatabaseError:
        logger.exception("Health check: the timer tasks cannot be read")
        return None
    if last_run is None:
        return {"last_run": None, "age_seconds": None}
    return {"last_run": last_run.isoformat(), "age_seconds": int((timezone.now() - last_run).total_seconds())}


@never_cache
@require_safe
def healthz(request):
    database = _database()
    timers = _timers() if database["reachable"] else None
    healthy = database["reachable"] and timers is not None
    return JsonResponse(
        {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "timers": timers or {"last_run": None, "age_seconds": None},
        },
        status=200 if database["reachable"] else 503,
    )
