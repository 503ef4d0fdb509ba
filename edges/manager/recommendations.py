"""The manager console's limit recommendations: raise or lower, from evidence, accepted in one click."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from authority.models import AuthorityKind, Grant, GrantStatus
from authority.policy.permissions import console_people, console_teams, grants_visible_in_console
from authority.reports import recommendations as rules
from authority.services.recommendations import recommendation_accept
from edges.web.console import manager_console
from edges.web.service_calls import run_service
from h2h_core.organisation import current_organisation


def _accepted_grant(request) -> Grant | None:
    """The grant an accept just wrote (?accepted=<id>), when this console may show it; else None."""
    value = request.GET.get("accepted", "")
    if not value.isdigit() or len(value) > 18:
        return None
    return (Grant.objects.filter(pk=int(value), case__isnull=True).filter(grants_visible_in_console(request.user))
            .select_related("kind", "subject_user").first())


@manager_console
def recommendations(request):
    """Per agent of my teams and kind: raise, lower or keep the deciding grant's limits, with the evidence.

    Queries: the report's fixed number (authority.reports.recommendations), the teams, and the grant
    just accepted (when asked), plus the console's own; none per agent, kind or row.
    """
    teams = list(console_teams(request.user))
    report = rules.recommendations(teams=teams, manager=request.user)
    return render(request, "manager/recommendations.html", {
        "report": report, "teams": teams, "accepted": _accepted_grant(request), "rules": rules,
        "tz": current_organisation().tz,
    })


@manager_console
@require_POST
def recommendation_accept_view(request):
    """Accept one recommendation: the service recomputes it and proposes an ordinary grant change."""
    agent_id, code = request.POST.get("agent", ""), request.POST.get("kind", "")
    if not agent_id.isdigit() or len(agent_id) > 18:
        raise Http404("No such agent")
    agent = console_people(request.user).filter(pk=int(agent_id)).first()
    kind = AuthorityKind.objects.filter(code=code).first()
    if agent is None or kind is None:
        raise Http404("No such agent or kind")
    ok, grant = run_service(request, lambda: recommendation_accept(
        actor=request.user, agent=agent, kind=kind, expected=request.POST.get("expected") or None))
    if not ok:
        return redirect("authority:recommendations")
    waits = grant.status == GrantStatus.PENDING
    messages.success(request, f"Proposed grant {grant.label} for {grant.subject_label}: "
                     + ("it waits for a second manager to confirm it." if waits else "in force now."))
    return redirect(reverse("authority:recommendations") + f"?accepted={grant.pk}")
