"""The auditor's read-only pages: the audit log and the chain check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render

from h2h_core.models import AuditEvent

from . import policy

PAGE_SIZE = 50


def _require_auditor(user) -> None:
    if not (policy.is_auditor(user) or user.is_superuser):
        raise PermissionDenied("Auditors only.")


@login_required
def audit_log(request):
    """Every recorded change, newest first, filtered by action, actor, object and outcome."""
    _require_auditor(request.user)
    events = AuditEvent.objects.order_by("-seq")
    filters = {}
    for param, lookup in (("action", "action"), ("actor", "actor_username"), ("object_type", "object_type"),
                          ("object_id", "object_id"), ("outcome", "outcome")):
        value = request.GET.get(param, "").strip()
        if value:
            filters[param] = value
            events = events.filter(**{lookup: value})
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "authority/audit_log.html", {"page": page, "filters": filters,
                                                        "count": page.paginator.count})


@login_required
def audit_verify(request):
    """Recompute the whole chain now and show the result."""
    _require_auditor(request.user)
    from h2h_core.audit.verify import verify_chain

    return render(request, "authority/audit_verify.html", {"report": verify_chain()})
