"""The manager console's shadow decisions: what AI agents would have decided, beside what people did."""

from __future__ import annotations

from django.shortcuts import render

from authority.models import AuthorityKind
from authority.policy.permissions import console_teams
from authority.reports.shadow import COMPARISONS_LIMIT, OUTCOME_LABELS, agreement_by_agent_and_kind, shadow_comparisons
from edges.web.console import manager_console
from h2h_core.models import AiAgent
from h2h_core.organisation import current_organisation


def ai_agents_in_console(user):
    """The AI agents of the teams the manager manages (every team for a superuser)."""
    return AiAgent.objects.filter(team__in=console_teams(user)).select_related("user", "team").order_by(
        "user__username")


@manager_console
def shadow_decisions(request):
    """Shadow decisions of my teams' AI agents beside what people then decided, and the agreement rate.

    Filters: `agent` (a user name) and `kind` (a code); unknown values are ignored, never a 500.
    Queries, whatever the number of rows: AI agents, kinds, agreement per agent and kind, then the
    comparisons (two), plus the console's own.
    """
    agents = list(ai_agents_in_console(request.user))
    kinds = list(AuthorityKind.objects.order_by("name"))
    chosen_agent = next((a for a in agents if a.user.username == request.GET.get("agent")), None)
    chosen_kind = next((k for k in kinds if k.code == request.GET.get("kind")), None)
    agent_ids = [chosen_agent.user_id] if chosen_agent else [a.user_id for a in agents]
    kind_id = chosen_kind.pk if chosen_kind else None
    by_user = {a.user_id: a for a in agents}
    by_kind = {k.pk: k for k in kinds}
    agreement = [{"ai": by_user[row.agent_id], "kind": by_kind[row.kind_id], "agreement": row.agreement}
                 for row in agreement_by_agent_and_kind(agent_ids=agent_ids, kind_id=kind_id)]
    rows = shadow_comparisons(agent_ids=agent_ids, kind_id=kind_id) if agent_ids else []
    return render(request, "manager/shadow.html", {
        "agents": agents, "kinds": kinds, "chosen_agent": chosen_agent, "chosen_kind": chosen_kind,
        "agreement": agreement, "rows": rows, "limit": COMPARISONS_LIMIT, "outcomes": OUTCOME_LABELS,
        "tz": current_organisation().tz,
    })
