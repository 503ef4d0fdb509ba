"""Web pages of the authority domain: my authority, the approvals inbox, pending grant changes."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from authority import policy, reports, selectors
from authority.models import AuthorityRequest, Grant, GrantStatus
from authority.services import authority_request_approve, authority_request_reject, grant_confirm, grant_reject
from authority.services.grants import needs_confirmation
from authority.services.requests import holds_delegation_for_team
from edges.forms import NoteForm
from edges.web.console import manager_console
from edges.web.service_calls import run_service
from h2h_core.organisation import current_organisation

INBOX_LIMIT = 100


@login_required
def my_authority(request):
    """What I may decide, what I have used, and when it resets."""
    now = timezone.now()
    return render(request, "authority/mine.html", {
        "rows": selectors.authority_summary(agent=request.user, at=now),
        "now": now,
        "tz": current_organisation().tz,
    })


@manager_console
def approvals(request):
    """One-hop requests waiting for me: how far over, my own headroom, the agent's record, how long."""
    waiting = list(reports.inbox_for(request.user)[:INBOX_LIMIT])
    mine = reports.approver_verdicts(request.user, waiting)
    records = reports.track_records([r.requester_id for r in waiting])
    items = [{"request": r, "over": reports.over_by(r), "mine": mine.get(r.pk),
              "record": records.get(r.requester_id)} for r in waiting]
    return render(request, "authority/approvals.html", {
        "items": items, "now": timezone.now(), "tz": current_organisation().tz, "form": NoteForm(),
        "limit": INBOX_LIMIT,
    })


def _request_for(user, pk: int) -> AuthorityRequest:
    """The request if `user` is (or was) among its approvers; 404 otherwise, to reveal nothing."""
    found = AuthorityRequest.objects.select_related("kind", "case", "requester", "decided_by").filter(pk=pk).first()
    if found is None:
        raise Http404("No such request")
    if user.pk in found.pool or user.is_superuser or holds_delegation_for_team(user, found.case.team_id):
        return found
    raise Http404("No such request")


@manager_console
@require_POST
def approve(request, pk: int):
    authority_request = _request_for(request.user, pk)
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    ok, _ = run_service(request, lambda: authority_request_approve(actor=request.user, request=authority_request,
                                                                   note=note))
    if ok:
        messages.success(request, f"Approved: {authority_request.requester} can now execute it on "
                                  f"{authority_request.case.reference}.")
    return redirect("authority:approvals")


@manager_console
@require_POST
def reject(request, pk: int):
    authority_request = _request_for(request.user, pk)
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    ok, _ = run_service(request, lambda: authority_request_reject(actor=request.user, request=authority_request,
                                                                  note=note))
    if ok:
        messages.success(request, f"Rejected; {authority_request.requester} sees your reason on "
                                  f"{authority_request.case.reference}.")
    return redirect("authority:approvals")


@manager_console
def pending_grants(request):
    """Grant changes waiting for a second manager (maker-checker), with the difference each makes."""
    pending = list(
        Grant.objects.filter(status=GrantStatus.PENDING)
        .filter(policy.permissions.pending_grants_checkable_by(request.user))
        .select_related("kind", "subject_user", "subject_team", "subject_role", "granted_by", "supersedes")
        .order_by("created_at", "id")
    )
    own = policy.permissions.own_lines(request.user)
    items = []
    for grant in pending:
        own_line = (grant.subject_user_id in own["user"] or grant.subject_team_id in own["team"]
                    or grant.subject_role_id in own["role"])
        items.append({
            "grant": grant,
            "diff": reports.grant_diff(grant.supersedes, grant),
            "is_maker": grant.granted_by_id == request.user.pk,
            "own_line": own_line,
            "why_pending": needs_confirmation(grant.kind, grant),
        })
    return render(request, "authority/pending.html", {"items": items, "form": NoteForm(),
                                                      "tz": current_organisation().tz})


def _pending_grant(user, pk: int) -> Grant:
    grant = (Grant.objects.select_related("kind").filter(pk=pk, status=GrantStatus.PENDING)
             .filter(policy.permissions.pending_grants_checkable_by(user)).first())
    if grant is None:
        raise Http404("No such pending grant")
    return grant


@manager_console
@require_POST
def confirm_grant(request, pk: int):
    grant = _pending_grant(request.user, pk)
    ok, _ = run_service(request, lambda: grant_confirm(actor=request.user, grant=grant))
    if ok:
        messages.success(request, f"Confirmed grant {grant.label} for {grant.subject_label}; it is in force now.")
    return redirect("authority:pending")


@manager_console
@require_POST
def reject_grant(request, pk: int):
    grant = _pending_grant(request.user, pk)
    form = NoteForm(request.POST)
    reason = form.cleaned_data["note"] if form.is_valid() else ""
    ok, _ = run_service(request, lambda: grant_reject(actor=request.user, grant=grant, reason=reason))
    if ok:
        messages.success(request, f"Rejected grant {grant.label}; the previous version stays in force.")
    return redirect("authority:pending")
