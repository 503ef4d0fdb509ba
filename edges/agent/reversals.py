"""Reversing a decision from the case page (managers of the case's team): the form and its view.

The form is shown only where `policy.may_reverse` allows, and the service asks the same predicate
under the decision's lock.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from authority import policy
from authority.services import decision_reverse
from edges.web.service_calls import run_service


class ReverseForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


def with_reversal_rights(user, decisions: list) -> list:
    """Mark each decision with whether `user` may reverse it (no query: load case and reversed_by with them)."""
    for decision in decisions:
        decision.may_reverse = policy.may_reverse(user, decision)
    return decisions


@login_required
@require_POST
def decision_reverse_view(request, pk: int, decision_id: int):
    """Reverse one decision of case `pk` with the reason given; refusals come back as messages."""
    decision = (policy.decisions_visible_to(request.user).select_related("case", "kind")
                .filter(pk=decision_id, case_id=pk).first())
    if decision is None:
        raise Http404("No such decision, or you may not see it.")
    form = ReverseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the decision is reversed.")
        return redirect("cases:detail", pk=pk)
    ok, _ = run_service(request, lambda: decision_reverse(actor=request.user, decision=decision,
                                                          reason=form.cleaned_data["reason"]))
    if ok:
        messages.success(request, f"Decision #{decision.pk} ({decision.kind.name.lower()}) is reversed; "
                                  "the usage it consumed stays consumed.")
    return redirect("cases:detail", pk=pk)
