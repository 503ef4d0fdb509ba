"""Outcomes by moment that matters, as a page and a CSV: what the manager and the auditor consoles share.

The manager sees the teams they manage; the auditor every case (read-only). Each console wraps these
in its own gatekeeper (edges.manager.outcomes, edges.auditor.outcomes). The figures come from
authority.reports.outcomes in a fixed number of queries; the page draws one chart per figure, with
the same figures as a table beside it (the table is the accessible version).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from authority.reports.outcomes import (
    AI,
    APPROVAL,
    CSV_COLUMNS,
    DEFAULT_DAYS,
    HAND_OFF,
    NO_DECISION,
    OWN,
    PATHS,
    RETENTION_DAYS,
    Figures,
    Outcomes,
    csv_rows,
    outcomes,
)
from edges.web import charts
from edges.web.report_exports import Scope, TeamPeriodForm, audited_csv, report_filters, team_period_form
from h2h_core.organisation import current_organisation

DAY_CHOICES = (30, 90, 180, 365)
DATASET = "outcomes"
#: Path names short enough for a chart's label column.
SHORT_PATHS = {OWN: "Own authority", APPROVAL: "One approval", AI: "AI agent", HAND_OFF: "After hand-off",
               NO_DECISION: "No decision"}


@dataclass(frozen=True)
class Measure:
    """One figure of the report as the page shows it: its chart's value and the text people read."""

    key: str
    title: str
    value: Callable[[Figures], float | None]  # None: nothing to show (no case, nobody rated)
    text: Callable[[Figures], str]
    maximum: float | None = None


def _count_of(part: int, whole: int) -> str:
    return f"{part} of {whole}"


MEASURES = (
    Measure("cases", "Cases resolved", lambda f: f.cases or None, lambda f: str(f.cases)),
    Measure("rating", "Customer rating (CSAT, 1 to 5)", lambda f: f.rating,
            lambda f: f"{f.rating:g} of 5 ({f.rated} rated)" if f.rating is not None else "no rating", maximum=5),
    Measure("reopen_rate", "Reopen rate", lambda f: f.reopen_rate,
            lambda f: f"{f.reopen_rate:g} % ({_count_of(f.reopened, f.cases)})" if f.cases else "no case",
            maximum=100),
    Measure("median_time", "Median time to resolution", lambda f: f.median_hours,
            lambda f: charts.duration_text(f.median_time) if f.median_time is not None else "no case"),
    Measure("retention_rate", f"Customers back within {RETENTION_DAYS} days (retention proxy)",
            lambda f: f.retention_rate,
            lambda f: f"{f.retention_rate:g} % ({_count_of(f.retained, f.cases)})" if f.cases else "no case",
            maximum=100),
)


def _form(request, scope: Scope) -> TeamPeriodForm:
    return team_period_form(request, scope, day_choices=DAY_CHOICES, default_days=DEFAULT_DAYS,
                            days_label="Resolved in")


def _report(form: TeamPeriodForm, scope: Scope) -> Outcomes:
    data = form.cleaned_data
    team = data.get("team")
    teams = [team] if team is not None else (None if scope.every_case else list(scope.teams))
    until = timezone.now()
    return outcomes(teams=teams, since=until - timedelta(days=data.get("days") or DEFAULT_DAYS), until=until)


def _figure(report: Outcomes, measure: Measure) -> dict:
    """One figure: a chart grouped by moment then path (cells with cases only), and its table."""
    groups = []
    rows = []
    for total, cells in report.matrix():
        groups.append((total.category_label, [
            charts.Bar(SHORT_PATHS[cell.path], measure.value(cell.figures), measure.text(cell.figures))
            for cell in cells if cell.figures.cases and measure.value(cell.figures) is not None]))
        rows.append((total.category_label, [measure.text(cell.figures) if cell.figures.cases else "—"
                                            for cell in [*cells, total]]))
    footer = ("All moments", [measure.text(report.by_path[path].figures) if report.by_path[path].figures.cases
                              else "—" for path, _ in PATHS]
              + [measure.text(report.total.figures) if report.total.figures.cases else "—"])
    title = f"{measure.title} per moment that matters and resolution path"
    return {"key": measure.key, "title": measure.title,
            "chart": charts.grouped_bar_chart(title, groups, maximum=measure.maximum),
            "caption": title, "rows": rows, "footer": footer}


def outcomes_page(request, *, scope: Scope):
    """One chart and one table per figure, for the scope's teams and the chosen period."""
    form = _form(request, scope)
    report = _report(form, scope) if form.is_valid() else None
    chosen = form.cleaned_data.get("team") if report is not None else None
    return render(request, "authority/outcomes.html", {
        "form": form, "report": report, "chosen": chosen, "scope": scope, "paths": PATHS,
        "figures": [_figure(report, measure) for measure in MEASURES] if report else [],
        "query": request.GET.urlencode(), "tz": current_organisation().tz, "retention_days": RETENTION_DAYS,
    }, status=200 if report is not None else 400)


def outcomes_csv(request, *, scope: Scope) -> HttpResponse:
    """The same figures as CSV (cells made safe for spreadsheets), recorded in the audit log before it leaves."""
    form = _form(request, scope)
    if not form.is_valid():
        messages.error(request, "Correct the filters before exporting.")
        return redirect(reverse(scope.page_url) + "?" + request.GET.urlencode())
    report = _report(form, scope)
    filters = report_filters(team=form.cleaned_data.get("team"), every_case=scope.every_case,
                             days=form.cleaned_data.get("days") or DEFAULT_DAYS, since=report.since, until=report.until)
    return audited_csv(actor=request.user, dataset=DATASET, filters=filters, header=[name for name, _ in CSV_COLUMNS],
                       rows=csv_rows(report), until=report.until)
