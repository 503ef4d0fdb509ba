"""Every write of the case domain. Web views, the API, workflows, admin and commands call these."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import QuerySet
from django.utils import timezone
from djmoney.money import Money

from . import access, lock_objects, sla
from .amounts import plain_decimal
from .audit import audit_record, canonical_json, snapshot_value
from .audit.refusals import audits_refusals, case_of
from .errors import CaseNotOpen, IdempotencyConflict
from .mail import mail_queue
from .models import Case, CaseCategory, CaseEvent, CaseStatus, Customer, CustomerTier, Team
from .models.cases import OPEN_STATUSES
from .people import team_add_manager, team_add_member, team_create, user_set_roles  # noqa: F401
from .prepared import PreparedQuery
from .stakes import stakes_score
from .transactions import outermost, service_atomic

User = get_user_model()

MAX_IDEMPOTENCY_KEY_LENGTH = 100


def idempotency_key_validate(key: str | None) -> str | None:
    """Return a service's idempotency key (None: none given), or raise ValidationError."""
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise ValidationError({"idempotency_key": f"Use 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters."})
    return key


def payload_fingerprint(payload: dict) -> str:
    """Return a digest of what a keyed call asked, to tell its repeat from another call with the same key."""
    return hashlib.sha256(canonical_json(snapshot_value(payload)).encode()).hexdigest()


def case_snapshot(case: Case) -> dict:
    """Return what the audit log keeps of a case: references and state, no customer details."""
    return {
        "reference": case.reference,
        "customer_id": case.customer_id,
        "category": case.category,
        "status": case.status,
        "team_id": case.team_id,
        "owner_id": case.owner_id,
        "stakes_score": case.stakes_score,
        "amount_at_stake": str(case.amount_at_stake.amount),
        "currency": str(case.amount_at_stake.currency),
        "sla_breached": case.sla_breached,
    }


def _event(case: Case, *, actor, kind: str, text: str = "", at: datetime | None = None) -> CaseEvent:
    return CaseEvent.objects.create(case=case, actor=actor, kind=kind, text=text, at=at or timezone.now())


def _locked_case(case: Case) -> Case:
    return lock_objects.case_locked(case.pk, related=("customer",))


# --- customers and teams -------------------------------------------------------------------


def customer_create(
    *,
    actor,
    name: str,
    tier: str = CustomerTier.STANDARD,
    annual_value: Decimal,
    currency: str,
    customer_since: date,
    email: str = "",
) -> Customer:
    """Create a customer; only the id and tier reach the audit log."""
    if not name.strip():
        raise ValidationError({"name": "Give the customer's name."})
    if tier not in CustomerTier.values:
        raise ValidationError({"tier": f"Unknown tier {tier!r}."})
    try:
        annual_value = plain_decimal(annual_value, label="annual value")
    except ValidationError as error:
        raise ValidationError({"annual_value": error.messages}) from None
    customer = Customer(
        name=name.strip(),
        email=email,
        tier=tier,
        annual_value=Money(annual_value, currency),
        customer_since=customer_since,
    )
    customer.full_clean()
    with service_atomic():
        customer.save()
        audit_record(actor=actor, action="customer.created", object_type="customer", object_id=customer.pk,
                     after={"tier": tier, "customer_since": customer_since})
    return customer


# Teams, accounts and roles: h2h_core.people (re-exported here for existing callers).


# --- cases ---------------------------------------------------------------------------------


def case_open(
    *,
    actor,
    customer: Customer,
    subject: str,
    category: str,
    amount_at_stake: Decimal,
    currency: str,
    description: str = "",
    opened_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Case:
    """Take a case in (intake), score it and route it to its team's queue (triage).

    With an idempotency key, a repeat of the same opening by the same actor returns the case the
    first one opened (say a retry after a lost response); another opening with that key is refused.
    """
    access.may_open_cases(actor).require()
    errors = {}
    if not subject.strip():
        errors["subject"] = "Give the case a subject."
    if category not in CaseCategory.values:
        errors["category"] = f"Unknown category {category!r}."
    try:
        amount_at_stake = plain_decimal(amount_at_stake, label="amount at stake")
    except ValidationError as error:
        errors["amount_at_stake"] = error.messages
    if errors:
        raise ValidationError(errors)
    key = idempotency_key_validate(idempotency_key)
    fingerprint = payload_fingerprint({
        "customer": customer.pk, "subject": subject.strip(), "description": description, "category": category,
        "amount_at_stake": amount_at_stake, "currency": currency, "opened_at": opened_at,
    }) if key else ""
    if key and (existing := _case_opened_with(actor=actor, key=key, fingerprint=fingerprint)):
        return existing
    now = timezone.now()
    opened_at = opened_at or now
    stakes = stakes_score(
        category=category,
        customer_annual_value=customer.annual_value.amount,
        amount_at_stake=amount_at_stake,
        opened_at=opened_at,
        now=now,
    )
    first_due, resolution_due = sla.due_times(category=category, stakes=stakes.score, opened_at=opened_at)
    team = Team.objects.filter(slug=sla.team_slug_for(category)).first()
    case = Case(
        customer=customer,
        subject=subject.strip(),
        description=description,
        category=category,
        amount_at_stake=Money(amount_at_stake, currency),
        stakes_score=stakes.score,
        status=CaseStatus.QUEUED if team else CaseStatus.NEW,
        team=team,
        opened_at=opened_at,
        first_response_due=first_due,
        resolution_due=resolution_due,
        opened_by=actor,
        idempotency_key=key,
        payload_fingerprint=fingerprint,
    )
    case.full_clean(exclude=["owner", "team", "opened_by"])
    alone = outermost()  # inside a caller's transaction an error aborts it: nothing more can be read
    try:
        with service_atomic():
            case.save()
            _event(case, actor=actor, kind=CaseEvent.Kind.OPENED, text=case.subject, at=opened_at)
            routed = f"routed to {team.name}" if team else "no team for this category: waiting for triage"
            _event(case, actor=None, kind=CaseEvent.Kind.TRIAGED, at=opened_at,
                   text=f"Stakes {stakes.score} ({'; '.join(stakes.reasons)}); {routed}.")
            audit_record(actor=actor, action="case.opened", object_type="case", object_id=case.pk,
                         after=case_snapshot(case))
    except IntegrityError:
        # The same key committed by a concurrent call: answer with its case.
        if alone and key and (existing := _case_opened_with(actor=actor, key=key, fingerprint=fingerprint)):
            return existing
        raise
    return case


def _case_opened_with(*, actor, key: str, fingerprint: str) -> Case | None:
    if actor is None:  # opened by nobody signed in (an intake): IS NULL, another query
        existing = Case.objects.filter(opened_by=None, idempotency_key=key).first()
    else:
        existing = _CASE_OPENED_WITH.first(user_id=actor.pk, key=key)
    if existing is not None and existing.payload_fingerprint != fingerprint:
        raise IdempotencyConflict("This idempotency key was already used to open a different case.",
                                  case_id=existing.pk)
    return existing


# Asked by every case opened with a key: compiled once per process.
_CASE_OPENED_WITH = PreparedQuery(
    lambda shape, *, user_id, key: Case.objects.filter(opened_by_id=user_id, idempotency_key=key)[:1],
    ints=("user_id",), texts=("key",))


def case_require_owner(*, case: Case, actor) -> None:
    """Raise unless `actor` owns `case` and it is open (rule 4)."""
    access.may_act_as_owner(actor, case).require()


@audits_refusals("case.claim", object_type="case", object_from=case_of)
def case_claim(*, actor, case: Case) -> Case:
    """Make `actor` the owner of an unowned case in one of their teams' queues."""
    with service_atomic():
        case = _locked_case(case)
        access.may_claim(actor, case).require()
        before = case_snapshot(case)
        now = timezone.now()
        case.owner = actor
        case.status = CaseStatus.OWNED
        case.first_response_at = case.first_response_at or now
        case.save(update_fields=["owner", "status", "first_response_at"])
        _event(case, actor=actor, kind=CaseEvent.Kind.CLAIMED, at=now, text=f"Claimed by {actor.get_username()}.")
        audit_record(actor=actor, action="case.claimed", object_type="case", object_id=case.pk,
                     before=before, after=case_snapshot(case))
    return case


@audits_refusals("case.handover", object_type="case", object_from=case_of)
def case_handover(*, actor, case: Case, to_user, note: str) -> Case:
    """Pass ownership to another agent of the team, with the context note they will see first."""
    if not note or not note.strip():
        raise ValidationError({"note": "A handover needs a context note for the next owner."})
    with service_atomic():
        case = _locked_case(case)
        access.may_hand_over(actor, case).require()
        receiver = access.may_receive_case(to_user, case)
        if not receiver:
            raise ValidationError({"to_user": receiver.reason})
        before = case_snapshot(case)
        case.owner = to_user
        case.status = CaseStatus.OWNED
        case.save(update_fields=["owner", "status"])
        _event(case, actor=actor, kind=CaseEvent.Kind.HANDOVER, text=note.strip())
        audit_record(actor=actor, action="case.handed_over", object_type="case", object_id=case.pk,
                     before=before, after=case_snapshot(case), reason=note.strip())
    return case


@audits_refusals("case.add_note", object_type="case", object_from=case_of)
def case_add_note(*, actor, case: Case, text: str) -> CaseEvent:
    if not text or not text.strip():
        raise ValidationError({"text": "The note is empty."})
    access.may_view_case(actor, case).require()
    with service_atomic():
        event = _event(case, actor=actor, kind=CaseEvent.Kind.NOTE, text=text.strip())
        audit_record(actor=actor, action="case.note_added", object_type="case", object_id=case.pk,
                     after={"event_id": event.pk})
    return event


@audits_refusals("case.resolve", object_type="case", object_from=case_of)
def case_resolve(*, actor, case: Case, summary: str) -> Case:
    """The owner resolves the case with a summary for the customer and the record."""
    if not summary or not summary.strip():
        raise ValidationError({"summary": "Summarise the resolution."})
    with service_atomic():
        case = _locked_case(case)
        case_require_owner(case=case, actor=actor)
        before = case_snapshot(case)
        case.status = CaseStatus.RESOLVED
        case.resolved_at = timezone.now()
        case.resolution_summary = summary.strip()
        case.save(update_fields=["status", "resolved_at", "resolution_summary"])
        _event(case, actor=actor, kind=CaseEvent.Kind.RESOLVED, text=summary.strip(), at=case.resolved_at)
        audit_record(actor=actor, action="case.resolved", object_type="case", object_id=case.pk,
                     before=before, after=case_snapshot(case))
    return case


@audits_refusals("case.reopen", object_type="case", object_from=case_of)
def case_reopen(*, actor, case: Case, reason: str) -> Case:
    """Reopen a resolved or closed case; it goes back to its last owner."""
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why the case is reopened."})
    with service_atomic():
        case = _locked_case(case)
        access.may_reopen(actor, case).require()
        before = case_snapshot(case)
        case.status = CaseStatus.OWNED if case.owner_id else CaseStatus.QUEUED
        case.resolved_at = None
        case.closed_at = None
        case.save(update_fields=["status", "resolved_at", "closed_at"])
        _event(case, actor=actor, kind=CaseEvent.Kind.REOPENED, text=reason.strip())
        audit_record(actor=actor, action="case.reopened", object_type="case", object_id=case.pk,
                     before=before, after=case_snapshot(case), reason=reason.strip())
    return case


@audits_refusals("case.close", object_type="case", object_from=case_of)
def case_close(*, actor, case: Case, reason: str = "") -> Case:
    """Close a resolved case (after follow-up, or by the timer when `actor` is None)."""
    with service_atomic():
        case = _locked_case(case)
        if case.status != CaseStatus.RESOLVED:
            raise CaseNotOpen(f"Only a resolved case can be closed; {case.reference} is {case.status}.")
        before = case_snapshot(case)
        case.status = CaseStatus.CLOSED
        case.closed_at = timezone.now()
        case.save(update_fields=["status", "closed_at"])
        _event(case, actor=actor, kind=CaseEvent.Kind.CLOSED, text=reason, at=case.closed_at)
        audit_record(actor=actor, action="case.closed", object_type="case", object_id=case.pk,
                     before=before, after=case_snapshot(case), reason=reason)
    return case


def case_rate(*, case: Case, rating: int) -> Case:
    """Record the customer's 1-5 rating of a resolved or closed case (no login: a signed link)."""
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise ValidationError({"rating": "Rate from 1 to 5."})
    with service_atomic():
        case = _locked_case(case)
        if case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
            raise CaseNotOpen(f"{case.reference} is not resolved yet.")
        if case.rating is not None:
            raise CaseNotOpen("This case has already been rated. Thank you!")
        case.rating = rating
        case.save(update_fields=["rating"])
        _event(case, actor=None, kind=CaseEvent.Kind.RATED, text=f"Customer rated {rating}/5.")
        audit_record(actor=None, action="case.rated", object_type="case", object_id=case.pk,
                     after={"rating": rating})
    return case


SLA_TARGETS = {"first_response": "First response", "resolution": "Resolution"}


def _team_managers(team_id: int | None) -> list:
    """Return the active managers of a team (holders of its manage_team object permission)."""
    if team_id is None:
        return []
    return _TEAM_MANAGERS.all(team_key=str(team_id))


def _active_managers_of(shape, *, team_key: str) -> QuerySet:
    return User.objects.filter(
        userobjectpermission__permission__codename="manage_team",
        userobjectpermission__permission__content_type__app_label="h2h_core",
        userobjectpermission__object_pk=team_key,
        is_active=True,
    ).distinct().order_by("username")


# Asked by every missed service level: compiled once per process.
_TEAM_MANAGERS = PreparedQuery(_active_managers_of, texts=("team_key",))


def case_sla_breach(*, case: Case, target: str, tz=None) -> list:
    """Flag a missed service level and notify the owner and the team's managers; ownership stays.

    `target` is "first_response" (nobody claimed the case in time) or "resolution" (still open at
    its resolution due time). The notification is a case event and an audit event, plus an e-mail
    queued with them (h2h_core.mail: sent by a job once this commits). Returns the people notified;
    an empty list when there was nothing to flag (the target was met after all, or this breach was
    already recorded).
    """
    if target not in SLA_TARGETS:
        raise ValidationError({"target": f"Unknown service level {target!r}."})
    label = SLA_TARGETS[target]
    with service_atomic():
        case = lock_objects.case_locked(case.pk, related=("owner", "team"))
        now = timezone.now()
        due = case.first_response_due if target == "first_response" else case.resolution_due
        missed = due is not None and due <= now and case.status in OPEN_STATUSES and (
            target == "resolution" or case.first_response_at is None or case.first_response_at > due
        )
        if not missed or case.events.filter(kind=CaseEvent.Kind.SLA, text__startswith=f"{label} ").exists():
            return []
        notified = ([case.owner] if case.owner_id else []) + [
            m for m in _team_managers(case.team_id) if m.pk != case.owner_id
        ]
        before = case_snapshot(case)
        if not case.sla_breached:
            case.sla_breached = True
            case.save(update_fields=["sla_breached"])
        when = due.astimezone(tz).strftime("%d %b %H:%M %Z") if tz else due.strftime("%d %b %H:%M UTC")
        owner = case.owner.get_username() if case.owner_id else "nobody yet"
        names = ", ".join(u.get_username() for u in notified) or "nobody (no owner, no team manager)"
        text = f"{label} was due {when} and was missed. Ownership stays with {owner}. Notified: {names}."
        _event(case, actor=None, kind=CaseEvent.Kind.SLA, text=text, at=now)
        mail_queue(subject=f"{case.reference}: {label.lower()} SLA missed", body=text, purpose="sla_breach",
                   recipients=[u.email for u in notified if u.email], case=case)
        audit_record(actor=None, action="case.sla_breached", object_type="case", object_id=case.pk,
                     before=before, after={**case_snapshot(case), "target": target,
                                           "notified": [u.pk for u in notified]},
                     reason=text)
    return notified
