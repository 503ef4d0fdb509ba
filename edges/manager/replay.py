"""The policy replay of a pending grant change: what it would have decided differently, for its checker."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render

from authority import policy, reports
from authority.reports.replay import DEFAULT_DAYS, grant_change_replay
from edges.manager.forms import NoteForm
from edges.manager.views import _pending_changes
from edges.web.console import manager_console
from h2h_core.organisation import current_organisation


@manager_console
def grant_replay(request, pk: int):
    """Replay the last 90 days of the change's kind for the agents it speaks for, beside its controls.

    Computed for this one change only (the pending list links here), so the list stays cheap; the
    replay itself is a fixed number of queries whatever the history (authority.reports.replay).
    Seen by whoever sees the change on the pending list: the managers who may check it, and its maker.
    """
    grant = _pending_changes(request.user).filter(pk=pk).first()
    if grant is None:
        raise Http404("No such pending grant")
    own = policy.own_authority(request.user)
    replay = grant_change_replay(pending=grant, days=DEFAULT_DAYS)
    return render(request, "authority/replay.html", {
        "g": grant,
        "replay": replay,
        "diff": reports.grant_diff(grant.supersedes, grant),
        "is_maker": grant.granted_by_id == request.user.pk,
        "confirm": policy.may_confirm(request.user, grant, own=own),
        "reject": policy.may_check(request.user, grant, own=own),
        "form": NoteForm(),
        "tz": current_organisation().tz,
    })
