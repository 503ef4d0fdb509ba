"""Web pages of the authority domain: my authority, the approvals inbox, pending grant changes."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from authority import policy, reports, selectors
from authority.models import AuthorityRequest, Grant, GrantStatus
from authority.policy.grants import shadow_flip
from authority.reports.shadow import ai_grant_evidence_many
from authority.services import grant_confirm, grant_reject
from authority.services.grants import needs_confirmation
from edges.manager.forms import NoteForm
from edges.web.console import manager_console
from edges.web.service_calls import run_service
from h2h_core.organisation import current_organisation
from workflows.services import authority_request_flow_approve, authority_request_flow_reject

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
    # The buttons are what the services' predicates answer, asked with inputs loaded once for all.
    rights = policy.approver_rights(request.user)
    items = [{"request": r, "over": reports.over_by(r), "mine": mine.get(r.pk),
              "record": records.get(r.requester_id),
              "approve": policy.may_approve(request.user, r, rights=rights, verdict=mine.get(r.pk)),
              "reject": policy.may_reject(request.user, r, rights=rights)} for r in waiting]
    return render(request, "authority/approvals.html", {
        "items": items, "now": timezone.now(), "tz": current_organisation().tz, "form": NoteForm(),
        "limit": INBOX_LIMIT,
    })


def _request_for(user, pk: int) -> AuthorityRequest:
    """The request if `user` is (or was) among its approvers; 404 otherwise, to reveal nothing."""
    found = (policy.requests_visible_to(user).select_related("kind", "case", "requester", "decided_by")
             .filter(pk=pk).first())
    if found is None:
        raise Http404("No such request")
    return found


REQUEST_DECISIONS = {
    "approve": (lambda user, found, note: authority_request_flow_approve(actor=user, request=found, note=note),
                "Approved: {requester} can now execute it on {reference}."),
    "reject": (lambda user, found, note: authority_request_flow_reject(actor=user, request=found, note=note),
               "Rejected; {requester} sees your reason on {reference}."),
}


@manager_console
@require_POST
def decide_request(request, pk: int, verb: str):
    """Approve or reject a request: one path, the service decides (and audits a refusal)."""
    authority_request = _request_for(request.user, pk)
    service, done = REQUEST_DECISIONS[verb]
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    ok, _ = run_service(request, lambda: service(request.user, authority_request, note))
    if ok:
        messages.success(request, done.format(requester=authority_request.requester,
                                              reference=authority_request.case.reference))
    return redirect("authority:approvals")


def approve(request, pk: int):
    return decide_request(request, pk, "approve")


def reject(request, pk: int):
    return decide_request(request, pk, "reject")


def _pending_changes(user):
    """The pending changes this manager may check (the one selector), and those they made themselves."""
    checkable = policy.pending_changes_checkable_by(user).values("pk")
    return (Grant.objects.filter(Q(pk__in=checkable) | Q(status=GrantStatus.PENDING, granted_by_id=user.pk))
            .select_related("kind", "subject_user", "subject_team", "subject_role", "granted_by", "supersedes"))


@manager_console
def pending_grants(request):
    """Grant changes waiting for a second manager (maker-checker), with the difference each makes.

    The controls of each change are what `may_confirm` and `may_check` answer, with their reasons.
    """
    own = policy.own_authority(request.user)
    items = []
    changes = list(_pending_changes(request.user).order_by("created_at", "id"))
    flips = {grant.pk: shadow_flip(before=grant.supersedes, shadow=grant.shadow) for grant in changes}
    # A promotion or demotion of a person's grant shows its evidence (three queries for them all).
    evidence = ai_grant_evidence_many([(grant.subject_user, grant.kind) for grant in changes
                                       if flips[grant.pk] and grant.subject_user_id])
    for grant in changes:
        items.append({
            "grant": grant,
            "diff": reports.grant_diff(grant.supersedes, grant),
            "is_maker": grant.granted_by_id == request.user.pk,
            "confirm": policy.may_confirm(request.user, grant, own=own),
            "reject": policy.may_check(request.user, grant, own=own),
            "flip": flips[grant.pk],
            "why_pending": needs_confirmation(grant.kind, grant, flip=flips[grant.pk]),
            "evidence": evidence.get((grant.subject_user_id, grant.kind_id)) if flips[grant.pk] else None,
        })
    return render(request, "authority/pending.html", {"items": items, "form": NoteForm(),
                                                      "tz": current_organisation().tz})


GRANT_CHECKS = {
    "confirm": (lambda user, grant, note: grant_confirm(actor=user, grant=grant),
                "Confirmed grant {label} for {subject}; it is in force now."),
    "reject": (lambda user, grant, note: grant_reject(actor=user, grant=grant, reason=note),
               "Rejected grant {label}; the previous version stays in force."),
}


@manager_console
@require_POST
def check_grant(request, pk: int, outcome: str):
    """Confirm or reject a pending change: one path, the service decides (and audits a refusal)."""
    grant = _pending_changes(request.user).filter(pk=pk).first()
    if grant is None:
        raise Http404("No such pending grant")
    service, done = GRANT_CHECKS[outcome]
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    ok, _ = run_service(request, lambda: service(request.user, grant, note))
    if ok:
        messages.success(request, done.format(label=grant.label, subject=grant.subject_label))
    return redirect("authority:pending")
