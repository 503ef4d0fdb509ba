"""What the consoles' report pages (AI beside people, outcomes) share: where the reader may look,
the team-and-period filter, and the table as a CSV download recorded in the audit log before it
leaves (`audited_csv`, its cells made safe for spreadsheets by `csv_lines`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.db import transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from h2h_core.audit import audit_record

from .csv_cells import csv_lines


@dataclass(frozen=True)
class Scope:
    """Where a console's reader may look: the teams offered, and whether "all" means every case."""

    teams: QuerySet  # the teams offered in the filter
    every_case: bool  # "all" means every case, with or without a team (the auditor); else the teams offered
    page_url: str  # URL names of the page and its CSV
    csv_url: str
    base_template: str
    all_label: str


class TeamPeriodForm(forms.Form):
    """A report page's filter: one of the teams offered (or all of them) and the last N days."""

    team = forms.ModelChoiceField(queryset=None, required=False, label="Team")
    days = forms.TypedChoiceField(coerce=int, required=False)

    def __init__(self, data, *, scope: Scope, day_choices: Iterable[int], default_days: int, days_label: str):
        super().__init__(data)
        self.fields["team"].queryset = scope.teams
        self.fields["team"].empty_label = scope.all_label
        days = self.fields["days"]
        days.choices = [(d, f"last {d} days") for d in day_choices]
        days.empty_value = days.initial = default_days
        days.label = days_label


def team_period_form(request, scope: Scope, *, day_choices: Iterable[int], default_days: int,
                     days_label: str) -> TeamPeriodForm:
    """The filters as asked, always bound: nothing asked means every team offered, the default period."""
    data = request.GET.copy()
    data.setdefault("days", str(default_days))
    return TeamPeriodForm(data, scope=scope, day_choices=day_choices, default_days=default_days,
                          days_label=days_label)


def report_filters(*, team, every_case: bool, days: int, since: datetime, until: datetime) -> dict:
    """What an export's audit event records of the page's filters."""
    return {"team": team.pk if team is not None else ("every case" if every_case else "all my teams"),
            "days": days, "since": since, "until": until}


def audited_csv(*, actor, dataset: str, filters: dict, header: Iterable[str], rows: Iterable[Iterable[Any]],
                until: datetime) -> StreamingHttpResponse:
    """Record the export (who, which dataset, which filters), then stream the table as CSV."""
    with transaction.atomic(durable=True):
        audit_record(actor=actor, action="audit.exported", object_type="export", object_id=dataset,
                     after={"dataset": dataset, "format": "csv", "filters": filters})
    response = StreamingHttpResponse(csv_lines(list(header), rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="h2h-{dataset}-{until:%Y%m%dT%H%M%SZ}.csv"'
    response["Cache-Control"] = "no-store"
    return response
