"""Grant lifecycle: create, change (new version), end, and maker-checker confirmation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from authority.models import AuthorityKind, Effect, ExchangeRate, Grant, GrantStatus, Period
from authority.policy import validate_instant
from authority.policy.permissions import is_manager, managed_team_ids, roles_of
from authority.quantities import known_currency, parse_amount
from h2h_core.audit import audit_record
from h2h_core.audit.refusals import audits_refusals, grant_of
from h2h_core.errors import AlreadyDecided, NotAllowed
from h2h_core.models import CaseCategory, CustomerTier, Team

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


def _affects_actor(actor, *, user=None, team: Team | None = None, role: Group | None = None) -> bool:
    """True when the grant would change the actor's own authority: themselves, a team they are a
    member of, a role they hold. Managing a team is not membership: team grants reach members only."""
    if user is not None:
        return user.pk == actor.pk
    if team is not None:
        return team.members.filter(pk=actor.pk).exists()
    return role is not None and role.name in roles_of(actor)


def require_may_grant(actor, *, user=None, team: Team | None = None, role: Group | None = None) -> None:
    """Managers set authority for their teams and their members; nobody for themselves (rule 6)."""
    if _affects_actor(actor, user=user, team=team, role=role):
        raise NotAllowed("Nobody changes their own authority: ask another manager.")
    if actor.is_superuser:
        return
    if not is_manager(actor):
        raise NotAllowed("Only managers set authority.")
    teams = managed_team_ids(actor)
    if user is not None and not Team.members.through.objects.filter(user_id=user.pk, team_id__in=teams).exists():
        raise NotAllowed(f"{user.get_username()} is not in a team you manage.")
    if team is not None and team.pk not in teams:
        raise NotAllowed(f"You do not manage {team.name}.")


def needs_confirmation(kind: AuthorityKind, terms: GrantTerms) -> bool:
    """A permit above the kind's threshold (or without a limit) waits for a second manager."""
    if terms.effect == Effect.FORBID or kind.confirmation_threshold is None:
        return False
    limits = (terms.per_case_limit, terms.period_limit)
    if terms.per_case_limit is None and terms.period_limit is None:
        return True
    return any(limit is not None and limit > kind.confirmation_threshold for limit in limits)


def _new_version(*, actor, kind, terms: GrantTerms, reason, user, team, role, previous: Grant | None) -> Grant:
    status = GrantStatus.PENDING if needs_confirmation(kind, terms) else GrantStatus.ACTIVE
    grant = Grant.objects.create(
        lineage=previous.lineage if previous else None,
        version=previous.version + 1 if previous else 1,
        supersedes=previous,
        status=status,
        subject_user=user,
        subject_team=team,
        subject_role=role,
        kind=kind,
        effect=terms.effect,
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
    )
    if previous is None:
        Grant.objects.filter(pk=grant.pk).update(lineage=grant.pk)
        grant.lineage = grant.pk
    return grant


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
) -> Grant:
    """Give a person, team or role authority (or, with effect forbid, suspend it).

    Above the kind's confirmation threshold the grant is pending until a second manager confirms.
    """
    if sum(subject is not None for subject in (user, team, role)) != 1:
        raise ValidationError({"subject": "Choose exactly one subject: a person, a team or a role."})
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why this authority is given."})
    require_may_grant(actor, user=user, team=team, role=role)
    terms = validate_terms(kind=kind, terms=terms)
    with transaction.atomic(durable=True):
        grant = _new_version(actor=actor, kind=kind, terms=terms, reason=reason.strip(), user=user, team=team,
                             role=role, previous=None)
        action = "grant.pending" if grant.status == GrantStatus.PENDING else "grant.created"
        audit_record(actor=actor, action=action, object_type="grant", object_id=grant.pk,
                     after=grant_snapshot(grant), reason=grant.reason)
    return grant


@audits_refusals("grant.change", object_type="grant", object_from=grant_of)
def grant_change(*, actor, grant: Grant, terms: GrantTerms, reason: str) -> Grant:
    """Write a new version of `grant`. The old version stays in force until the new one is active."""
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why the authority changes."})
    require_may_grant(actor, user=grant.subject_user, team=grant.subject_team, role=grant.subject_role)
    terms = validate_terms(kind=grant.kind, terms=terms)
    with transaction.atomic(durable=True):
        current = Grant.objects.select_for_update().select_related("kind").get(pk=grant.pk)
        if current.superseded_at is not None or current.status != GrantStatus.ACTIVE or current.case_id:
            raise AlreadyDecided(f"Grant {current.label} is no longer the current version.")
        if Grant.objects.filter(supersedes=current).exists():
            raise AlreadyDecided(f"A change to grant {current.label} is already waiting for confirmation.")
        new = _new_version(actor=actor, kind=current.kind, terms=terms, reason=reason.strip(),
                           user=current.subject_user, team=current.subject_team, role=current.subject_role,
                           previous=current)
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
    """The second manager confirms a pending grant; it takes effect now."""
    with transaction.atomic(durable=True):
        # Lock only the grant: PostgreSQL refuses FOR UPDATE on the nullable side of the supersedes join.
        pending = Grant.objects.select_for_update(of=("self",)).select_related("kind", "supersedes").get(pk=grant.pk)
        _require_checker(actor, pending)
        previous = pending.supersedes
        if previous is not None:
            previous = Grant.objects.select_for_update().get(pk=previous.pk)
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
    with transaction.atomic(durable=True):
        pending = Grant.objects.select_for_update().select_related("kind").get(pk=grant.pk)
        _require_checker(actor, pending)
        before = grant_snapshot(pending)
        pending.status = GrantStatus.REJECTED
        pending.confirmed_by = actor
        pending.confirmed_at = timezone.now()
        pending.save(update_fields=["status", "confirmed_by", "confirmed_at"])
        audit_record(actor=actor, action="grant.rejected", object_type="grant", object_id=pending.pk,
                     before=before, after=grant_snapshot(pending), reason=reason.strip())
    return pending


def _require_checker(actor, pending: Grant) -> None:
    if pending.status != GrantStatus.PENDING:
        raise AlreadyDecided(f"Grant {pending.label} is {pending.get_status_display().lower()} already.")
    if pending.granted_by_id == actor.pk:
        raise NotAllowed("The maker of a change cannot also confirm it: a second manager must.")
    # The checker is any other manager: four eyes, not a second manager of the same team.
    if _affects_actor(actor, user=pending.subject_user, team=pending.subject_team, role=pending.subject_role):
        raise NotAllowed("Nobody changes their own authority, nor confirms a change to it.")
    if not (actor.is_superuser or is_manager(actor)):
        raise NotAllowed("Only managers confirm authority changes.")


@audits_refusals("grant.end", object_type="grant", object_from=grant_of)
def grant_end(*, actor, grant: Grant, reason: str) -> Grant:
    """Close the current version now (the authority ends; history keeps it)."""
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why the authority ends."})
    require_may_grant(actor, user=grant.subject_user, team=grant.subject_team, role=grant.subject_role)
    with transaction.atomic(durable=True):
        current = Grant.objects.select_for_update().select_related("kind").get(pk=grant.pk)
        if current.superseded_at is not None:
            raise AlreadyDecided(f"Grant {current.label} has already ended.")
        before = grant_snapshot(current)
        current.superseded_at = timezone.now()
        current.save(update_fields=["superseded_at"])
        audit_record(actor=actor, action="grant.ended", object_type="grant", object_id=current.pk,
                     before=before, after=grant_snapshot(current), reason=reason.strip())
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
    with transaction.atomic(durable=True):
        row = ExchangeRate.objects.create(base=base, quote=quote, rate=value, valid_on=valid_on)
        audit_record(actor=actor, action="exchange_rate.set", object_type="exchange_rate", object_id=row.pk,
                     after={"base": base, "quote": quote, "rate": value, "valid_on": valid_on})
    return row
