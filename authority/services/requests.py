"""One-hop authority requests: open, approve (creating a one-off grant), reject, expire."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from authority import policy, selectors
from authority import usage as usage_keys
from authority.errors import AlreadyDecided, AuthorityDenied, NotAllowed
from authority.lock_objects import authority_request_qs_select_for_update, grant_qs_select_for_update
from authority.models import (
    AuthorityKind,
    AuthorityRequest,
    Effect,
    Grant,
    GrantStatus,
    Period,
    RequestStatus,
)
from authority.quantities import format_quantity, parse_amount
from h2h_core.audit import audit_record
from h2h_core.audit.refusals import audits_refusals, case_of, request_of
from h2h_core.lock_objects import case_locked
from h2h_core.models import Case, CaseEvent
from h2h_core.prepared import PreparedQuery
from h2h_core.services import case_require_owner
from h2h_core.transactions import service_atomic

from .grants import grant_snapshot
from .usage import usage_consume

REQUEST_HOURS = 24


def request_snapshot(request: AuthorityRequest) -> dict:
    return {
        "id": request.pk,
        "case_id": request.case_id,
        "requester_id": request.requester_id,
        "kind": request.kind.code,
        "amount": request.amount,
        "currency": request.currency,
        "status": request.status,
        "pool": request.pool,
        "pool_is_fallback": request.pool_is_fallback,
        "decided_by_id": request.decided_by_id,
        "one_off_grant_id": request.one_off_grant_id,
    }


@audits_refusals("authority_request.open", object_type="case", object_from=case_of)
def authority_request_open(
    *,
    actor,
    case: Case,
    kind: AuthorityKind,
    amount,
    currency: str | None = None,
    justification: str,
    idempotency_key: str | None = None,
) -> AuthorityRequest:
    """Ask for a one-off grant over the owner's headroom: one hop to the approver pool."""
    if not isinstance(justification, str) or not justification.strip():
        raise ValidationError({"justification": "Explain why the customer needs this."})
    amount = parse_amount(amount, kind=kind, currency=currency)
    currency = currency or ""
    if idempotency_key:
        existing = AuthorityRequest.objects.filter(requester=actor, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    case = Case.objects.select_related("customer", "team").get(pk=case.pk)
    case_require_owner(case=case, actor=actor)
    verdict = policy.evaluate(agent=actor, kind=kind, amount=amount, currency=currency or None, case=case,
                              with_approvers=False)
    if verdict.allowed:
        raise ValidationError({"amount": "This is within your authority: decide it directly."})
    if verdict.suspended:
        raise AuthorityDenied(verdict)
    # The same pool the decision form and the review page named (rule 3a): one function decides it.
    pool = policy.approver_pool(requester=actor, case=case, kind=kind, amount=amount, currency=currency or None)
    if not pool:
        raise NotAllowed(pool.reason)
    verdict = policy.with_pool(verdict, pool)
    now = timezone.now()
    with service_atomic():
        case = case_locked(case.pk)
        case_require_owner(case=case, actor=actor)
        if AuthorityRequest.objects.filter(case=case, kind=kind, requester=actor, status=RequestStatus.OPEN).exists():
            raise AlreadyDecided(f"You already have an open {kind.name.lower()} request on {case.reference}.")
        request = AuthorityRequest.objects.create(
            case=case, requester=actor, kind=kind, amount=amount, currency=currency,
            justification=justification.strip(), verdict=verdict.as_dict(), pool=pool.user_ids,
            pool_is_fallback=pool.is_fallback, created_at=now, expires_at=now + timedelta(hours=REQUEST_HOURS),
            idempotency_key=idempotency_key,
        )
        names = ", ".join(pool.names)
        CaseEvent.objects.create(
            case=case, actor=actor, kind=CaseEvent.Kind.REQUEST, at=now,
            text=f"Asked {names} for {format_quantity(amount, unit=kind.unit, currency=currency)} of "
                 f"{kind.name.lower()}: {request.justification}",
        )
        audit_record(actor=actor, action="authority_request.opened", object_type="authority_request",
                     object_id=request.pk, after=request_snapshot(request), reason=request.justification)
    return request


def _locked_open_request(request: AuthorityRequest) -> AuthorityRequest:
    locked = authority_request_qs_select_for_update().select_related("kind", "case__customer").get(pk=request.pk)
    if locked.status != RequestStatus.OPEN:
        by = f" by {locked.decided_by.get_username()}" if locked.decided_by_id else ""
        when = f" at {locked.decided_at:%d %b %Y %H:%M} UTC" if locked.decided_at else ""
        raise AlreadyDecided(f"This request was already {locked.get_status_display().lower()}{by}{when}.")
    return locked


@audits_refusals("authority_request.approve", object_type="authority_request", object_from=request_of)
def authority_request_approve(*, actor, request: AuthorityRequest, note: str = "") -> AuthorityRequest:
    """Approve: a one-off grant for the requester on that case, kind and amount.

    The approver must be in the request's pool and their own authority must cover the amount
    (policy.may_approve, asked under the request's lock); the amount counts against the approver's
    period usage (rule 3a). Deciding a request twice is refused, never repeated.
    """
    with service_atomic():
        request = _locked_open_request(request)
        if request.expires_at <= timezone.now():
            raise AlreadyDecided("This request has expired; the agent can ask again.")
        case = request.case
        approval = policy.may_approve(actor, request)
        approval.require()  # NotAllowed, or AuthorityDenied with the approver's own verdict
        verdict = approval.verdict
        period_use = [c for c in verdict.consumptions if c.scope == "period"]
        if not usage_consume(consumptions=period_use, kind_id=request.kind_id, agent_id=actor.pk, case_id=case.pk):
            # Another approval spent the approver's headroom between our read and our write.
            raise AuthorityDenied(policy.evaluate(agent=actor, kind=request.kind, amount=request.amount,
                                                  currency=request.currency or None, case=case,
                                                  with_approvers=False))
        now = timezone.now()
        grant = Grant.objects.create(
            subject_user_id=request.requester_id, case=case, kind=request.kind, effect=Effect.PERMIT,
            per_case_limit=request.amount, period=Period.NONE, currency=request.currency,
            valid_from=now, valid_until=now + timedelta(hours=settings.H2H_ONE_OFF_GRANT_HOURS),
            granted_by=actor, confirmed_by=actor, confirmed_at=now, status=GrantStatus.ACTIVE,
            reason=f"Approved request #{request.pk}: {request.justification}", created_at=now,
            # Bound to the owner as they are now: a handover or reopening voids it (one_off_grants_void).
            bound_owner_id=case.owner_id,
        )
        Grant.objects.filter(pk=grant.pk).update(lineage=grant.pk)
        grant.lineage = grant.pk
        before = request_snapshot(request)
        request.status = RequestStatus.APPROVED
        request.decided_by = actor
        request.decided_at = now
        request.decision_note = note.strip()
        request.one_off_grant = grant
        request.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "one_off_grant"])
        approved = format_quantity(request.amount, unit=request.kind.unit, currency=request.currency)
        note_text = f": {request.decision_note}" if request.decision_note else ""
        CaseEvent.objects.create(case=case, actor=actor, kind=CaseEvent.Kind.REQUEST, at=now,
                                 text=f"{actor.get_username()} approved {approved}{note_text}")
        audit_record(actor=actor, action="authority_request.approved", object_type="authority_request",
                     object_id=request.pk, before=before,
                     after={**request_snapshot(request), "grant": grant_snapshot(grant),
                            "approver_verdict": verdict.as_dict()},
                     reason=request.decision_note)
    return request


@audits_refusals("authority_request.reject", object_type="authority_request", object_from=request_of)
def authority_request_reject(*, actor, request: AuthorityRequest, note: str) -> AuthorityRequest:
    """Reject with a reason the agent will read."""
    if not isinstance(note, str) or not note.strip():
        raise ValidationError({"note": "Give the agent a reason for the rejection."})
    with service_atomic():
        request = _locked_open_request(request)
        policy.may_reject(actor, request).require()
        before = request_snapshot(request)
        now = timezone.now()
        request.status = RequestStatus.REJECTED
        request.decided_by = actor
        request.decided_at = now
        request.decision_note = note.strip()
        request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        CaseEvent.objects.create(case_id=request.case_id, actor=actor, kind=CaseEvent.Kind.REQUEST, at=now,
                                 text=f"{actor.get_username()} rejected the request: {request.decision_note}")
        audit_record(actor=actor, action="authority_request.rejected", object_type="authority_request",
                     object_id=request.pk, before=before, after=request_snapshot(request),
                     reason=request.decision_note)
    return request


def authority_requests_expire(*, now=None) -> int:
    """Mark open requests past their expiry as expired (run by the timers); return how many.

    A loop of units of work, each request in its own durable transaction: it is never nested.
    """
    now = now or timezone.now()
    expired = 0
    for pk in AuthorityRequest.objects.filter(status=RequestStatus.OPEN, expires_at__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic(durable=True):
            request = authority_request_qs_select_for_update().select_related("kind").get(pk=pk)
            if request.status != RequestStatus.OPEN:
                continue
            before = request_snapshot(request)
            request.status = RequestStatus.EXPIRED
            request.decided_at = now
            request.save(update_fields=["status", "decided_at"])
            CaseEvent.objects.create(case_id=request.case_id, actor=None, kind=CaseEvent.Kind.REQUEST, at=now,
                                     text="The authority request expired without a decision.")
            audit_record(actor=None, action="authority_request.expired", object_type="authority_request",
                         object_id=request.pk, before=before, after=request_snapshot(request))
            expired += 1
    return expired


def _one_off_grants_in_force(shape, *, case_id: int, at: datetime) -> QuerySet[Grant]:
    return (
        grant_qs_select_for_update().select_related("kind", "subject_user")
        .filter(case_id=case_id, effect=Effect.PERMIT, status=GrantStatus.ACTIVE, valid_from__lte=at)
        .filter(Q(superseded_at__isnull=True) | Q(superseded_at__gt=at))
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
    )


# Locked by every claim, hand-over, hand-off, resolution and reopening, almost always to find none:
# compiled once per process (h2h_core.prepared), where building it cost more than running it.
_ONE_OFF_GRANTS_IN_FORCE = PreparedQuery(_one_off_grants_in_force, ints=("case_id",), instants=("at",))


def one_off_grants_void(*, actor, case: Case, reason: str) -> int:
    """Close every one-off grant of `case` still in force with something left of it; return how many.

    Called when the case changes under an approval (a handover, a hand-off, a reopening): the approval
    was given for that case as it was, to its owner then. Under the case's lock each grant is closed
    (superseded now, with `reason`), its approved request is marked voided, and each gets a case event
    and a "grant.voided" audit event. What a grant already allowed stays decided; only the rest is void.
    A grant used up is left as it is. Joins the caller's transaction: call it before the step's own
    write of the case (which appends to the audit chain), so the grants are locked before the audit
    head (the one lock order); a step refused afterwards rolls the void back with it.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError({"reason": "Say why the approvals on the case are void."})
    reason = reason.strip()
    with service_atomic():
        case = case_locked(case.pk)
        now = timezone.now()
        grants = _ONE_OFF_GRANTS_IN_FORCE.all(case_id=case.pk, at=now)
        used = selectors.usage_for_keys([usage_keys.one_off_key(grant_id=g.pk) for g in grants])
        grants = [g for g in grants
                  if g.per_case_limit is None or used.get(usage_keys.one_off_key(grant_id=g.pk), 0) < g.per_case_limit]
        if not grants:
            return 0
        requests = {r.one_off_grant_id: r for r in AuthorityRequest.objects.select_related("kind").filter(
            one_off_grant_id__in=[g.pk for g in grants], status=RequestStatus.APPROVED)}
        for grant in grants:
            before = grant_snapshot(grant)
            grant.superseded_at = now
            grant.void_reason = reason
            grant.save(update_fields=["superseded_at", "void_reason"])
            request = requests.get(grant.pk)
            request_before = request_after = None
            if request is not None:
                request_before = request_snapshot(request)
                request.status = RequestStatus.VOIDED
                request.save(update_fields=["status"])
                request_after = request_snapshot(request)
            approved = format_quantity(grant.per_case_limit, unit=grant.kind.unit, currency=grant.currency)
            spent = used.get(usage_keys.one_off_key(grant_id=grant.pk), 0)
            kept = (f" ({format_quantity(spent, unit=grant.kind.unit, currency=grant.currency)} already decided "
                    "stays decided)") if spent else ""
            CaseEvent.objects.create(
                case=case, actor=actor, kind=CaseEvent.Kind.REQUEST, at=now,
                text=f"The approval of {approved} of {grant.kind.name.lower()} for "
                     f"{grant.subject_user.get_username()} is void{kept}: {reason}",
            )
            audit_record(actor=actor, action="grant.voided", object_type="grant", object_id=grant.pk,
                         before={"grant": before, "request": request_before},
                         after={"grant": grant_snapshot(grant), "request": request_after}, reason=reason)
    return len(grants)
