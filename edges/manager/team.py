"""The manager console's team pages: people and their headroom, delegation, what-if, the dashboard."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from authority import policy, reports
from authority.models import Delegation
from authority.policy.permissions import (
    console_people,
    console_teams,
)
from authority.services.oversight import delegation_create, delegation_revoke, delegations_in_force
from edges.manager.forms import DelegationForm, WhatIfForm
from edges.web import charts
from edges.web.console import manager_console
from edges.web.forms import case_number
from edges.web.service_calls import error_text, run_service
from h2h_core.models import Case, Customer, CustomerTier
from h2h_core.organisation import current_organisation

User = get_user_model()
TEMPORARY_DAYS = 14
DASHBOARD_DAYS = (7, 30, 90)


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
