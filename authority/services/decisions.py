"""Execute decisions: exact under concurrency, idempotent, audited, with an outbox record."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from authority import policy
from authority.errors import AuthorityDenied, IdempotencyConflict
from authority.models import AuthorityKind, AuthorityRequest, Decision
from authority.policy.ai_agents import ai_agent_of, ai_may_act
from authority.policy.approvals import approver_pool, with_pool
from authority.policy.verdict import Verdict
from authority.quantities import format_quantity, parse_amount, parse_confidence
from h2h_core.access import may_act_on_view, roles_of
from h2h_core.ai_agents import AiAgentSuspended
from h2h_core.audit import audit_record, canonical_json, snapshot_value
from h2h_core.errors import DomainError
from h2h_core.lock_objects import ai_agent_suspended_under_share_lock, case_locked
from h2h_core.models import Case, CaseEvent, Role
from h2h_core.models.audit import Outcome
from h2h_core.prepared_writes import InsertBatch, PreparedInsert
from h2h_core.services import case_require_owner, idempotency_key_validate
from h2h_core.transactions import outermost, service_atomic

from .integration import outbox_message_publish
from .usage import usage_consume_batched

# The rows every decision writes: their INSERTs compiled once per process (h2h_core.prepared_writes).
_NEW_DECISION = PreparedInsert(Decision)
_NEW_CASE_EVENT = PreparedInsert(CaseEvent)


class _Refused(Exception):
    def __init__(self, error: DomainError, verdict: Verdict | None = None):
        self.error = error
        self.verdict = verdict


def decision_fingerprint(*, case_id: int, kind_code: str, amount: Decimal, currency: str, rationale: str,
                         confidence: Decimal | None = None) -> str:
    """Return a digest of what was asked, to tell a replay from a different request with the same key."""
    payload = {"case": case_id, "kind": kind_code, "amount": snapshot_value(amount), "currency": currency,
               "rationale": rationale}
    if confidence is not None:
        payload["confidence"] = snapshot_value(confidence)
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def decision_snapshot(decision: Decision) -> dict:
    return {
        "id": decision.pk,
        "case_id": decision.case_id,
        "agent_id": decision.agent_id,
        "kind": decision.kind.code,
        "amount": decision.amount,
        "currency": decision.currency,
        "counted_amount": decision.counted_amount,
        "counted_currency": decision.counted_currency,
        "rate": decision.rate,
        "rate_date": decision.rate_date,
        "grant_id": decision.grant_id,
        "request_id": decision.request_id,
        "verdict": decision.verdict,
        "executed_at": decision.executed_at,
        **({"by_ai_agent": True, "ai_model": decision.ai_model, "ai_model_version": decision.ai_model_version,
            "confidence": decision.confidence} if decision.by_ai_agent else {}),
    }


def _replay(*, actor, key: str, fingerprint: str) -> Decision | None:
    existing = Decision.objects.select_related("kind").filter(agent=actor, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.payload_fingerprint != fingerprint:
        raise IdempotencyConflict(
            "This idempotency key was already used for a different decision.", decision_id=existing.pk
        )
    return existing


def decision_execute(
    *,
    actor,
    case: Case,
    kind: AuthorityKind,
    amount,
    currency: str | None = None,
    rationale: str,
    idempotency_key: str | None = None,
    seen_version: str | None = None,
    confidence=None,
) -> Decision:
    """Execute a decision on a case the actor owns, within the actor's authority (rules 3, 4, 5).

    Under the case's row lock the verdict is evaluated and every counter it names is raised with a
    conditional UPDATE; the decision, its outbox record and its audit event are written in the same
    transaction. A refusal rolls all of that back and commits only its own audit event, then raises
    AuthorityDenied (or the domain error that refused it). Inside a caller's transaction it joins it,
    and a refusal aborts the whole of it (the caller records the refusal). With `seen_version` (the
    case page's version) a decision asked on a page that no longer shows the case is refused
    (StaleView, saying what changed); a replay of the same key is not: it was executed once already.

    An AI agent states its `confidence` (0 to 1) with every decision; the decision records it with
    the agent's model and version as they were, and a suspended AI agent decides nothing.
    """
    if not isinstance(rationale, str) or not rationale.strip():
        raise ValidationError({"rationale": "Say why: the rationale is part of the record."})
    rationale = rationale.strip()
    amount = parse_amount(amount, kind=kind, currency=currency)
    currency = currency or ""
    confidence = None if confidence is None else parse_confidence(confidence)
    key = idempotency_key_validate(idempotency_key)
    fingerprint = decision_fingerprint(case_id=case.pk, kind_code=kind.code, amount=amount, currency=currency,
                                       rationale=rationale, confidence=confidence)
    # Called alone, a replay is told by the unique (agent, idempotency_key) index, not by a read first:
    # a new key (nearly every call) costs nothing, and a repeat ends in the index's IntegrityError or
    # in a refusal (its first execution may have spent the headroom), after which the key is read back
    # in a fresh transaction. Inside a caller's transaction an error aborts it and nothing more can be
    # read or written, so there the key is read first, under the case lock.
    alone = outermost()
    roles = sorted(roles_of(actor))  # the request's cached roles: read before any lock, or not at all
    try:
        decider = _decider(actor=actor, roles=roles, confidence=confidence)
    except (DomainError, ValidationError):
        if key and (existing := _replay(actor=actor, key=key, fingerprint=fingerprint)):
            return existing  # a suspended AI agent's retry of what it decided before it was suspended
        raise
    try:
        with service_atomic():
            return _execute_locked(actor=actor, roles=roles, case=case, kind=kind, amount=amount, currency=currency,
                                   rationale=rationale, key=key, fingerprint=fingerprint, seen_version=seen_version,
                                   decider=decider, read_key_first=not alone)
    except IntegrityError:
        # The same key committed by a concurrent or earlier call: report it as a replay.
        if alone and key and (existing := _replay(actor=actor, key=key, fingerprint=fingerprint)):
            return existing
        raise
    except _Refused as refused:
        if alone and key and (existing := _replay(actor=actor, key=key, fingerprint=fingerprint)):
            return existing  # executed once already: a repeat is answered with it, never refused
        if alone:  # else the caller's transaction rolls back, and the caller records the refusal
            refused = _with_approvers(refused, actor=actor, case=case, kind=kind, amount=amount, currency=currency)
            _record_refusal(actor=actor, roles=roles, case=case, kind=kind, amount=amount, currency=currency,
                            rationale=rationale, refused=refused)
        raise refused.error from None


def _decider(*, actor, roles: list[str], confidence: Decimal | None) -> dict:
    """Return what the decision records about who decided: for an AI agent, its model, version and
    confidence (required), after refusing a suspended one. Nothing (and no query) for a person."""
    if Role.AI_AGENT not in roles:
        return {"confidence": confidence}
    ai_may_act(actor).require()
    if confidence is None:
        raise ValidationError({"confidence": "An AI agent states its confidence (0 to 1) with every decision."})
    ai = ai_agent_of(actor)
    return {"by_ai_agent": True, "ai_model": ai.model_name, "ai_model_version": ai.model_version,
            "confidence": confidence}


def _execute_locked(*, actor, roles, case, kind, amount, currency, rationale, key, fingerprint,
                    seen_version=None, decider: dict, read_key_first: bool) -> Decision:
    case = case_locked(case.pk, related=("customer",))
    if read_key_first and key and (existing := _replay(actor=actor, key=key, fingerprint=fingerprint)):
        return existing
    try:
        may_act_on_view(case, seen_version).require()
        case_require_owner(case=case, actor=actor)
        if decider.get("by_ai_agent") and ai_agent_suspended_under_share_lock(user_id=actor.pk):
            raise AiAgentSuspended(f"{actor.get_username()} was suspended: it decides nothing.")
    except DomainError as error:
        raise _Refused(error) from None
    # The approver pool a refusal names is looked up after the locks are released (_with_approvers).
    verdict = policy.evaluate(agent=actor, kind=kind, amount=amount, currency=currency, case=case,
                              with_approvers=False)
    if not verdict.allowed:
        raise _Refused(AuthorityDenied(verdict), verdict)
    now = timezone.now()
    request = (
        AuthorityRequest.objects.filter(one_off_grant_id=verdict.via_one_off).first() if verdict.via_one_off else None
    )
    # The counters are raised and the decision written by one statement; if a counter would have passed
    # its cap, the others are lowered again and the refusal's rollback takes the decision's row.
    with InsertBatch() as batch:
        raised = usage_consume_batched(batch=batch, consumptions=verdict.consumptions, kind_id=kind.pk,
                                       agent_id=actor.pk, case_id=case.pk)
        decision = batch.add(_NEW_DECISION, Decision(
            case=case,
            agent=actor,
            kind=kind,
            amount=amount,
            currency=currency,
            counted_amount=verdict.counted_amount,
            counted_currency=verdict.counted_currency,
            rate=verdict.rate,
            rate_date=verdict.rate_date,
            grant_id=verdict.deciding_grant_id,
            request=request,
            verdict=verdict.as_dict(),
            rationale=rationale,
            idempotency_key=key,
            payload_fingerprint=fingerprint,
            executed_at=now,
            **decider,
        ))
    if not raised.succeeded():
        # Another decision spent the headroom between our read and our write: say so exactly.
        fresh = policy.evaluate(agent=actor, kind=kind, amount=amount, currency=currency, case=case,
                                with_approvers=False)
        raise _Refused(AuthorityDenied(fresh), fresh)
    snapshot = decision_snapshot(decision)
    # The rows that record the decision name it and nothing else names them: one INSERT for them all.
    with InsertBatch() as batch:
        outbox_message_publish(
            decision=decision,
            topic=kind.outbox_topic,
            payload=snapshot_value({**snapshot, "case_reference": case.reference, "customer_id": case.customer_id,
                                    "verdict": None}),
            at=now,
            batch=batch,
        )
        batch.add(_NEW_CASE_EVENT, CaseEvent(
            case=case, actor=actor, kind=CaseEvent.Kind.DECISION, at=now,
            text=f"{kind.name} of {format_quantity(amount, unit=kind.unit, currency=currency)}: {rationale}",
        ))
        audit_record(actor=actor, roles=roles, action="decision.executed", object_type="decision",
                     object_id=decision.pk, after=snapshot, reason=rationale, batch=batch)
    return decision


def _with_approvers(refused: _Refused, *, actor, case, kind, amount, currency) -> _Refused:
    """Name who could approve the refused amount, as the form and the request service would."""
    verdict = refused.verdict
    if verdict is None or verdict.suspended:
        return refused
    pool = approver_pool(requester=actor, case=case, kind=kind, amount=amount, currency=currency or None)
    verdict = with_pool(verdict, pool)
    return _Refused(AuthorityDenied(verdict), verdict)


def _record_refusal(*, actor, roles, case, kind, amount, currency, rationale, refused: _Refused) -> None:
    asked = {"case_id": case.pk, "kind": kind.code, "amount": amount, "currency": currency}
    with transaction.atomic():
        audit_record(
            actor=actor,
            roles=roles,
            action="decision.refused",
            object_type="case",
            object_id=case.pk,
            outcome=Outcome.DENIED,
            after={**asked, "error": refused.error.code,
                   "verdict": refused.verdict.as_dict() if refused.verdict else None},
            reason=refused.error.message,
        )
