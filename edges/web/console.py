"""Gatekeeping for the manager and auditor consoles (thin adapters over authority.policy)."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from authority.policy.permissions import may_use_auditor_console, may_use_manager_console

CONSOLES = {
    "manager": (may_use_manager_console, "The manager console is for managers."),
    "auditor": (may_use_auditor_console, "The auditor console is for auditors."),
}


def console(name: str):
    """Let only the console's people in: anonymous visitors log in first, everyone else gets 403.

    The check comes before any method check, so a write endpoint answers 403 to an outsider
    whatever the method, and nothing runs.
    """
    allowed, refusal = CONSOLES[name]

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not allowed(request.user):
                raise PermissionDenied(refusal)
            return view(request, *args, **kwargs)

        wrapped.console = name
        return wrapped

    return decorate


manager_console = console("manager")
auditor_console = console("auditor")
