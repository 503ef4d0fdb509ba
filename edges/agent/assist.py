"""The case page's assist panel: similar resolved cases, the customer's tone, a next-best action.

The suggestion only prefills the decision form (a link with ?kind=&amount=&currency=); the agent
reviews and submits it like any other decision.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from authority.assist import customer_sentiment, next_best_action, similar_resolved_cases
from authority.quantities import format_plain
from edges.agent.forms import DecisionForm
from h2h_core.models import Case

# Plain ASCII only: anything else in the link is ignored and the form keeps its usual defaults.
_KIND = re.compile(r"[a-z][a-z0-9_]{0,49}")
_AMOUNT = re.compile(r"[0-9]{1,13}(\.[0-9]{1,4})?")


def assist_context(request, case: Case, *, is_owner: bool, keep_form: bool) -> dict:
    """Return the assist panel for the case's owner and, from a suggestion's link, the prefilled form.

    `keep_form` is true when the page already shows a form to keep (one with errors, or a draft
    kept across a login): a link never overwrites what the agent typed.
    """
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
    context = {"assist": {"similar": similar, "sentiment": customer_sentiment(case), "action": action,
                          "prefill_url": prefill_url}}
    initial = None if keep_form else _prefill(request.GET)
    if initial:
        context["decision_form"] = DecisionForm(initial={"currency": str(case.amount_at_stake.currency), **initial})
    return context


def _prefill(params) -> dict:
    """Return the decision form's initial kind, amount and currency from a suggestion's link."""
    kind, amount, currency = (str(params.get(name, ""))[:60] for name in ("kind", "amount", "currency"))
    if not _KIND.fullmatch(kind):
        return {}
    initial = {"kind": kind}
    if _AMOUNT.fullmatch(amount):
        initial["amount"] = amount
    if currency in settings.CURRENCIES:
        initial["currency"] = currency
    return initial
