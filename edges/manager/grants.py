"""The manager console's authority matrix and grant editing: diff before save, a new version each time."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from types import SimpleNamespace

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from authority import reports
from authority.models import AuthorityKind, Effect, Grant, GrantStatus
from authority.policy.grants import grant_changeable, grant_endable, shadow_flip, shadow_terms_allowed
from authority.policy.permissions import (
    console_people,
    console_roles,
    console_teams,
    grants_visible_in_console,
    own_lines,
)
from authority.services import grant_change, grant_create, grant_end
from authority.services.grants import needs_confirmation, require_may_grant, validate_terms
from edges.manager.forms import EndGrantForm, GrantForm
from edges.web.console import manager_console
from edges.web.service_calls import error_text, run_service
from h2h_core.errors import DomainError
from h2h_core.organisation import current_organisation

User = get_user_model()
TEMPORARY_DAYS = 14
DASHBOARD_DAYS = (7, 30, 90)


# --- the authority matrix ---------------------------------------------------------------------


def _line(kind_of_subject: str, subject, own: dict) -> dict:
    return {"type": kind_of_subject, "subject": subject, "key": f"{kind_of_subject}-{subject.pk}",
            "own": subject.pk in own[kind_of_subject], "cells": []}


@manager_console
def matrix(request):
    """Kinds against roles, teams and people: limits, scope and validity of what is in force."""
    now = timezone.now()
    teams = list(console_teams(request.user))
    people = list(console_people(request.user))
    roles = list(console_roles())
    kinds = list(AuthorityKind.objects.order_by("name"))
    grants = list(
        Grant.objects.filter(case__isnull=True, superseded_at__isnull=True,
                             status__in=[GrantStatus.ACTIVE, GrantStatus.PENDING])
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        .filter(Q(subject_role__in=roles) | Q(subject_team__in=teams) | Q(subject_user__in=people))
        .select_related("kind", "granted_by")
        .order_by("id")
    )
    own = own_lines(request.user)
    pending_for = {g.supersedes_id: g for g in grants if g.status == GrantStatus.PENDING and g.supersedes_id}
    sections = [
        ("Roles", [_line("role", r, own) for r in roles]),
        ("Teams", [_line("team", t, own) for t in teams]),
        ("People", [_line("user", p, own) for p in people]),
    ]
    for _, lines in sections:
        for line in lines:
            field = {"role": "subject_role_id", "team": "subject_team_id", "user": "subject_user_id"}[line["type"]]
            mine = [g for g in grants if getattr(g, field) == line["subject"].pk]
            for kind in kinds:
                cell = [g for g in mine if g.kind_id == kind.pk and not (g.status == GrantStatus.PENDING
                                                                         and g.supersedes_id)]
                line["cells"].append({"kind": kind, "grants": [
                    {"grant": g, "pending_change": pending_for.get(g.pk), "future": g.valid_from > now}
                    for g in cell]})
    return render(request, "authority/matrix.html", {
        "sections": sections, "kinds": kinds, "tz": current_organisation().tz, "now": now,
    })


def _subject_from(request, value: str):
    """Resolve 'user-5', 'team-2' or 'role-1' within the console's reach, else 404."""
    kind_of_subject, _, pk = (value or "").partition("-")
    if not pk.isdigit():
        raise Http404("No such subject")
    scopes = {"user": console_people(request.user), "team": console_teams(request.user), "role": console_roles()}
    if kind_of_subject not in scopes:
        raise Http404("No such subject")
    subject = scopes[kind_of_subject].filter(pk=int(pk)).first()
    if subject is None:
        raise Http404("No such subject")
    return kind_of_subject, subject


def _subject_kwargs(kind_of_subject: str, subject) -> dict:
    return {{"user": "user", "team": "team", "role": "role"}[kind_of_subject]: subject}


def _subject_label(kind_of_subject: str, subject) -> str:
    return {"user": "person", "team": "team", "role": "role"}[kind_of_subject] + f" {subject}"


def _console_grant(request, pk: int) -> Grant:
    grant = (Grant.objects.filter(pk=pk, case__isnull=True).filter(grants_visible_in_console(request.user))
             .select_related("kind", "subject_user", "subject_team", "subject_role", "granted_by", "confirmed_by")
             .first())
    if grant is None:
        raise Http404("No such grant")
    return grant


def _refuse(request, error: Exception):
    messages.error(request, error_text(error))
    return redirect("authority:matrix")


def _preview_or_save(request, *, form: GrantForm, kind: AuthorityKind, before, save, context: dict):
    """The two steps of every grant edit: show the difference, then save a new version.

    Step "preview" validates the terms exactly as the service will and shows the difference and
    whether a second manager must confirm; step "save" calls the service.
    """
    step = request.POST.get("step", "preview")
    template = "authority/grant_form.html"
    if not form.is_valid() or step == "edit":
        return render(request, template, {**context, "form": form})
    proposed = form.terms()
    if proposed.effect == Effect.FORBID and kind.is_money and not proposed.currency:
        # A suspension forbids whatever the amount: the currency only satisfies the money kind.
        proposed = dataclasses.replace(proposed, currency=current_organisation().base_currency)
    try:
        terms = validate_terms(kind=kind, terms=proposed)
    except ValidationError as error:
        for name, problems in error.message_dict.items():
            form.add_error(name if name in form.fields else None, problems)
        return render(request, template, {**context, "form": form})
    shadow = form.cleaned_data["shadow"]
    allowed = shadow_terms_allowed(shadow=shadow, effect=terms.effect)
    if not allowed:
        form.add_error("shadow", allowed.reason)
        return render(request, template, {**context, "form": form})
    if step == "save":
        ok, result = run_service(request, lambda: save(proposed, form.cleaned_data["reason"], shadow))
        if ok:
            waits = result.status == GrantStatus.PENDING
            messages.success(request, f"Saved grant {result.label} for {result.subject_label}: "
                             + ("it waits for a second manager to confirm it." if waits else "in force now."))
            return redirect(reverse("authority:matrix") + f"#line-{context['line_key']}")
        return render(request, template, {**context, "form": form})
    flip = shadow_flip(before=before, shadow=shadow)
    return render(request, "authority/grant_preview.html", {
        **context, "form": form, "terms": terms, "shadow": shadow, "flip": flip,
        "diff": reports.grant_diff(before, SimpleNamespace(**dataclasses.asdict(terms), shadow=shadow)),
        "needs_confirmation": needs_confirmation(kind, terms, flip=flip),
    })


@manager_console
def grant_new(request):
    """A new grant for a role, team or person: a permit, a temporary raise or a suspension."""
    source = request.POST if request.method == "POST" else request.GET
    kind_of_subject, subject = _subject_from(request, source.get("subject", ""))
    kind = AuthorityKind.objects.filter(code=source.get("kind", "")).first()
    if kind is None:
        raise Http404("No such kind")
    try:
        require_may_grant(request.user, **_subject_kwargs(kind_of_subject, subject))
    except DomainError as error:
        return _refuse(request, error)
    purpose = source.get("purpose", "")
    context = {"kind": kind, "subject_label": _subject_label(kind_of_subject, subject), "before": None,
               "subject_value": f"{kind_of_subject}-{subject.pk}", "purpose": purpose,
               "line_key": f"{kind_of_subject}-{subject.pk}", "tz": current_organisation().tz}
    if request.method != "POST":
        initial = {"currency": current_organisation().base_currency if kind.is_money else "",
                   "effect": Effect.FORBID if purpose == "suspend" else Effect.PERMIT}
        if purpose == "temporary":
            initial["valid_until"] = timezone.now() + timedelta(days=TEMPORARY_DAYS)
        return render(request, "authority/grant_form.html", {**context, "form": GrantForm(initial=initial)})

    def save(terms, reason, shadow):
        return grant_create(actor=request.user, kind=kind, terms=terms, reason=reason, shadow=shadow,
                            **_subject_kwargs(kind_of_subject, subject))

    return _preview_or_save(request, form=GrantForm(request.POST), kind=kind, before=None, save=save,
                            context=context)


@manager_console
def grant_edit(request, pk: int):
    """Change a grant: the difference is shown before saving, and a new version is written."""
    grant = _console_grant(request, pk)
    try:
        require_may_grant(request.user, user=grant.subject_user, team=grant.subject_team, role=grant.subject_role)
        grant_changeable(grant).require()  # the current version, no change already waiting
    except DomainError as error:
        return _refuse(request, error)
    kind_of_subject = grant.level if grant.level != "person" else "user"
    subject = grant.subject_user or grant.subject_team or grant.subject_role
    versions = list(Grant.objects.filter(lineage=grant.lineage).select_related("granted_by", "confirmed_by")
                    .order_by("-version"))
    context = {"kind": grant.kind, "subject_label": grant.subject_label, "before": grant, "grant": grant,
               "line_key": f"{kind_of_subject}-{subject.pk}", "versions": versions, "tz": current_organisation().tz}
    if request.method != "POST":
        return render(request, "authority/grant_form.html", {**context, "form": GrantForm(
            initial=GrantForm.initial_from(grant))})

    def save(terms, reason, shadow):
        return grant_change(actor=request.user, grant=grant, terms=terms, reason=reason, shadow=shadow)

    return _preview_or_save(request, form=GrantForm(request.POST), kind=grant.kind, before=grant, save=save,
                            context=context)


@manager_console
def grant_end_view(request, pk: int):
    """End a grant now (lift a suspension, withdraw authority); history keeps every version.

    A change of it still waiting for a second manager is voided with it; the page says so first.
    """
    grant = _console_grant(request, pk)
    try:
        require_may_grant(request.user, user=grant.subject_user, team=grant.subject_team, role=grant.subject_role)
        grant_endable(grant).require()
    except DomainError as error:
        return _refuse(request, error)
    waiting = list(Grant.objects.filter(supersedes=grant, status=GrantStatus.PENDING).select_related("granted_by"))
    form = EndGrantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, _ = run_service(request, lambda: grant_end(actor=request.user, grant=grant,
                                                       reason=form.cleaned_data["reason"]))
        if ok:
            messages.success(request, f"Ended grant {grant.label} for {grant.subject_label}.")
            return redirect("authority:matrix")
    return render(request, "authority/grant_end.html", {"grant": grant, "form": form, "waiting": waiting,
                                                        "tz": current_organisation().tz})
