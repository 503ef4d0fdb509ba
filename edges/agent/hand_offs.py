"""The hand-off from an AI agent on the person's side: the case page's panel, the pickup, the customer's AI
conversations. Reads go through the visibility selector; the one write is `hand_off_pick_up`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from edges.web.service_calls import run_service
from h2h_core.hand_offs import hand_off_pick_up, hand_offs_visible_to, latest_hand_offs, may_pick_up
from h2h_core.models import Case, Customer, HandOff

#: A transcript longer than this many lines is folded into a <details> on the page.
TRANSCRIPT_OPEN_LINES = 6
CUSTOMER_CONVERSATIONS = 10
PANEL_CONVERSATIONS = 3


def hand_off_context(user, case: Case) -> dict:
    """The case's latest hand-off from an AI agent (if it came from one) and whether `user` picks it up now."""
    hand_off = (HandOff.objects.filter(case_id=case.pk).select_related("from_agent", "to_user", "picked_up_by")
                .order_by("-created_at", "-id").first())
    if hand_off is None:
        return {"hand_off": None}
    return {
        "hand_off": hand_off,
        "hand_off_transcript_folded": len(hand_off.transcript) > TRANSCRIPT_OPEN_LINES,
        "can_pick_up": hand_off.picked_up_at is None and bool(may_pick_up(user, hand_off, case)),
    }


def customer_ai_conversations(user, customer: Customer, *, limit: int = CUSTOMER_CONVERSATIONS) -> list[HandOff]:
    """The latest hand-off of each of the customer's cases `user` may see, newest first (one query)."""
    return list(latest_hand_offs(hand_offs_visible_to(user).filter(case__customer_id=customer.pk))
                .select_related("case", "from_agent").order_by("-created_at", "-id")[:limit])


@login_required
@require_POST
def hand_off_pick_up_view(request, pk: int, hand_off_id: int):
    hand_off = (hand_offs_visible_to(request.user).select_related("case", "from_agent")
                .filter(pk=hand_off_id, case_id=pk).first())
    if hand_off is None:
        raise Http404("No such hand-off")
    ok, _ = run_service(request, lambda: hand_off_pick_up(actor=request.user, hand_off=hand_off))
    if ok:
        messages.success(request, f"You picked up {hand_off.case.reference} from {hand_off.from_agent.username}.")
    return redirect("cases:detail", pk=pk)
