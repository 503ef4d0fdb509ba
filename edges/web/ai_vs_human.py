"""AI agents beside people, as a page and a CSV: what the manager and the auditor consoles share.

The manager sees the teams they manage; the auditor every case (read-only). Each console wraps these
in its own gatekeeper (edges.manager.ai_vs_human, edges.auditor.ai_vs_human). The figures come from
authority.reports.ai_vs_human in a fixed number of queries; the page adds the teams it offers.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from authority.reports.ai_vs_human import AI, CSV_COLUMNS, DEFAULT_DAYS, HUMAN, AiVsHuman, ai_vs_human, csv_rows
from edges.web import charts
from edges.web.report_exports import Scope, TeamPeriodForm, audited_csv, report_filters, team_period_form
from h2h_core.organisation import current_organisation

DAY_CHOICES = (7, 30, 90, 365)
DATASET = "ai-vs-human"


def _form(request, scope: Scope) -> TeamPeriodForm:
    return team_period_form(request, scope, day_choices=DAY_CHOICES, default_days=DEFAULT_DAYS,
                            days_label="Period")


def _report(form: TeamPeriodForm, scope: Scope) -> AiVsHuman:
    data = form.cleaned_data
    team = data.get("team")
    teams = [team] if team is not None else (None if scope.every_case else list(scope.teams))
    until = timezone.now()
    return ai_vs_human(teams=teams, since=until - timedelta(days=data.get("days") or DEFAULT_DAYS), until=until)


def _figures(report: AiVsHuman) -> dict:
    categories = report.by_category()
    return {
        "decisions": charts.stacked_chart(
            "Decisions executed per moment that matters: AI agents and people",
            [(label, [ai.figures.decisions, human.figures.decisions]) for label, ai, human in categories],
            ["AI agents", "people"]),
        "hand_offs": charts.bar_chart(
            "Hand-offs from an AI agent to a person, per moment that matters",
            [charts.Bar(label, ai.figures.hand_offs,
                        f"{ai.figures.hand_offs}, picked up {ai.figures.picked_up}"
                        + (f" after {charts.duration_text(ai.figures.pickup_time)} on average"
                           if ai.figures.pickup_time is not None else ""))
             for label, ai, _ in categories]),
    }


def ai_vs_human_page(request, *, scope: Scope):
    """The table (and two charts) of AI agents beside people, for the scope's teams and the chosen period."""
    form = _form(request, scope)
    report = _report(form, scope) if form.is_valid() else None
    chosen = form.cleaned_data.get("team") if report is not None else None
    return render(request, "authority/ai_vs_human.html", {
        "form": form, "report": report, "chosen": chosen, "scope": scope,
        "categories": report.by_category() if report else [],
        "ai_total": report.totals[AI] if report else None, "human_total": report.totals[HUMAN] if report else None,
        "figures": _figures(report) if report else {}, "query": request.GET.urlencode(),
        "tz": current_organisation().tz,
    }, status=200 if report is not None else 400)


def ai_vs_human_csv(request, *, scope: Scope) -> HttpResponse:
    """The same table as CSV (cells made safe for spreadsheets), recorded in the audit log before it leaves."""
    form = _form(request, scope)
    if not form.is_valid():
        messages.error(request, "Correct the filters before exporting.")
        return redirect(reverse(scope.page_url) + "?" + request.GET.urlencode())
    report = _report(form, scope)
    filters = report_filters(team=form.cleaned_data.get("team"), every_case=scope.every_case,
                             days=form.cleaned_data.get("days") or DEFAULT_DAYS, since=report.since, until=report.until)
    return audited_csv(actor=request.user, dataset=DATASET, filters=filters, header=[name for name, _ in CSV_COLUMNS],
                       rows=csv_rows(report), until=report.until)
