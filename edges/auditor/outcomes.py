"""The auditor console's outcomes by moment that matters: every team, read-only."""

from __future__ import annotations

from edges.web import outcomes as shared
from edges.web.console import auditor_console
from h2h_core.models import Team


def _scope() -> shared.Scope:
    return shared.Scope(teams=Team.objects.order_by("name"), every_case=True, page_url="audit:outcomes",
                        csv_url="audit:outcomes_csv", base_template="authority/auditor_base.html",
                        all_label="Every case")


@auditor_console
def outcomes(request):
    """CSAT, reopen rate, time to resolution and retention per moment that matters and path, organisation-wide."""
    return shared.outcomes_page(request, scope=_scope())


@auditor_console
def outcomes_csv(request):
    """The same figures as CSV, recorded in the audit log like every export."""
    return shared.outcomes_csv(request, scope=_scope())
