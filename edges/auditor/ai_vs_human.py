"""The auditor console's comparison of AI agents and people: every team, read-only."""

from __future__ import annotations

from edges.web import ai_vs_human as shared
from edges.web.console import auditor_console
from h2h_core.models import Team


def _scope() -> shared.Scope:
    return shared.Scope(teams=Team.objects.order_by("name"), every_case=True, page_url="audit:ai_vs_human",
                        csv_url="audit:ai_vs_human_csv", base_template="authority/auditor_base.html",
                        all_label="Every case")


@auditor_console
def ai_vs_human(request):
    """Decisions, refusals, hand-offs, reversals and CSAT of AI agents beside people, across the organisation."""
    return shared.ai_vs_human_page(request, scope=_scope())


@auditor_console
def ai_vs_human_csv(request):
    """The same table as CSV, recorded in the audit log like every export."""
    return shared.ai_vs_human_csv(request, scope=_scope())
