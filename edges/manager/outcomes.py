"""The manager console's outcomes by moment that matters, over the teams the manager manages."""

from __future__ import annotations

from authority.policy.permissions import console_teams
from edges.web import outcomes as shared
from edges.web.console import manager_console


def _scope(request) -> shared.Scope:
    return shared.Scope(teams=console_teams(request.user), every_case=False, page_url="authority:outcomes",
                        csv_url="authority:outcomes_csv", base_template="authority/manager_base.html",
                        all_label="All my teams")


@manager_console
def outcomes(request):
    """CSAT, reopen rate, time to resolution and retention per moment that matters and resolution path."""
    return shared.outcomes_page(request, scope=_scope(request))


@manager_console
def outcomes_csv(request):
    """The same figures as CSV, recorded in the audit log."""
    return shared.outcomes_csv(request, scope=_scope(request))
