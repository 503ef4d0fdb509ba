"""Every web form that changes state executes at most once.

A form carries a one-time token (`{% once_token %}` from the `once` template tags). The first POST
that carries it claims it: a row inserted in its own short transaction, before the view runs. A
second POST of the same token (a double click, the back button, a resubmitted tab) does not run
the view: it is sent to the first submission's result, the page the view redirected to.

A view that does not redirect did not complete an action (bad input shown again, a refusal, an
error), so its claim is released and the form may be sent again. A POST without a token runs as
before: a crafted request could always send fresh tokens, so the token protects people from
repeating themselves, not the rules (the services enforce those). The API, the admin and the
anonymous pages keep their own ways: only signed-in users' forms are claimed, and only for views
that take their CSRF token from a form.
"""

from __future__ import annotations

import re
import secrets
import time

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from edges.models import FormToken

FIELD = "once_token"
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,64}")
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# A double click sends the second POST while the first is still running: wait this long for the
# first one's result before saying it is still being processed.
WAIT_FOR_FIRST_SECONDS = 3.0
POLL_SECONDS = 0.1
ALREADY_DONE = "This form was already submitted; here is its result."
STILL_RUNNING = "This form was already submitted and is still being processed; reload the page in a moment."


def new_token() -> str:
    """Return a fresh random token for one rendering of one form."""
    return secrets.token_urlsafe(32)


def _claim(token: str, user) -> bool:
    """Insert the token's row in its own transaction; False when another submission holds it."""
    try:
        with transaction.atomic():
            FormToken.objects.create(token=token, user=user, created_at=timezone.now())
    except IntegrityError:
        return False
    return True


def _safe(request, url: str) -> str | None:
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return url
    return None


def _back(request) -> str:
    """Return the page the form was on (its Referer, when it is ours), or the home page."""
    return _safe(request, request.META.get("HTTP_REFERER", "")) or "/"


def _already_submitted(request, token: str):
    """Claim the token once the first submission released it, or answer with that submission's result."""
    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    while True:
        first = FormToken.objects.filter(token=token).values("user_id", "result_url").first()
        if first is None:
            if _claim(token, request.user):
                return None  # the first submission did nothing and let go: this one runs
        elif first["user_id"] != request.user.pk:
            messages.warning(request, "This form was already submitted.")
            return HttpResponseRedirect(_back(request))
        elif first["result_url"]:
            messages.info(request, ALREADY_DONE)
            return HttpResponseRedirect(_safe(request, first["result_url"]) or _back(request))
        if time.monotonic() >= deadline:
            messages.warning(request, STILL_RUNNING)
            return HttpResponseRedirect(_back(request))
        time.sleep(POLL_SECONDS)


def _settle(token: str, response) -> None:
    """Keep the claim with the page the view redirected to, or release it when the view did not act."""
    claimed = FormToken.objects.filter(token=token)
    location = response.get("Location", "") if response.status_code in REDIRECT_STATUSES else ""
    if location and len(location) <= FormToken._meta.get_field("result_url").max_length:
        claimed.update(result_url=location)
    else:
        claimed.delete()


class ExecuteOnceMiddleware:
    """Claim a form's one-time token before its view runs; a second submission sees the first's result.

    Placed after the CSRF and message middleware: the token is claimed in `process_view`, so a
    request the CSRF check refuses claims nothing.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            response = self.get_response(request)
        except Exception:
            if token := getattr(request, "_once_token", None):
                FormToken.objects.filter(token=token).delete()
            raise
        if token := getattr(request, "_once_token", None):
            _settle(token, response)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "POST" or getattr(view_func, "csrf_exempt", False):
            return None
        if not request.content_type.startswith(FORM_CONTENT_TYPES):
            return None
        if not getattr(request.user, "is_authenticated", False):
            return None
        token = request.POST.get(FIELD, "")
        if not TOKEN_PATTERN.fullmatch(token):
            return None
        if not _claim(token, request.user):
            answer = _already_submitted(request, token)
            if answer is not None:
                return answer
        request._once_token = token
        return None
