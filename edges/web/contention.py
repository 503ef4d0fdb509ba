"""Lock contention is answered, never a 500: the API says 409 with Retry-After, a page says try again.

A service can lose a race for a lock: PostgreSQL aborts one transaction of a deadlock (SQLSTATE
40P01), a serialization failure (40001) or a lock it may not wait for (55P03, NOWAIT; viewflow's
process lock gives up with FlowLockFailed after its retries), and SQLite gives up with "database is
locked" when its busy timeout runs out. In every case the whole transaction was rolled back, so
nothing was saved and the same request may simply be sent again.

The services do not retry by themselves. The locks are taken in one order (see the domains'
`lock_objects`), so a deadlock means a lock-order defect to fix, not to hide; and a retry inside a
durable service would hold everyone else's locks for longer exactly when they are contended. The
client retries: an API client after Retry-After (with the same Idempotency-Key, which a contended
attempt releases), a person by pressing the button again.
"""

from __future__ import annotations

import logging
import sqlite3

from django.contrib import messages
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from viewflow.workflow.exceptions import FlowLockFailed

logger = logging.getLogger("h2h.contention")

CONTENTION_CODE = "contention"
CONTENTION_MESSAGE = "Someone else was changing this at the same moment; nothing was saved, try again."
RETRY_AFTER_SECONDS = 1
#: deadlock_detected, serialization_failure, lock_not_available
CONTENTION_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked")


def is_contention(error: BaseException) -> bool:
    """Return whether `error` means the transaction lost a race for a lock and was rolled back."""
    if isinstance(error, FlowLockFailed):
        return True
    # Django raises its own DatabaseError subclasses with the driver's error as the cause.
    for candidate in (error, error.__cause__):
        if candidate is None:
            continue
        if getattr(candidate, "sqlstate", None) in CONTENTION_SQLSTATES:  # psycopg 3
            return True
        if getattr(candidate, "pgcode", None) in CONTENTION_SQLSTATES:  # psycopg 2
            return True
        if isinstance(candidate, DatabaseError | sqlite3.OperationalError) and any(
            text in str(candidate).lower() for text in SQLITE_BUSY_MESSAGES
        ):
            return True
    return False


def log_contention(error: BaseException, *, where: str) -> None:
    """Leave a trace: contention is expected now and then, a steady stream of it is a defect."""
    cause = error.__cause__ or error
    logger.warning("Lock contention in %s, answered as a retry: %s: %s", where, type(cause).__name__, cause)


def contention_json() -> JsonResponse:
    """Return the API's 409 for contention in its error shape, with Retry-After."""
    response = JsonResponse(
        {"code": CONTENTION_CODE, "message": CONTENTION_MESSAGE,
         "details": {"retry_after_seconds": RETRY_AFTER_SECONDS}},
        status=409,
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ContentionMiddleware:
    """Turn contention that reached a view's caller into "try again" instead of a 500.

    Views that call services through `run_service` already show the message themselves; this
    catches the rest. After a form post the person goes back to the page they came from, with the
    message; otherwise a short page says what happened (status 409). Under /api/ the answer is the
    API's 409 (the API's own exception handler answers first for its views).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_contention(exception):
            return None
        log_contention(exception, where=request.path)
        if request.path.startswith("/api/"):
            return contention_json()
        back = request.headers.get("Referer", "")
        if request.method == "POST" and back and url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            messages.warning(request, CONTENTION_MESSAGE)
            return redirect(back)
        response = render(request, "contention.html", {"message": CONTENTION_MESSAGE}, status=409)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
