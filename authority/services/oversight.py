"""Oversight writes: a manager's delegation while away, and an auditor's review flag on a decision."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from authority.lock_objects import delegation_qs_select_for_update
from authority.models import Decision, Delegation, ReviewFlag
from authority.policy import is_auditor, is_manager, validate_instant
from h2h_core.audit import audit_record
from h2h_core.errors import AlreadyDecided, NotAllowed
from h2h_core.transactions import service_atomic

MAX_DELEGATION_DAYS = 92


def delegation_snapshot(delegation: Delegation) -> dict:
    return {
        "id": delegation.pk,
        "manager_id": delegation.manager_id,
        "delegate_id": delegation.delegate_id,
        "starts_at": delegation.starts_at,
        "ends_at": delegation.ends_at,
        "revoked_at": delegation.revoked_at,
    }


def review_flag_snapshot(flag: ReviewFlag) -> dict:
    return {
        "id": flag.pk,
        "decision_id": flag.decision_id,
        "auditor_id": flag.auditor_id,
        "severity": flag.severity,
        "created_at": flag.created_at,
    }


def delegations_in_force(*, at: datetime) -> QuerySet[Delegation]:
    """Delegations that hand over approval rights at instant `at` (started, not ended, not revoked)."""
    return Delegation.objects.filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gt=at), starts_at__lte=at, ends_at__gt=at
    )


def delegation_create(*, actor, delegate, starts_at: datetime, ends_at: datetime, reason: str = "") -> Delegation:
    """Hand the actor's approval rights to another manager from `starts_at` until `ends_at`.

    Only the actor's own rights pass (a manager of a team, in that team's approver pool); rights the
    actor holds through someone else's delegation never pass on. The delegate's own authority
    still bounds what they can approve (rule 3a).
    """
    if not is_manager(actor):
        raise NotAllowed("Only managers delegate their approval rights.")
    if delegate is None or delegate.pk == actor.pk:
        raise ValidationError({"delegate": "Choose another manager: nobody delegates to themselves."})
    if not delegate.is_active or not is_manager(delegate):
        raise ValidationError({"delegate": f"{delegate.get_username()} is not a manager."})
    errors = {}
    try:
        starts_at = validate_instant(starts_at)
        ends_at = validate_instant(ends_at)
    except ValidationError as error:
        raise ValidationError({"starts_at": "; ".join(error.messages)}) from None
    now = timezone.now()
    if ends_at <= starts_at:
        errors["ends_at"] = "The end must come after the start."
    elif ends_at <= now:
        errors["ends_at"] = "The end lies in the past."
    elif (ends_at - starts_at).days > MAX_DELEGATION_DAYS:
        errors["ends_at"] = f"A delegation lasts at most {MAX_DELEGATION_DAYS} days."
    if errors:
        raise ValidationError(errors)
    reason = (reason or "").strip()
    with service_atomic():
        overlapping = Delegation.objects.filter(
            manager=actor, revoked_at__isnull=True, starts_at__lt=ends_at, ends_at__gt=starts_at
        ).exists()
        if overlapping:
            raise AlreadyDecided("You already delegate for part of that period: revoke that delegation first.")
        delegation = Delegation.objects.create(manager=actor, delegate=delegate, starts_at=starts_at,
                                               ends_at=ends_at, reason=reason, created_at=now)
        audit_record(actor=actor, action="delegation.created", object_type="delegation", object_id=delegation.pk,
                     after=delegation_snapshot(delegation), reason=reason)
    return delegation


def delegation_revoke(*, actor, delegation: Delegation) -> Delegation:
    """End a delegation now (the manager who gave it, or a superuser)."""
    if actor.pk != delegation.manager_id and not actor.is_superuser:
        raise NotAllowed("Only the manager who delegated may revoke the delegation.")
    with service_atomic():
        current = delegation_qs_select_for_update().get(pk=delegation.pk)
        now = timezone.now()
        if current.revoked_at is not None or current.ends_at <= now:
            raise AlreadyDecided("This delegation has already ended.")
        before = delegation_snapshot(current)
        current.revoked_at = now
        current.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="delegation.revoked", object_type="delegation", object_id=current.pk,
                     before=before, after=delegation_snapshot(current))
    return current


def review_flag_create(*, actor, decision: Decision, severity: str, finding: str) -> ReviewFlag:
    """An auditor records a finding on a decision: the one thing an auditor writes."""
    if not is_auditor(actor):
        raise NotAllowed("Only auditors flag decisions for review.")
    if severity not in ReviewFlag.Severity.values:
        raise ValidationError({"severity": f"Unknown severity {severity!r}."})
    if not isinstance(finding, str) or not finding.strip():
        raise ValidationError({"finding": "Describe the finding."})
    finding = finding.strip()
    if len(finding) > 4000:
        raise ValidationError({"finding": "Keep the finding under 4,000 characters."})
    with service_atomic():
        flag = ReviewFlag.objects.create(decision_id=decision.pk, auditor=actor, severity=severity, finding=finding,
                                         created_at=timezone.now())
        audit_record(actor=actor, action="review_flag.created", object_type="decision", object_id=decision.pk,
                     after=review_flag_snapshot(flag), reason=finding)
    return flag
