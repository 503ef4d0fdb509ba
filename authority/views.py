"""Web pages of the authority domain: my authority, the approvals inbox, pending grant changes."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from h2h_core.organisation import current_organisation
from h2h_core.web import run_service

from . import policy, selectors
from .forms import NoteForm
from .models import AuthorityRequest, Grant, GrantStatus
from .services import authority_request_approve, authority_request_reject, grant_confirm, grant_reject


@login_required
def my_authority(request):
    """What I may decide, what I have used, and when it resets."""
    now = timezone.now()
    return render(request, "authority/mine.html", {
        "rows": selectors.authority_summary(agent=request.user, at=now),
        "now": now,
        "tz": current_organisation().tz,
    })


def _require_manager(user) -> None:
    if not (policy.is_manager(user) or user.is_superuser):
        raise PermissionDenied("Managers only.")


@login_required
def approvals(request):
    """One-hop requests waiting for me, with how far over the requester's limit each is."""
    _require_manager(request.user)
    waiting = list(selectors.requests_for_approver(request.user).order_by("created_at"))
    return render(request, "authority/approvals.html", {
        "waiting": waiting, "now": timezone.now(), "tz": current_organisation().tz, "form": NoteForm(),
    })


def _request_for(user, pk: int) -> AuthorityRequest:
    found = AuthorityRequest.objects.select_related("kind", "case", "requester").filter(pk=pk).first()
    if found is None or not (user.pk in found.pool or user.is_superuser):
        raise Http404("No such request")
    return found


@login_required
@require_POST
def approve(request, pk: int):
    _require_manager(request.user)
    authority_request = _request_for(request.user, pk)
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    ok, _ = run_service(request, lambda: authority_request_approve(actor=request.user, request=authority_request,
                                                                   note=note))
    if ok:
        messages.success(request, f"Approved: {authority_request.requester} can now execute it on "
                                  f"{authority_request.case.reference}.")
    return redirect("authority:approvals")


@login_required
@require_POST
def reject(request, pk: int):
    _require_manager(request.user)
    authority_request = _request_for(request.user, pk)
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    ok, _ = run_service(request, lambda: authority_request_reject(actor=request.user, request=authority_request,
                                                                  note=note))
    if ok:
        messages.success(request, "Rejected; the agent sees your reason on the case.")
    return redirect("authority:approvals")


@login_required
def pending_grants(request):
    """Grant changes waiting for a second manager (maker-checker)."""
    _require_manager(request.user)
    teams = policy.managed_team_ids(request.user)
    pending = Grant.objects.filter(status=GrantStatus.PENDING).select_related(
        "kind", "subject_user", "subject_team", "subject_role", "granted_by", "supersedes"
    )
    if not request.user.is_superuser:
        pending = pending.filter(Q(subject_team_id__in=teams) | Q(subject_user__teams__in=teams)
                                 | Q(subject_role__isnull=False)).distinct()
    return render(request, "authority/pending.html", {"pending": list(pending), "form": NoteForm()})


def _pending_grant(pk: int) -> Grant:
    grant = Grant.objects.select_related("kind").filter(pk=pk, status=GrantStatus.PENDING).first()
    if grant is None:
        raise Http404("No such pending grant")
    return grant


@login_required
@require_POST
def confirm_grant(request, pk: int):
    _require_manager(request.user)
    grant = _pending_grant(pk)
    ok, _ = run_service(request, lambda: grant_confirm(actor=request.user, grant=grant))
    if ok:
        messages.success(request, f"Confirmed grant {grant.label}; it is in force now.")
    return redirect("authority:pending")


@login_required
@require_POST
def reject_grant(request, pk: int):
    _require_manager(request.user)
    grant = _pending_grant(pk)
    form = NoteForm(request.POST)
    reason = form.cleaned_data["note"] if form.is_valid() else ""
    ok, _ = run_service(request, lambda: grant_reject(actor=request.user, grant=grant, reason=reason))
    if ok:
        messages.success(request, f"Rejected grant {grant.label}; the previous version stays in force.")
    return redirect("authority:pending")
