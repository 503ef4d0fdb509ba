"""Signing in and out is audited: logins, failed logins, lockouts and logouts, from every entry point.

Django's auth signals (`user_logged_in`, `user_login_failed`, `user_logged_out`) and django-axes'
`user_locked_out` are the documented hooks of those apps; the receivers here only pass what
happened to one audited service, `h2h_core.people.auth_event_record`, which records it with the
request's IP address and request id. They are connected in `EdgesConfig.ready()`. A failed login
records the username typed, never the password (Django hands receivers the credentials with the
password already masked; only the username is read).

Every way in goes through these signals: the login page, the admin's login, the API's token
endpoint (`authenticate` sends `user_login_failed`; a token issued is audited by `api_token_issue`).

When the audit write itself fails (the database is down or refuses), the outcome is never changed
silently:

- a successful login that cannot be recorded does not happen: the receiver empties the session
  that `login()` had just filled and lets the error propagate, so the response is an error page (a
  500, or the "try again" page of lock contention) and no unaudited session exists;
- a failed login, a lockout and a logout keep their outcome (the person stays out, or is logged
  out): those outcomes are the safe ones, and refusing a logout would keep a session alive. The
  lost audit event is logged at ERROR level with the request id, so monitoring sees it.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError

from h2h_core.people import auth_event_record

logger = logging.getLogger("h2h.auth")


def _path(request) -> str:
    return getattr(request, "path", "") if request is not None else ""


def _request_id(request) -> str:
    return getattr(request, "request_id", "") if request is not None else ""


def _record_keeping_outcome(request, **event) -> None:
    """Record an event whose outcome must stand even if the record cannot be written."""
    try:
        auth_event_record(path=_path(request), **event)
    except DatabaseError:
        logger.exception("Could not write the audit event of %s (request %s); the outcome stands.",
                         event["event"], _request_id(request) or "-")


def on_logged_in(sender, request, user, **kwargs) -> None:
    # A login that cannot be recorded must not happen (see the module docstring).
    try:
        auth_event_record(event="login", user=user, path=_path(request))
    except Exception:
        _undo_login(request)
        raise


def _undo_login(request) -> None:
    """Forget the login that `login()` just put in the session, before its error propagates.

    Whatever response the error becomes (a 500, or the "try again" page that lock contention gets,
    which is not a 500 and so would have its session saved), no session carries this login.
    """
    if request is None:
        return
    session = getattr(request, "session", None)
    if session is not None:
        session.clear()  # in memory first: this cannot fail
        try:
            session.flush()  # a new session key, the stored row deleted
        except Exception:  # the database may be what failed; the cleared session holds no login
            logger.exception("Could not delete the session of a login that was not recorded")
    request.user = AnonymousUser()


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    username = credentials.get(get_user_model().USERNAME_FIELD, "") if isinstance(credentials, dict) else ""
    _record_keeping_outcome(request, event="login_failed", username=username)


def on_logged_out(sender, request, user, **kwargs) -> None:
    if user is None or not getattr(user, "is_authenticated", False):
        return  # nobody was logged in: nothing happened
    _record_keeping_outcome(request, event="logout", user=user)


def on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    _record_keeping_outcome(request, event="locked_out", username=username or "")


def connect_receivers() -> None:
    """Connect the receivers (once: each has a dispatch_uid)."""
    from axes.signals import user_locked_out
    from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

    user_logged_in.connect(on_logged_in, dispatch_uid="h2h.audit.logged_in")
    user_login_failed.connect(on_login_failed, dispatch_uid="h2h.audit.login_failed")
    user_logged_out.connect(on_logged_out, dispatch_uid="h2h.audit.logged_out")
    user_locked_out.connect(on_locked_out, dispatch_uid="h2h.audit.locked_out")
