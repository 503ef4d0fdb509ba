"""Grant lifecycle: create, change (new version), end, and maker-checker confirmation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import Max
from django.utils import timezone

from authority.lock_objects import grant_qs_select_for_update
from authority.models import AuthorityKind, Effect, ExchangeRate, Grant, GrantStatus, Period
from authority.policy import validate_instant
from authority.policy.grants import (
    grant_changeable,
    grant_endable,
    may_check,
    may_confirm,
    may_grant,
    shadow_flip,
    shadow_terms_allowed,
)
from authority.quantities import known_currency, parse_amount
from h2h_core.audit import audit_record
from h2h_core.audit.refusals import audits_refusals, grant_of
from h2h_core.errors import IdempotencyConflict
from h2h_core.models import CaseCategory, CustomerTier, Team
from h2h_core.services import idempotency_key_validate, payload_fingerprint
from h2h_core.transactions import outermost, service_atomic

User = get_user_model()


@dataclass(frozen=True)
class GrantTerms:
    """The content of a grant version: everything a change may alter."""

    effect: str = Effect.PERMIT
    per_case_limit: Decimal | None = None
    period_limit: Decimal | None = None
    period: str = Period.NONE
    currency: str = ""
    scope_categories: tuple[str, ...] = ()
    scope_tiers: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_until: datetime | None = None


def grant_snapshot(grant: Grant) -> dict:
    return {
        "id": grant.pk,
        "lineage": grant.lineage,
        "version": grant.version,
        "status": grant.status,
        "subject": grant.subject_label,
        "subject_user_id": grant.subject_user_id,
        "subject_team_id": grant.subject_team_id,
        "subject_role_id": grant.subject_role_id,
        "case_id": grant.case_id,
        "kind": grant.kind.code,
        "effect": grant.effect,
        "shadow": grant.shadow,
        "per_case_limit": grant.per_case_limit,
        "period_limit": grant.period_limit,
        "period": grant.period,
        "currency": grant.currency,
        "scope_categories": list(grant.scope_categories),
        "scope_tiers": list(grant.scope_tiers),
        "valid_from": grant.valid_from,
        "valid_until": grant.valid_until,
        "granted_by_id": grant.granted_by_id,
        "confirmed_by_id": grant.confirmed_by_id,
        "superseded_at": grant.superseded_at,
        **({"bound_owner_id": grant.bound_owner_id} if grant.bound_owner_id else {}),
        **({"void_reason": grant.void_reason} if grant.void_reason else {}),
    }


def validate_terms(*, kind: AuthorityKind, terms: GrantTerms) -> GrantTerms:
    """Return the terms with amounts parsed, or raise ValidationError naming every bad field."""
    errors: dict[str, str] = {}
    currency = terms.currency or ""
    # A suspension carries no amount, so it needs no currency.
    is_bare_suspension = terms.effect == Effect.FORBID and not currency
    if kind.is_money and not is_bare_suspension:
        try:
            known_currency(currency)
        except ValidationError as error:
            errors["currency"] = error.messages[0]
    elif currency:
        errors["currency"] = f"{kind.name} is not money: leave the currency empty."
    limits = {}
    for field in ("per_case_limit", "period_limit"):
        value = getattr(terms, field)
        if value in (None, ""):
            limits[field] = None
            continue
        try:
            limits[field] = parse_amount(value, kind=kind, currency=currency or None, field=field)
        except ValidationError as error:
            errors[field] = "; ".join(error.messages)
    if terms.effect not in Effect.values:
        errors["effect"] = f"Unknown effect {terms.effect!r}."
    if terms.period not in Period.values:
        errors["period"] = f"Unknown period {terms.period!r}."
    elif terms.period == Period.NONE and limits.get("period_limit") is not None:
        errors["period"] = "A period limit needs a period (day, week, month or quarter)."
    bad_categories = set(terms.scope_categories) - set(CaseCategory.values)
    if bad_categories:
        errors["scope_categories"] = f"Unknown categories: {', '.join(sorted(bad_categories))}."
    bad_tiers = set(terms.scope_tiers) - set(CustomerTier.values)
    if bad_tiers:
        errors["scope_tiers"] = f"Unknown tiers: {', '.join(sorted(bad_tiers))}."
    try:
        valid_from = validate_instant(terms.valid_from)
        valid_until = validate_instant(terms.valid_until) if terms.valid_until else None
        if valid_until is not None and valid_until <= valid_from:
            errors["valid_until"] = "The end must come after the start."
    except ValidationError as error:
        errors["valid_from"] = "; ".join(error.messages)
        valid_from = valid_until = None
    if errors:
        raise ValidationError(errors)
    return GrantTerms(
        effect=terms.effect,
        per_case_limit=limits["per_case_limit"],
        period_limit=limits["period_limit"],
        period=terms.period,
        currency=currency,
        scope_categories=tuple(sorted(set(terms.scope_categories))),
        scope_tiers=tuple(sorted(set(terms.scope_tiers))),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def require_may_grant(actor, *, user=None, team: Team | None = None, role: Group | None = None) -> None:
    """Raise NotAllowed unless `actor` may set this subject's authority (authority.policy.grants.may_grant)."""
    may_grant(actor, user=user, team=team, role=role).require()


def needs_confirmation(kind: AuthorityKind, terms: GrantTerms, *, flip: str = "") -> bool:
    """A permit above the kind's threshold (or without a limit) waits for a second manager; so does
    any `flip` between shadow and live (authority.policy.grants.shadow_flip), whatever the threshold."""
    if flip:
        return True
    if terms.effect == Effect.FORBID or kind.confirmation_threshold is None:
        return False
    limits = (terms.per_case_limit, terms.period_limit)
    if terms.per_case_limit is None and terms.period_limit is None:
        return True
    return any(limit is not None and limit > kind.confirmation_threshold for limit in limits)


def _next_version(previous: Grant | None) -> int:
    """The next version number of a lineage: rejected and voided proposals keep their numbers."""
    if previous is None:
        return 1
    highest = Grant.objects.filter(lineage=previous.lineage).aggregate(highest=Max("version"))["highest"]
    return max(highest or 0, previous.version) + 1


def _new_version(*, actor, kind, terms: GrantTerms, reason, user, team, role, previous: Grant | None,
                 key: str | None = None, fingerprint: str = "", shadow: bool = False) -> Grant:
    flip = shadow_flip(before=previous, shadow=shadow)
    status = GrantStatus.PENDING if needs_confirmation(kind, terms, flip=flip) else GrantStatus.ACTIVE
    grant = Grant.objects.create(
        lineage=previous.lineage if previous else None,
        version=_next_version(previous),
        supersedes=previous,
        status=status,
        subject_user=user,
        subject_team=team,
        subject_role=role,
        kind=kind,
        effect=terms.effect,
        shadow=shadow,
        per_case_limit=terms.per_case_limit,
        period_limit=terms.period_limit,
        period=terms.period,
        currency=terms.currency,
        scope_categories=list(terms.scope_categories),
        scope_tiers=list(terms.scope_tiers),
        valid_from=terms.valid_from,
        valid_until=terms.valid_until,
        granted_by=actor,
        reason=reason,
        created_at=timezone.now(),
        idempotency_key=key,
        payload_fingerprint=fingerprint,
    )
    if previous is None:
        Grant.objects.filter(pk=grant.pk).update(lineage=grant.pk)
        grant.lineage = grant.pk
    return grant


def _fingerprint(*, operation: str, kind: AuthorityKind, asked: GrantTerms, valid: GrantTerms, reason: str,
                 **subject) -> str:
    # The start as asked: an omitted start means "now", which a retry asks again.
    terms = asdict(replace(valid, valid_from=asked.valid_from))
    return payload_fingerprint({"operation": operation, "kind": kind.code, "terms": terms, "reason": reason,
                                **subject})


def _made_with(*, actor, key: str, fingerprint: str) -> Grant | None:
    """Return the version `actor` made with this key, or None; raise if the key asked something else."""
    existing = Grant.objects.select_related("kind").filter(granted_by=actor, idempotency_key=key).first()
    if existing is not None and existing.payload_fingerprint != fingerprint:
        raise IdempotencyConflict("This idempotency key was already used for a different grant or change.",
                                  grant_id=existing.pk)
    return existing


def _require_shadow_terms(*, shadow, terms: GrantTerms, one_off: bool = False) -> None:
    """Raise ValidationError unless `shadow` is a yes or no that these terms allow (shadow_terms_allowed)."""
    if not isinstance(shadow, bool):
        raise ValidationError({"shadow": "Say yes or no: is the grant shadow (log only)?"})
    permission = shadow_terms_allowed(shadow=shadow, effect=terms.effect, one_off=one_off)
    if not permission:
        raise ValidationError({"shadow": permission.reason})


@audits_refusals("grant.create", object_type="grant", object_from=None)
def grant_create(
    *,
    actor,
    kind: AuthorityKind,
    terms: GrantTerms,
    reason: str,
    user=None,
    team: Team | None = None,
    role: Group | None = None,
    idempotency_key: str | None = None,
    shadow: bool = False,
) -> Grant:
    """Give a person, team or role authority (or, with effect forbid, suspend it).

    Above the kind's confirmation threshold the grant is pending until a second manager confirms.
    A `shadow` grant is a log-only standing permit: its holder's decisions under it are recorded as
    what they would have been, never executed. With an idempotency key, a repeat of the same call by
    the same actor returns the grant the first one made; another call with that key is refused.
    """
    if sum(subject is not None for subject in (user, team, role)) != 1:
        raise ValidationError({"subject": "Choose exactly one subject: a person, a team or a role."})
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why this authority is given."})
    key = idempotency_key_validate(idempotency_key)
    require_may_grant(actor, user=user, team=team, role=role)
    asked, terms = terms, validate_terms(kind=kind, terms=terms)
    _require_shadow_terms(shadow=shadow, terms=terms)
    fingerprint = _fingerprint(operation="create", kind=kind, asked=asked, valid=terms, reason=reason.strip(),
                               user=user, team=team, role=role,
                               **({"shadow": True} if shadow else {})) if key else ""
    if key and (existing := _made_with(actor=actor, key=key, fingerprint=fingerprint)):
        return existing
    alone = outermost()
    try:
        with service_atomic():
            grant = _new_version(actor=actor, kind=kind, terms=terms, reason=reason.strip(), user=user, team=team,
                                 role=role, previous=None, key=key, fingerprint=fingerprint, shadow=shadow)
            action = "grant.pending" if grant.status == GrantStatus.PENDING else "grant.created"
            audit_record(actor=actor, action=action, object_type="grant", object_id=grant.pk,
                         after=grant_snapshot(grant), reason=grant.reason)
    except IntegrityError:
        # The same key committed by a concurrent call: answer with its grant.
        if alone and key and (existing := _made_with(actor=actor, key=key, fingerprint=fingerprint)):
            return existing
        raise
    return grant


@audits_refusals("grant.change", object_type="grant", object_from=grant_of)
def grant_change(*, actor, grant: Grant, terms: GrantTerms, reason: str, idempotency_key: str | None = None,
                 shadow: bool | None = None) -> Grant:
    """Write a new version of `grant`. The old version stays in force until the new one is active.

    `shadow` sets the new version's mode (None keeps the grant's). Moving between shadow and live
    (a promotion or a demotion) always waits for a second manager, whatever the threshold.
    With an idempotency key, a repeat of the same change by the same actor returns the version the
    first one wrote (not a refusal because `grant` now has a successor); another call with that key
    is refused.
    """
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why the authority changes."})
    key = idempotency_key_validate(idempotency_key)
    require_may_grant(actor, user=grant.subject_user, team=grant.subject_team, role=grant.subject_role)
    asked, terms = terms, validate_terms(kind=grant.kind, terms=terms)
    # A version's content never changes, so the mode read here is the locked version's too.
    new_shadow = grant.shadow if shadow is None else shadow
    _require_shadow_terms(shadow=new_shadow, terms=terms, one_off=grant.case_id is not None)
    fingerprint = _fingerprint(operation="change", kind=grant.kind, asked=asked, valid=terms, reason=reason.strip(),
                               grant=grant.pk, **({"shadow": shadow} if shadow is not None else {})) if key else ""
    if key and (existing := _made_with(actor=actor, key=key, fingerprint=fingerprint)):
        return existing
    with service_atomic():
        current = grant_qs_select_for_update().select_related("kind").get(pk=grant.pk)
        if key and (existing := _made_with(actor=actor, key=key, fingerprint=fingerprint)):
            return existing  # a concurrent call with the key changed it while we waited for the lock
        grant_changeable(current).require()
        new = _new_version(actor=actor, kind=current.kind, terms=terms, reason=reason.strip(),
                           user=current.subject_user, team=current.subject_team, role=current.subject_role,
                           previous=current, key=key, fingerprint=fingerprint, shadow=new_shadow)
        if new.status == GrantStatus.ACTIVE:
            # A change scheduled for later keeps the old version in force until then: no gap.
            current.superseded_at = max(timezone.now(), new.valid_from)
            current.save(update_fields=["superseded_at"])
        action = "grant.change_pending" if new.status == GrantStatus.PENDING else "grant.changed"
        audit_record(actor=actor, action=action, object_type="grant", object_id=new.pk,
                     before=grant_snapshot(current), after=grant_snapshot(new), reason=new.reason)
    return new


@audits_refusals("grant.confirm", object_type="grant", object_from=grant_of)
def grant_confirm(*, actor, grant: Grant) -> Grant:
    """The second manager confirms a pending grant; it takes effect now.

    Refused when the version it would replace has ended meanwhile (authority.policy.grants.may_confirm).
    """
    with service_atomic():
        # The version it replaces, then the change: key order, as grant_end locks them.
        locked = {row.pk: row for row in grant_qs_select_for_update().select_related("kind")
                  .filter(pk__in=[pk for pk in (grant.supersedes_id, grant.pk) if pk is not None])}
        if grant.pk not in locked:
            raise Grant.DoesNotExist(f"No grant {grant.pk}.")
        pending = locked[grant.pk]
        previous = locked.get(pending.supersedes_id)
        pending.supersedes = previous
        may_confirm(actor, pending).require()
        now = timezone.now()
        pending.status = GrantStatus.ACTIVE
        pending.confirmed_by = actor
        pending.confirmed_at = now
        pending.save(update_fields=["status", "confirmed_by", "confirmed_at"])
        if previous is not None and previous.superseded_at is None:
            previous.superseded_at = max(now, pending.valid_from)
            previous.save(update_fields=["superseded_at"])
        audit_record(actor=actor, action="grant.confirmed", object_type="grant", object_id=pending.pk,
                     before=grant_snapshot(previous) if previous else None, after=grant_snapshot(pending))
    return pending


@audits_refusals("grant.reject", object_type="grant", object_from=grant_of)
def grant_reject(*, actor, grant: Grant, reason: str) -> Grant:
    """The second manager rejects a pending grant; the previous version stays in force."""
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why the change is rejected."})
    with service_atomic():
        pending = grant_qs_select_for_update().select_related("kind").get(pk=grant.pk)
        may_check(actor, pending).require()
        before = grant_snapshot(pending)
        pending.status = GrantStatus.REJECTED
        pending.confirmed_by = actor
        pending.confirmed_at = timezone.now()
        pending.save(update_fields=["status", "confirmed_by", "confirmed_at"])
        audit_record(actor=actor, action="grant.rejected", object_type="grant", object_id=pending.pk,
                     before=before, after=grant_snapshot(pending), reason=reason.strip())
    return pending


VOID_REASON = "the grant was ended"


@audits_refusals("grant.end", object_type="grant", object_from=grant_of)
def grant_end(*, actor, grant: Grant, reason: str) -> Grant:
    """Close the current version now (the authority ends; history keeps it).

    A change still waiting for confirmation is voided in the same transaction: confirming it later
    would bring the ended authority back.
    """
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why the authority ends."})
    require_may_grant(actor, user=grant.subject_user, team=grant.subject_team, role=grant.subject_role)
    with service_atomic():
        current = grant_qs_select_for_update().select_related("kind").get(pk=grant.pk)
        grant_endable(current).require()
        # Its changes were written after it, so their keys are higher: key order, as in grant_confirm.
        waiting = list(grant_qs_select_for_update().select_related("kind")
                       .filter(supersedes_id=current.pk, status=GrantStatus.PENDING))
        now = timezone.now()
        before = grant_snapshot(current)
        current.superseded_at = now
        current.save(update_fields=["superseded_at"])
        audit_record(actor=actor, action="grant.ended", object_type="grant", object_id=current.pk,
                     before=before, after=grant_snapshot(current), reason=reason.strip())
        for change in waiting:
            change_before = grant_snapshot(change)
            change.status = GrantStatus.VOIDED
            change.confirmed_at = now
            change.save(update_fields=["status", "confirmed_at"])
            audit_record(actor=actor, action="grant.voided", object_type="grant", object_id=change.pk,
                         before=change_before, after=grant_snapshot(change), reason=VOID_REASON)
    return current


def exchange_rate_set(*, actor, base: str, quote: str, rate, valid_on) -> ExchangeRate:
    """Record that 1 `base` is worth `rate` `quote` from `valid_on` (a dated rate, never rewritten)."""
    known_currency(base)
    known_currency(quote)
    if base == quote:
        raise ValidationError({"quote": "A rate needs two different currencies."})
    try:
        value = Decimal(str(rate))
    except ArithmeticError:
        raise ValidationError({"rate": "The rate must be a number."}) from None
    if not value.is_finite() or value <= 0 or value > Decimal("1e9"):
        raise ValidationError({"rate": "The rate must be a positive, finite number."})
    if ExchangeRate.objects.filter(base=base, quote=quote, valid_on=valid_on).exists():
        raise ValidationError({"valid_on": f"A {base}/{quote} rate for {valid_on} exists already."})
    with service_atomic():
        row = ExchangeRate.objects.create(base=base, quote=quote, rate=value, valid_on=valid_on)
        audit_record(actor=actor, action="exchange_rate.set", object_type="exchange_rate", object_id=row.pk,
                     after={"base": base, "quote": quote, "rate": value, "valid_on": valid_on})
    return row
