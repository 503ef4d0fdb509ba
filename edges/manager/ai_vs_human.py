"""The manager console's comparison of AI agents and people, over the teams the manager manages."""

from __future__ import annotations

from authority.policy.permissions import console_teams
from edges.web import ai_vs_human as shared
from edges.web.console import manager_console


def _scope(request) -> shared.Scope:
    return shared.Scope(teams=console_teams(request.user), every_case=False, page_url="authority:ai_vs_human",
                        csv_url="authority:ai_vs_human_csv", base_template="authority/manager_base.html",
                        all_label="All my teams")


@manager_console
def ai_vs_human(request):
    """Decisions, refusals, hand-offs, reversals and CSAT of AI agents beside people, in my teams."""
    return shared.ai_vs_human_page(request, scope=_scope(request))


@manager_console
def ai_vs_human_csv(request):
    """The same table as CSV, recorded in the audit log."""
    return shared.ai_vs_human_csv(request, scope=_scope(request))
