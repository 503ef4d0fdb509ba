"""The case page's assist panel: similar resolved cases, the customer's tone, a next-best action.

The suggestion only prefills the decision form (a link with ?kind=&amount=&currency=); the agent
reviews and submits it like any other decision.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse

from authority.assist import customer_sentiment, next_best_action, similar_resolved_cases
from authority.quantities import format_plain
from h2h_core.models import Case


def assist_context(request, case: Case, *, is_owner: bool) -> dict:
    """Return the assist panel for the case's owner (its suggestion links to the prefilled form)."""
    if not is_owner:
        return {"assist": None}
    similar = similar_resolved_cases(user=request.user, case=case)
    action = next_best_action(agent=request.user, case=case, similar=similar)
    prefill_url = None
    if action is not None:
        query = {"kind": action.kind.code, "amount": format_plain(action.amount)}
        if action.currency:
            query["currency"] = action.currency
        prefill_url = f"{reverse('cases:detail', args=[case.pk])}?{urlencode(query)}#decide-h"
    return {"assist": {"similar": similar, "sentiment": customer_sentiment(case), "action": action,
                       "prefill_url": prefill_url}}

