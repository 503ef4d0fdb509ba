"""Presence on the case page: who else has it open, and whether the page still shows the case.

The page (h2h/presence.js) beats every 3 s; every app server reads and writes the same rows
(h2h_core.presence), so two people see each other whichever server answers them.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.views.decorators.http import require_POST

from authority import policy
from h2h_core.access import may_act_on_view
from h2h_core.case_views import case_view_version, with_view_parts
from h2h_core.models import Case
from h2h_core.presence import PRESENCE_TTL, case_presence_beat, case_presence_others


def presence_context(user, case: Case) -> dict:
    """The case page's part: the version its forms post back, and who else is here as the page renders."""
    return {
        "view_version": case_view_version(case),
        "present_others": case_presence_others(case=case, user=user),
        "presence_ttl_seconds": int(PRESENCE_TTL.total_seconds()),
    }


@login_required
@require_POST
def case_presence(request, pk: int):
    """Heartbeat: record that the user has the case open; answer who else has, and the case's version.

    Only for a case the user may see (404 otherwise, and nothing is recorded). When the page's
    version is no longer the case's, `changed` says in words what changed since it was opened.
    """
    case = (with_view_parts(policy.cases_visible_to(request.user).filter(pk=pk))
            .only("pk", "owner_id", "status").first())
    if case is None:
        raise Http404("No such case")
    others = case_presence_beat(actor=request.user, case=case, editing=str(request.POST.get("editing", ""))[:12])
    version = case_view_version(case)
    seen = request.POST.get("seen_version") or None
    changed = "" if seen in (None, version) else may_act_on_view(case, seen).reason
    return JsonResponse({"others": [person.as_dict() for person in others], "version": version, "changed": changed})
