"""What an AI agent does with a case, as four tools: take, check, decide, hand off.

The AI agent works within its own authority and routing rules; at every moment that is not its to
decide, the case goes to a person who owns it from there, with the AI's context. Nothing here
decides a rule: the routing rule is `authority.policy.ai_agents.ai_may_own`, the authority is the
ordinary verdict (`decision_execute` enforces it under its locks), and the hand-off is the
`case_flow_hand_off` step. So an AI agent's decide answers one of three outcomes, never a dead end:

- executed: within its live authority, exactly as a person's decision would be;
- shadow: its authority for the kind is shadow (log-only): what it would have decided is
  recorded, nothing executes, and a person decides the case;
- handed_off: outside its routing rules, below its confidence bar, or over its authority.

Each tool with a side effect takes an idempotency key. One key names one attempt across the rows
it may leave (decision, shadow decision, hand-off), so a retry after a lost answer or a killed
worker finishes the same attempt and answers as the first call did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from authority import policy
from authority.errors import AuthorityDenied
from authority.models import AuthorityKind, Decision, ShadowDecision
from authority.policy.ai_agents import ai_agent_of, ai_may_act, ai_may_own
from authority.policy.verdict import Verdict
from authority.quantities import format_quantity, parse_amount, parse_confidence
from authority.selectors import has_shadow_authority
from authority.services import decision_execute
from authority.services.shadow import shadow_decision_record
from h2h_core.errors import IdempotencyConflict, NotAllowed
from h2h_core.hand_offs import may_hand_off
from h2h_core.models import AiAgent, Case, HandOff, HandOffReason
from h2h_core.services import idempotency_key_validate

from .cases import case_flow_claim
from .hand_offs import case_flow_hand_off


@dataclass(frozen=True)
class AiOutcome:
    outcome: str  # "owned" | "executed" | "shadow" | "handed_off"
    case: Case
    decision: Decision | None = None
    shadow_decision: ShadowDecision | None = None
    hand_off: HandOff | None = None
    reasons: tuple[str, ...] = ()
    verdict: Verdict | None = None


@dataclass(frozen=True)
class AiCheck:
    would: str  # "execute" | "shadow" | "hand_off"
    verdict: Verdict
    shadow_verdict: Verdict | None
    reasons: tuple[str, ...]


def _acting_ai(actor) -> AiAgent:
    ai_may_act(actor).require()
    return ai_agent_of(actor)


def _case(case: Case) -> Case:
    return Case.objects.select_related("customer", "owner").get(pk=case.pk)


def _handed_off(hand_off: HandOff, *, shadow: ShadowDecision | None = None, verdict: Verdict | None = None,
                reasons: Sequence[str] = ()) -> AiOutcome:
    return AiOutcome(outcome="shadow" if shadow is not None else "handed_off", case=_case(hand_off.case),
                     shadow_decision=shadow, hand_off=hand_off, reasons=tuple(reasons) or (hand_off.reason_text,),
                     verdict=verdict)


def _earlier_hand_off(*, actor, key: str | None, case: Case) -> HandOff | None:
    if key is None:
        return None
    hand_off = HandOff.objects.filter(from_agent=actor, idempotency_key=key).first()
    if hand_off is not None and hand_off.case_id != case.pk:
        raise IdempotencyConflict("This idempotency key was already used for another case.")
    return hand_off


def ai_case_take(*, actor, case: Case, idempotency_key: str | None = None, transcript: Sequence = (),
                 summary: str = "") -> AiOutcome:
    """Own a case from the team's queue when the routing rules give it to this AI agent; otherwise
    hand it to a person at once, with what the customer said so far."""
    ai = _acting_ai(actor)
    key = idempotency_key_validate(idempotency_key)
    case = _case(case)
    if earlier := _earlier_hand_off(actor=actor, key=key, case=case):
        return _handed_off(earlier)
    if case.owner_id == actor.pk:
        return AiOutcome(outcome="owned", case=case)
    routing = ai_may_own(ai, case)
    if not routing:
        if not may_hand_off(actor, case):  # not in its queue: not its to own, nor to pass on
            raise NotAllowed(f"{routing.reason} {case.reference} is not in {actor.get_username()}'s queue either.")
        hand_off = case_flow_hand_off(actor=actor, case=case, reason=HandOffReason.OUTSIDE_ROUTING,
                                      reason_text=routing.reason, summary=summary, transcript=transcript,
                                      idempotency_key=key)
        return _handed_off(hand_off, reasons=(routing.reason,))
    return AiOutcome(outcome="owned", case=case_flow_claim(actor=actor, case=case))


def ai_case_check(*, actor, case: Case, kind: AuthorityKind, amount, currency: str | None = None,
                  confidence=None) -> AiCheck:
    """Say what `ai_case_decide` would do with this decision now, changing nothing."""
    ai = _acting_ai(actor)
    case = _case(case)
    amount = parse_amount(amount, kind=kind, currency=currency)
    verdict = policy.evaluate(agent=actor, kind=kind, amount=amount, currency=currency, case=case,
                              with_approvers=False)
    shadow_verdict = None
    if stop := _stop_before_deciding(ai=ai, case=case, actor=actor, confidence=confidence):
        return AiCheck(would="hand_off", verdict=verdict, shadow_verdict=None, reasons=(stop[1],))
    if verdict.allowed:
        return AiCheck(would="execute", verdict=verdict, shadow_verdict=None, reasons=tuple(verdict.reasons))
    if has_shadow_authority(agent=actor, kind_id=kind.pk):
        shadow_verdict = policy.evaluate(agent=actor, kind=kind, amount=amount, currency=currency, case=case,
                                         shadow=True, with_approvers=False)
        return AiCheck(would="shadow", verdict=verdict, shadow_verdict=shadow_verdict,
                       reasons=tuple(shadow_verdict.reasons))
    return AiCheck(would="hand_off", verdict=verdict, shadow_verdict=None, reasons=tuple(verdict.reasons))


def _stop_before_deciding(*, ai: AiAgent, case: Case, actor, confidence) -> tuple[str, str] | None:
    """Return (hand-off reason, why) when the decision is not the AI agent's to attempt at all."""
    if case.owner_id != actor.pk:
        raise NotAllowed(f"{case.reference} is not owned by {actor.get_username()}: take it first.")
    routing = ai_may_own(ai, case)
    if not routing:
        return HandOffReason.OUTSIDE_ROUTING, routing.reason
    if confidence is not None:
        confidence = parse_confidence(confidence)
        if confidence < ai.min_confidence:
            return (HandOffReason.LOW_CONFIDENCE,
                    f"Stated confidence {confidence} is below this AI agent's bar of {ai.min_confidence}.")
    return None


def ai_case_decide(*, actor, case: Case, kind: AuthorityKind, amount, currency: str | None = None,
                   rationale: str, confidence, idempotency_key: str | None = None, transcript: Sequence = (),
                   summary: str = "") -> AiOutcome:
    """Decide within the AI agent's authority, or record it in shadow, or hand the case to a person.

    A refusal of the live decision is audited by `decision_execute` as any refusal is; what follows
    is a hand-off whose context names what was tried and why it stopped.
    """
    ai = _acting_ai(actor)
    if confidence is None:
        raise ValidationError({"confidence": "An AI agent states its confidence (0 to 1) with every decision."})
    confidence = parse_confidence(confidence)
    amount = parse_amount(amount, kind=kind, currency=currency)
    key = idempotency_key_validate(idempotency_key)
    case = _case(case)
    # A retry of an attempt that already ended: the same answer, nothing new.
    if key and Decision.objects.filter(agent=actor, idempotency_key=key).exists():
        return _executed(actor=actor, case=case, kind=kind, amount=amount, currency=currency, rationale=rationale,
                         confidence=confidence, key=key)
    if earlier := _earlier_hand_off(actor=actor, key=key, case=case):
        shadow = ShadowDecision.objects.filter(agent=actor, idempotency_key=key).first() if key else None
        return _handed_off(earlier, shadow=shadow)
    attempt = {"kind": kind.code, "amount": str(amount), "currency": currency or "", "rationale": rationale,
               "confidence": str(confidence)}
    asked = format_quantity(amount, unit=kind.unit, currency=currency or "")

    def hand_off(reason: str, why: str, *, outcome: str, reasons: Sequence[str], shadow=None, verdict=None):
        hand_off = case_flow_hand_off(
            actor=actor, case=case, reason=reason, reason_text=why, summary=summary, transcript=transcript,
            attempts=[{**attempt, "outcome": outcome, "reasons": list(reasons)}], idempotency_key=key,
            kind=kind, amount=amount, currency=currency)
        return _handed_off(hand_off, shadow=shadow, verdict=verdict, reasons=reasons)

    if stop := _stop_before_deciding(ai=ai, case=case, actor=actor, confidence=confidence):
        reason, why = stop
        return hand_off(reason, why, outcome="not attempted", reasons=(why,))
    shadow_existing = ShadowDecision.objects.filter(agent=actor, idempotency_key=key).first() if key else None
    if shadow_existing is None:
        try:
            return _executed(actor=actor, case=case, kind=kind, amount=amount, currency=currency,
                             rationale=rationale, confidence=confidence, key=key)
        except AuthorityDenied as denied:
            verdict = denied.verdict
        if not verdict.suspended and has_shadow_authority(agent=actor, kind_id=kind.pk):
            shadow_existing = shadow_decision_record(actor=actor, case=case, kind=kind, amount=amount,
                                                     currency=currency, rationale=rationale, confidence=confidence,
                                                     idempotency_key=key)
        else:
            why = f"{kind.name} of {asked} is over {actor.get_username()}'s authority: {' '.join(verdict.reasons)}"
            return hand_off(HandOffReason.OVER_AUTHORITY, why, outcome="refused", reasons=verdict.reasons,
                            verdict=verdict)
    shadow = shadow_existing
    would = "would have been allowed" if shadow.allowed else "would have been refused"
    why = (f"Shadow mode: {actor.get_username()} proposed {kind.name.lower()} of {asked} ({would} by its shadow "
           "grant); nothing was executed, a person decides.")
    return hand_off(HandOffReason.SHADOW, why, outcome="shadow", reasons=tuple(shadow.verdict.get("reasons", ())),
                    shadow=shadow)


def _executed(*, actor, case, kind, amount, currency, rationale, confidence, key) -> AiOutcome:
    decision = decision_execute(actor=actor, case=case, kind=kind, amount=amount, currency=currency,
                                rationale=rationale, confidence=confidence, idempotency_key=key)
    return AiOutcome(outcome="executed", case=_case(case), decision=decision,
                     reasons=tuple(decision.verdict.get("reasons", ())))


def ai_case_hand_off(*, actor, case: Case, reason_text: str, summary: str = "", transcript: Sequence = (),
                     idempotency_key: str | None = None) -> AiOutcome:
    """Hand a case to a person because the AI agent says so (the customer asked for one, say)."""
    _acting_ai(actor)
    key = idempotency_key_validate(idempotency_key)
    case = _case(case)
    if earlier := _earlier_hand_off(actor=actor, key=key, case=case):
        return _handed_off(earlier)
    if not isinstance(reason_text, str) or not reason_text.strip():
        raise ValidationError({"reason": "Say why a person should take over: they read it first."})
    hand_off = case_flow_hand_off(actor=actor, case=case, reason=HandOffReason.ASKED, reason_text=reason_text.strip(),
                                  summary=summary, transcript=transcript, idempotency_key=key)
    return _handed_off(hand_off)
