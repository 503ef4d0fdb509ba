"""Reverse an executed decision: recorded on the decision, the case's timeline and the audit chain.

A reversal undoes a decision downstream (the billing or CRM system takes the refund back); the
usage the decision consumed stays consumed (see Decision.reversed_at), so a reversal never makes
room for another decision. The reversal publishes its own outbox message, topic
"<the decision's topic>.reversed", in the same transaction, so every webhook subscribed to the
decision's topic hears of it; the decisions API shows it too (`reversed_at`, `reversed_by`,
`reversal_reason`).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone

from authority.lock_objects import decision_qs_select_for_update
from authority.models import Decision
from authority.policy.reversals import may_reverse
from authority.quantities import format_quantity
from h2h_core.audit import audit_record, snapshot_value
from h2h_core.audit.refusals import audits_refusals
from h2h_core.models import CaseEvent
from h2h_core.transactions import service_atomic

from .integration import outbox_message_publish

REASON_MAX = 2000


def reversal_snapshot(decision: Decision) -> dict:
    return {
        "id": decision.pk,
        "case_id": decision.case_id,
        "agent_id": decision.agent_id,
        "kind": decision.kind.code,
        "amount": decision.amount,
        "currency": decision.currency,
        "executed_at": decision.executed_at,
        "reversed_at": decision.reversed_at,
        "reversed_by_id": decision.reversed_by_id,
        "reversal_reason": decision.reversal_reason,
    }


def _decision_of(kwargs: dict):
    return kwargs.get("decision")


@audits_refusals("decision.reverse", object_type="decision", object_from=_decision_of)
def decision_reverse(*, actor, decision: Decision, reason: str) -> Decision:
    """Reverse `decision` with the reason the agent, the customer's record and the auditor will read.

    A manager of the case's team (or a superuser), never the decider, reverses it, once
    (policy.may_reverse, asked under the decision's row lock). The usage it consumed stays consumed.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError({"reason": "Say why the decision is reversed: it is part of the record."})
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"Keep the reason under {REASON_MAX} characters."})
    with service_atomic():
        decision = (decision_qs_select_for_update().select_related("case", "kind", "agent", "reversed_by")
                    .get(pk=decision.pk))
        may_reverse(actor, decision).require()
        before = reversal_snapshot(decision)
        now = timezone.now()
        decision.reversed_at, decision.reversed_by, decision.reversal_reason = now, actor, reason
        decision.save(update_fields=["reversed_at", "reversed_by", "reversal_reason"])
        what = format_quantity(decision.amount, unit=decision.kind.unit, currency=decision.currency)
        CaseEvent.objects.create(
            case_id=decision.case_id, actor=actor, kind=CaseEvent.Kind.DECISION, at=now,
            text=f"{actor.get_username()} reversed the {decision.kind.name.lower()} of {what} decided by "
                 f"{decision.agent.get_username()} (decision #{decision.pk}): {reason}",
        )
        outbox_message_publish(
            decision=decision, topic=f"{decision.kind.outbox_topic}.reversed", at=now,
            payload=snapshot_value({**reversal_snapshot(decision), "case_reference": decision.case.reference,
                                    "customer_id": decision.case.customer_id}),
        )
        audit_record(actor=actor, action="decision.reversed", object_type="decision", object_id=decision.pk,
                     before=before, after=reversal_snapshot(decision), reason=reason)
    return decision
