"""What waits for me, and the case page's "Approved — execute now" callout.

Both read workflows.inbox; the callout's link leads to the case page with the decision form
filled in from `?kind=&amount=&currency=` (initial values only: the review checks them as always).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from authority.quantities import format_plain, format_quantity
from h2h_core.organisation import current_organisation
from workflows import inbox


@login_required
@require_GET
def waiting(request):
    """One list of what waits for me: approvals, hand-offs, overdue cases, approved and rejected requests."""
    return render(request, "workflows/waiting.html", {
        "inbox": inbox.inbox_for(request.user),
        "limit": inbox.LIMIT,
        "now": timezone.now(),
        "tz": current_organisation().tz,
    })


def approved_callout_context(request, case, *, is_owner: bool) -> dict:
    """The owner's approved requests still to execute on `case`, each with its prefill link's values.

    The link's `?kind=&amount=&currency=` fills in the decision form through the case page's one
    prefill (edges.agent.assist), which never overwrites a form the agent typed. The amount is
    exactly the one approved: an approval covers nothing else.
    """
    if not is_owner:
        return {"approved_to_execute": []}
    return {"approved_to_execute": [
        {"request": r, "left": r.left, "shown": format_quantity(r.amount, unit=r.kind.unit, currency=r.currency),
         "kind": r.kind.code, "amount": format_plain(r.amount), "currency": r.currency}
        for r in inbox.approved_to_execute(request.user, case=case)
    ]}
