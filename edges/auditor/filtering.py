"""The filters of the audit log and the decision log, read from GET parameters.

The pages, the streamed exports and the export job all read them here, so an export built later by a
job from the parameters it stored matches exactly what the page showed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from authority import reports
from edges.auditor.forms import DecisionFilterForm
from edges.web.forms import case_number


def events_matching(params: Mapping[str, str]) -> tuple:
    """Audit events filtered by GET parameters (reports.events_matching); returns (queryset, the filters used)."""
    filters, given = {}, {}
    for param in ("action", "actor", "object_type", "object_id", "outcome"):
        value = params.get(param, "").strip()
        if value:
            filters[param] = given[param] = value
    number = case_number(params.get("case", ""))
    if number:
        filters["case"], given["case"] = str(number), number
    for param in ("date_from", "date_to"):
        value = params.get(param, "").strip()
        try:
            day = datetime.strptime(value, "%Y-%m-%d").date() if value else None
        except ValueError:
            day = None
        if day:
            filters[param], given[param] = value, day
    return reports.events_matching(reports.AuditFilters(**given)), filters


def decision_filters(params: Mapping[str, str]) -> tuple[DecisionFilterForm, reports.DecisionFilters | None]:
    """The decision-log form and its filters; the filters are None when the parameters are invalid."""
    form = DecisionFilterForm(params or None)
    if form.is_bound and form.is_valid():
        return form, form.filters()
    return form, reports.DecisionFilters() if not form.is_bound else None
