"""Shadow decisions: what an agent would have decided under its shadow grants, recorded, never executed.

A shadow decision is evaluated as a live one is (under the case's lock, against the per-case and
period headroom it would have had), but it writes no Decision, raises no usage counter and publishes
no outbox message: a person decides the case, and the two are compared (authority.reports.shadow).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from authority import policy
from authority.errors import IdempotencyConflict
from authority.models import AuthorityKind, Grant, ShadowDecision
from authority.quantities import parse_amount, parse_confidence
from h2h_core.ai_agents import ai_agent_of, ai_may_act
from h2h_core.audit import audit_record
from h2h_core.audit.record import actor_roles
from h2h_core.audit.refusals import audits_refusals, case_of
from h2h_core.lock_objects import case_locked
from h2h_core.models import Case
from h2h_core.services import case_require_owner, idempotency_key_validate, payload_fingerprint
from h2h_core.transactions import outermost, service_atomic


def shadow_decision_snapshot(shadow: ShadowDecision) -> dict:
    return {
        "id": shadow.pk,
        "case_id": shadow.case_id,
        "agent_id": shadow.agent_id,
        "kind": shadow.kind.code,
        "amount": shadow.amount,
        "currency": shadow.currency,
        "allowed": shadow.allowed,
        "grant_id": shadow.grant_id,
        "ai_model": shadow.ai_model,
        "ai_model_version": shadow.ai_model_version,
        "confidence": shadow.confidence,
        "verdict": shadow.verdict,
        "created_at": shadow.created_at,
    }


def _replay(*, actor, key: str, fingerprint: str) -> ShadowDecision | None:
    existing = ShadowDecision.objects.select_related("kind").filter(agent=actor, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.payload_fingerprint != fingerprint:
        raise IdempotencyConflict("This idempotency key was already used for a different shadow decision.",
                                  shadow_decision_id=existing.pk)
    return existing


def _ai_identity(actor) -> dict:
    """The model and version an AI agent runs, as they are now, after refusing a suspended one.

    Nothing for a person. One query (the AI agent's registration, cached on the user).
    """
    ai = ai_agent_of(actor)
    if ai is None:
        return {}
    ai_may_act(actor).require()
    return {"ai_model": ai.model_name, "ai_model_version": ai.model_version}


@audits_refusals("decision.shadow", object_type="case", object_from=case_of)
def shadow_decision_record(
    *,
    actor,
    case: Case,
    kind: AuthorityKind,
    amount,
    currency: str | None = None,
    rationale: str,
    confidence=None,
    idempotency_key: str | None = None,
) -> ShadowDecision:
    """Record what `actor` would have decided on a case they own, under their shadow grants.

    The verdict is `policy.evaluate(..., shadow=True)` under the case's row lock: shadow grants speak
    as if live. `allowed` is its answer and `grant` the deciding shadow grant, if one decided. Nothing
    executes: no Decision, no usage, no outbox message. An AI agent's model and version are stamped
    as they are now. With an idempotency key a repeat returns the first record; another call with the
    key is refused. Inside a caller's transaction it joins it.
    """
    if not isinstance(rationale, str) or not rationale.strip():
        raise ValidationError({"rationale": "Say why: the rationale is part of the record."})
    rationale = rationale.strip()
    amount = parse_amount(amount, kind=kind, currency=currency)
    currency = currency or ""
    confidence = None if confidence is None else parse_confidence(confidence)
    key = idempotency_key_validate(idempotency_key)
    fingerprint = payload_fingerprint({"case": case.pk, "kind": kind.code, "amount": amount, "currency": currency,
                                       "rationale": rationale, "confidence": confidence})
    if key and (existing := _replay(actor=actor, key=key, fingerprint=fingerprint)):
        return existing
    roles = actor_roles(actor)  # read before the lock, as decision_execute does
    identity = _ai_identity(actor)
    alone = outermost()
    try:
        with service_atomic():
            return _record_locked(actor=actor, roles=roles, case=case, kind=kind, amount=amount, currency=currency,
                                  rationale=rationale, confidence=confidence, key=key, fingerprint=fingerprint,
                                  identity=identity)
    except IntegrityError:
        # The same key committed by a concurrent call: report it as a replay.
        if alone and key and (existing := _replay(actor=actor, key=key, fingerprint=fingerprint)):
            return existing
        raise


def _record_locked(*, actor, roles, case, kind, amount, currency, rationale, confidence, key, fingerprint,
                   identity: dict) -> ShadowDecision:
    case = case_locked(case.pk, related=("customer",))
    if key and (existing := _replay(actor=actor, key=key, fingerprint=fingerprint)):
        return existing
    case_require_owner(case=case, actor=actor)
    verdict = policy.evaluate(agent=actor, kind=kind, amount=amount, currency=currency, case=case, shadow=True,
                              with_approvers=False)
    deciding = verdict.deciding_grant_id
    shadow_grant = deciding if deciding and Grant.objects.filter(pk=deciding, shadow=True).exists() else None
    shadow = ShadowDecision.objects.create(
        case=case,
        agent=actor,
        kind=kind,
        amount=amount,
        currency=currency,
        allowed=verdict.allowed,
        grant_id=shadow_grant,
        verdict=verdict.as_dict(),
        rationale=rationale,
        confidence=confidence,
        created_at=timezone.now(),
        idempotency_key=key,
        payload_fingerprint=fingerprint,
        **identity,
    )
    audit_record(actor=actor, roles=roles, action="decision.shadow", object_type="shadow_decision",
                 object_id=shadow.pk, after=shadow_decision_snapshot(shadow), reason=rationale)
    return shadow
