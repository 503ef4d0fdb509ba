"""The hand-off step: an AI agent passes a case to a person, and the case's flow follows.

One durable transaction, like every case step (workflows.steps.cases): the process lock, then the
case service under the case's row lock. The receiver is chosen by `hand_off_receiver` (a person of
the team whose authority covers the pending decision, then the least loaded); with nobody to
receive it the case waits unowned in its team's queue, and the ownership task goes back to the
queue with it. The case's one-off grants are void: ownership changed under them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from authority.services import one_off_grants_void
from h2h_core.audit.refusals import audits_refusals, case_of
from h2h_core.errors import NotCaseOwner
from h2h_core.hand_offs import case_hand_off, hand_off_replayed
from h2h_core.models import Case, HandOff

from ..flows import CaseFlow
from ..hand_off_routing import hand_off_receiver
from ..process import activation_of, active_task, catch_up, refuse_unless
from .cases import _case_step


@audits_refusals("case.hand_off", object_type="case", object_from=case_of)
def case_flow_hand_off(
    *,
    actor,
    case: Case,
    reason: str,
    reason_text: str,
    summary: str = "",
    transcript: Iterable[dict] = (),
    attempts: Iterable[dict] = (),
    idempotency_key: str | None = None,
    by=None,
    kind=None,
    amount=None,
    currency: str | None = None,
) -> HandOff:
    """Hand `case` from AI agent `actor` (or manager `by` on its behalf) to a person, with its context.

    `kind`, `amount` and `currency` name the decision the AI agent could not take, if any: a person
    whose own authority covers it is preferred. A repeat with the same idempotency key returns the
    first hand-off and changes nothing (not even approvals given since).
    """
    context = {"reason": reason, "reason_text": reason_text, "summary": summary, "transcript": transcript,
               "attempts": attempts, "idempotency_key": idempotency_key, "by": by}
    # Read twice (the replay check, then the hand-off): a one-shot iterator becomes a list; anything
    # else goes to the service's validation as it came.
    context.update(transcript=list(transcript) if isinstance(transcript, Iterator) else transcript,
                   attempts=list(attempts) if isinstance(attempts, Iterator) else attempts)
    if (earlier := hand_off_replayed(actor=actor, case=case, **context)) is not None:
        return earlier
    with _case_step(case) as process:
        case = Case.objects.select_related("customer", "team").get(pk=case.pk)
        to_user = hand_off_receiver(case=case, kind=kind, amount=amount, currency=currency)
        own = active_task(process, CaseFlow.own) if process else None
        if own is not None:
            refuse_unless(activation_of(own).reassign, by or actor,
                          NotCaseOwner(f"Only the AI agent that owns {case.reference} hands it off."))
        receiver = to_user.get_username() if to_user is not None else "the team's queue"
        # Before the hand-off's own write: the grants' locks come before the audit head (the one lock order).
        one_off_grants_void(actor=by or actor, case=case,
                            reason=f"{case.reference} was handed off by AI agent {actor.get_username()} to {receiver}")
        hand_off = case_hand_off(actor=actor, case=case, to_user=to_user, **context)
        if process:
            _follow_owner(process, hand_off.case)
    return hand_off


def _follow_owner(process, case: Case) -> None:
    """Move the ownership task with the case: to the receiver, or back to the team's queue."""
    own = active_task(process, CaseFlow.own)
    if own is not None and case.owner_id is None and own.owner_id:
        activation_of(own).unassign()
    catch_up(process, case)
