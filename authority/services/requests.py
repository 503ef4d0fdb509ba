"""One-hop authority requests: open, approve (creating a one-off grant), reject, expire."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from authority import policy
from authority.errors import AlreadyDecided, AuthorityDenied, NotAllowed
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
from h2h_core.models import Case, CaseEvent
from h2h_core.services import case_require_owner

from .grants import grant_snapshot
from .usage import usage_consume

User = get_user_model()
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


def approver_pool(*, requester, case: Case, kind: AuthorityKind, amount, currency: str) -> tuple[list, bool]:
    """Return (approvers, is_fallback): the case team's managers whose own authority covers the
    amount (rule 3a); when none does, the fallback group's members who are covered. Never a chain."""
    managers = list(
        User.objects.filter(
            userobjectpermission__permission__codename="manage_team",
            userobjectpermission__object_pk=str(case.team_id),
            is_active=True,
        ).exclude(pk=requester.pk).distinct().order_by("username")
    ) if case.team_id else []
    managers = sorted(managers + _delegates_of(managers, exclude_pk=requester.pk), key=lambda u: u.get_username())
    covered = [m for m in managers if policy.evaluate(agent=m, kind=kind, amount=amount, currency=currency,
                                                       case=case).allowed]
    if covered:
        return covered, False
    fallback = list(
        User.objects.filter(groups__name=settings.H2H_FALLBACK_APPROVER_GROUP, is_active=True)
        .exclude(pk=requester.pk).distinct().order_by("username")
    )
    return [u for u in fallback if policy.evaluate(agent=u, kind=kind, amount=amount, currency=currency,
                                                    case=case).allowed], True


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
    verdict = policy.evaluate(agent=actor, kind=kind, amount=amount, currency=currency, case=case)
    if verdict.allowed:
        raise ValidationError({"amount": "This is within your authority: decide it directly."})
    if verdict.suspended:
        raise AuthorityDenied(verdict)
    pool, is_fallback = approver_pool(requester=actor, case=case, kind=kind, amount=amount, currency=currency)
    if not pool:
        raise NotAllowed(
            f"Nobody has the authority to approve {format_quantity(amount, unit=kind.unit, currency=currency)} "
            f"of {kind.name.lower()}: ask an administrator to name a fallback approver."
        )
    now = timezone.now()
    with transaction.atomic(durable=True):
        case = Case.objects.select_for_update().get(pk=case.pk)
        case_require_owner(case=case, actor=actor)
        if AuthorityRequest.objects.filter(case=case, kind=kind, requester=actor, status=RequestStatus.OPEN).exists():
            raise AlreadyDecided(f"You already have an open {kind.name.lower()} request on {case.reference}.")
        request = AuthorityRequest.objects.create(
            case=case, requester=actor, kind=kind, amount=amount, currency=currency,
            justification=justification.strip(), verdict=verdict.as_dict(), pool=[u.pk for u in pool],
            pool_is_fallback=is_fallback, created_at=now, expires_at=now + timedelta(hours=REQUEST_HOURS),
            idempotency_key=idempotency_key,
        )
        names = ", ".join(u.get_username() for u in pool)
        CaseEvent.objects.create(
            case=case, actor=actor, kind=CaseEvent.Kind.REQUEST, at=now,
            text=f"Asked {names} for {format_quantity(amount, unit=kind.unit, currency=currency)} of "
                 f"{kind.name.lower()}: {request.justification}",
        )
        audit_record(actor=actor, action="authority_request.opened", object_type="authority_request",
                     object_id=request.pk, after=request_snapshot(request), reason=request.justification)
    return request


def _locked_open_request(request: AuthorityRequest) -> AuthorityRequest:
    locked = AuthorityRequest.objects.select_for_update().select_related("kind").get(pk=request.pk)
    if locked.status != RequestStatus.OPEN:
        by = f" by {locked.decided_by.get_username()}" if locked.decided_by_id else ""
        when = f" at {locked.decided_at:%d %b %Y %H:%M} UTC" if locked.decided_at else ""
        raise AlreadyDecided(f"This request was already {locked.get_status_display().lower()}{by}{when}.")
    return locked


def _delegates_of(managers: list, *, exclude_pk: int) -> list:
    """Managers to whom one of `managers` hands their approval rights now (authority.services.oversight).

    Only the team's own managers' delegations count, so what a delegate received never passes on.
    """
    if not managers:
        return []
    from .oversight import delegations_in_force

    delegate_ids = delegations_in_force(at=timezone.now()).filter(manager__in=managers).values("delegate_id")
    return list(User.objects.filter(pk__in=delegate_ids, is_active=True)
                .exclude(pk__in=[exclude_pk, *(m.pk for m in managers)]))


def _manages_team(user_id: int, team_id: int | None) -> bool:
    return team_id is not None and User.objects.filter(
        pk=user_id, userobjectpermission__permission__codename="manage_team",
        userobjectpermission__object_pk=str(team_id),
    ).exists()


def holds_delegation_for_team(user, team_id: int | None) -> bool:
    """True while a manager of the team hands `user` their approval rights (never passed on further)."""
    if team_id is None:
        return False
    from .oversight import delegations_in_force

    return delegations_in_force(at=timezone.now()).filter(
        delegate_id=user.pk, manager__userobjectpermission__permission__codename="manage_team",
        manager__userobjectpermission__object_pk=str(team_id),
    ).exists()


def _require_approver(actor, request: AuthorityRequest) -> None:
    if actor.pk == request.requester_id:
        raise NotAllowed("Nobody approves their own request.")
    if request.pool_is_fallback:
        if actor.pk not in request.pool:
            raise NotAllowed("You are not in the approver pool of this request.")
        return
    # A team's pool: its managers in their own right, or whoever a manager of the team has handed
    # their approval rights to, for as long as that delegation is in force.
    team_id = Case.objects.filter(pk=request.case_id).values_list("team_id", flat=True).first()
    if actor.pk in request.pool and _manages_team(actor.pk, team_id):
        return
    if holds_delegation_for_team(actor, team_id):
        return
    if actor.pk in request.pool:
        raise NotAllowed("The delegation that put you in this request's approver pool has ended.")
    raise NotAllowed("You are not in the approver pool of this request.")


@audits_refusals("authority_request.approve", object_type="authority_request", object_from=request_of)
def authority_request_approve(*, actor, request: AuthorityRequest, note: str = "") -> AuthorityRequest:
    """Approve: a one-off grant for the requester on that case, kind and amount.

    The approver's own authority must cover the amount, and the amount counts against the
    approver's period usage (rule 3a). Deciding a request twice is refused, never repeated.
    """
    _require_approver(actor, request)
    case = Case.objects.select_related("customer").get(pk=request.case_id)
    with transaction.atomic(durable=True):
        request = _locked_open_request(request)
        if request.expires_at <= timezone.now():
            raise AlreadyDecided("This request has expired; the agent can ask again.")
        verdict = policy.evaluate(agent=actor, kind=request.kind, amount=request.amount,
                                  currency=request.currency, case=case)
        period_use = [c for c in verdict.consumptions if c.scope == "period"]
        if not verdict.allowed or not usage_consume(consumptions=period_use, kind_id=request.kind_id,
                                                    agent_id=actor.pk, case_id=case.pk):
            raise AuthorityDenied(verdict if not verdict.allowed else policy.evaluate(
                agent=actor, kind=request.kind, amount=request.amount, currency=request.currency, case=case))
        now = timezone.now()
        grant = Grant.objects.create(
            subject_user_id=request.requester_id, case=case, kind=request.kind, effect=Effect.PERMIT,
            per_case_limit=request.amount, period=Period.NONE, currency=request.currency,
            valid_from=now, valid_until=now + timedelta(hours=settings.H2H_ONE_OFF_GRANT_HOURS),
            granted_by=actor, confirmed_by=actor, confirmed_at=now, status=GrantStatus.ACTIVE,
            reason=f"Approved request #{request.pk}: {request.justification}", created_at=now,
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
    _require_approver(actor, request)
    with transaction.atomic(durable=True):
        request = _locked_open_request(request)
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
    """Mark open requests past their expiry as expired (run by the timers); return how many."""
    now = now or timezone.now()
    expired = 0
    for pk in AuthorityRequest.objects.filter(status=RequestStatus.OPEN, expires_at__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic(durable=True):
            request = AuthorityRequest.objects.select_for_update().select_related("kind").get(pk=pk)
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
