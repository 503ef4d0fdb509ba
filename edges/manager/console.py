"""The manager console: authority matrix and grant editing, people's usage, delegation, what-if, dashboard.

Managers see only their teams (superusers see every team). Every change goes through the grant and
oversight services, which enforce maker-checker and "nobody changes their own authority" on their
own; the pages hide what the services would refuse, so people are not invited to try.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from authority import policy, reports
from authority.models import AuthorityKind, Delegation, Effect, Grant, GrantStatus
from authority.policy.grants import grant_changeable, grant_endable
from authority.policy.permissions import (
    console_people,
    console_roles,
    console_teams,
    grants_visible_in_console,
    own_lines,
)
from authority.services import grant_change, grant_create, grant_end
from authority.services.grants import needs_confirmation, require_may_grant, validate_terms
from authority.services.oversight import delegation_create, delegation_revoke, delegations_in_force
from edges.forms import DelegationForm, EndGrantForm, GrantForm, WhatIfForm, case_number
from edges.web import charts
from edges.web.console import manager_console
from edges.web.service_calls import error_text, run_service
from h2h_core.errors import DomainError
from h2h_core.models import Case, Customer, CustomerTier
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
    if step == "save":
        ok, result = run_service(request, lambda: save(proposed, form.cleaned_data["reason"]))
        if ok:
            waits = result.status == GrantStatus.PENDING
            messages.success(request, f"Saved grant {result.label} for {result.subject_label}: "
                             + ("it waits for a second manager to confirm it." if waits else "in force now."))
            return redirect(reverse("authority:matrix") + f"#line-{context['line_key']}")
        return render(request, template, {**context, "form": form})
    return render(request, "authority/grant_preview.html", {
        **context, "form": form, "terms": terms, "diff": reports.grant_diff(before, terms),
        "needs_confirmation": needs_confirmation(kind, terms),
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

    def save(terms, reason):
        return grant_create(actor=request.user, kind=kind, terms=terms, reason=reason,
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

    def save(terms, reason):
        return grant_change(actor=request.user, grant=grant, terms=terms, reason=reason)

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


# --- people: limit, used, left, reset -----------------------------------------------------------


@manager_console
def people(request):
    """Per person and kind: limit, used, left and when it resets, with warnings at 75, 90 and 100 %."""
    rows = reports.people_authority(console_people(request.user))
    near = sorted((row for row in rows if row.worst and row.worst.warning), key=lambda row: -row.worst.percent)
    return render(request, "authority/people.html", {
        "rows": rows, "near": near, "kinds": [entry.kind for entry in rows[0].kinds] if rows else [],
        "tz": current_organisation().tz, "now": timezone.now(),
    })


# --- delegation while away -----------------------------------------------------------------------


@manager_console
def delegations(request):
    """Hand my approvals to another manager while I am away; see what was handed to me."""
    form = DelegationForm(request.POST or None, actor=request.user)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            ok, _ = run_service(request, lambda: delegation_create(
                actor=request.user, delegate=data["delegate"], starts_at=data["starts_at"], ends_at=data["ends_at"],
                reason=data["reason"]))
            if ok:
                tz = current_organisation().tz
                starts, ends = timezone.localtime(data["starts_at"], tz), timezone.localtime(data["ends_at"], tz)
                messages.success(request, f"{data['delegate']} approves for you from {starts:%d %b %Y %H:%M} "
                                          f"until {ends:%d %b %Y %H:%M} ({tz.key}).")
                return redirect("authority:delegations")
    else:
        now = timezone.now()
        form = DelegationForm(actor=request.user, initial={"starts_at": now, "ends_at": now + timedelta(days=7)})
    visible = Delegation.objects.select_related("manager", "delegate").order_by("-starts_at", "-id")
    if not request.user.is_superuser:
        visible = visible.filter(Q(manager=request.user) | Q(delegate=request.user))
    in_force = set(delegations_in_force(at=timezone.now()).values_list("pk", flat=True))
    rows = [{"delegation": d, "in_force": d.pk in in_force} for d in visible[:100]]
    return render(request, "authority/delegations.html", {"form": form, "rows": rows, "now": timezone.now(),
                                                          "tz": current_organisation().tz})


@manager_console
@require_POST
def delegation_revoke_view(request, pk: int):
    delegation = Delegation.objects.select_related("delegate").filter(pk=pk).first()
    if delegation is None or not (delegation.manager_id == request.user.pk or request.user.is_superuser):
        raise Http404("No such delegation")
    ok, _ = run_service(request, lambda: delegation_revoke(actor=request.user, delegation=delegation))
    if ok:
        messages.success(request, f"Revoked: {delegation.delegate} no longer approves for you.")
    return redirect("authority:delegations")


# --- what-if ------------------------------------------------------------------------------------


def _transient_case(category: str, tier: str) -> Case:
    """An unsaved case, to ask about a category before any case exists (evaluate reads no case row)."""
    return Case(category=category, customer=Customer(tier=tier or CustomerTier.STANDARD))


@manager_console
def what_if(request):
    """Could this person decide this kind and amount on this case (or category) at this time?

    Evaluates exactly as a decision would and changes nothing: no decision, no usage, no audit event.
    """
    people_qs = console_people(request.user)
    asked = "person" in request.GET
    form = WhatIfForm(request.GET if asked else None, people=people_qs,
                      initial={"currency": current_organisation().base_currency})
    verdict = case = None
    if asked and form.is_valid():
        data = form.cleaned_data
        if data["case"]:
            number = case_number(data["case"])
            case = (policy.cases_visible_to(request.user).select_related("customer", "team")
                    .filter(pk=number).first() if number else None)
            if case is None:
                form.add_error("case", "No such case in your teams.")
        else:
            case = _transient_case(data["category"], data["tier"])
        if case is not None:
            try:
                verdict = policy.evaluate(agent=data["person"], kind=data["kind"], amount=data["amount"],
                                          currency=(data["currency"] or None) if data["kind"].is_money else None,
                                          case=case, at=data["at"])
            except ValidationError as error:
                form.add_error(None, error_text(error))
    return render(request, "authority/what_if.html", {"form": form, "verdict": verdict, "case": case,
                                                      "tz": current_organisation().tz})


# --- team dashboard -----------------------------------------------------------------------------


@manager_console
def dashboard(request):
    """How authority is used in my teams: figures from a fixed number of aggregate queries."""
    teams = list(console_teams(request.user))
    chosen = [t for t in teams if str(t.pk) == request.GET.get("team")] or teams
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    days = days if days in DASHBOARD_DAYS else 30
    board = reports.team_dashboard(teams=chosen, days=days)
    agents = board.agents
    name = str
    figures = {
        "decisions": charts.stacked_chart(
            "Decisions within own authority and after approval, per agent",
            [(name(a.user), [a.own_authority, a.via_approval]) for a in agents],
            ["within own authority", "after approval"]),
        "approval": charts.bar_chart(
            "Approval rate of authority requests, per agent (%)",
            [charts.Bar(name(a.user), a.approval_rate or 0,
                        f"{a.approval_rate} % of {a.decided_requests}" if a.approval_rate is not None
                        else "none decided") for a in agents], maximum=100),
        "approve_time": charts.bar_chart(
            "Average time to approve, per requesting agent (hours)",
            [charts.Bar(name(a.user), (a.approve_time.total_seconds() / 3600) if a.approve_time else 0,
                        charts.duration_text(a.approve_time)) for a in agents]),
        "utilisation": charts.bar_chart(
            "Period limit used, per agent (% of the most used cap)",
            [charts.Bar(name(a.user), a.utilisation or 0,
                        f"{a.utilisation} % {a.utilisation_kind.lower()}" if a.utilisation is not None else "no cap",
                        mark=_warning_word(a.utilisation)) for a in agents],
            maximum=100, thresholds=(75, 90, 100)),
        "resolution": charts.bar_chart(
            "Average time to resolution, per agent (hours)",
            [charts.Bar(name(a.user), (a.resolution_time.total_seconds() / 3600) if a.resolution_time else 0,
                        charts.duration_text(a.resolution_time)) for a in agents]),
        "first_contact": charts.bar_chart(
            "First-contact resolution, per agent (% of resolved cases)",
            [charts.Bar(name(a.user), a.first_contact_rate or 0,
                        f"{a.first_contact_rate} % of {a.resolved}" if a.resolved else "none resolved")
             for a in agents], maximum=100),
        "reopen": charts.bar_chart(
            "Reopen rate, per agent (% of resolved cases)",
            [charts.Bar(name(a.user), a.reopen_rate or 0,
                        f"{a.reopen_rate} % of {a.resolved}" if a.resolved else "none resolved") for a in agents],
            maximum=100),
        "rating": charts.bar_chart(
            "Average customer rating, per agent (1 to 5)",
            [charts.Bar(name(a.user), a.rating or 0,
                        f"{a.rating} of 5 ({a.rated} rated)" if a.rating is not None else "not rated")
             for a in agents], maximum=5),
        "sla": charts.bar_chart(
            "SLA breaches among cases opened in the period, per agent",
            [charts.Bar(name(a.user), a.breached, f"{a.breached} of {a.opened}"
                        + (f", {a.overdue_open} open and overdue" if a.overdue_open else "")) for a in agents]),
    }
    rating_rows = [{"agent": a, "cells": [a.ratings_by_kind.get(k.pk) for k in board.kinds]} for a in agents]
    return render(request, "authority/dashboard.html", {
        "board": board, "figures": figures, "teams": teams, "chosen": chosen if len(chosen) == 1 else [],
        "days": days, "day_choices": DASHBOARD_DAYS, "rating_rows": rating_rows,
        "tz": current_organisation().tz,
    })


def _warning_word(percent) -> str:
    if percent is None:
        return ""
    if percent >= 100:
        return "limit reached"
    if percent >= 90:
        return "over 90 %"
    if percent >= 75:
        return "over 75 %"
    return ""
