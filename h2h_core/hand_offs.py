"""The hand-off of a case from an AI agent to a person: the one write path, and its rules.

Who may hand a case off (decided here, one predicate): the AI agent that owns the open case; or,
while the case waits unowned in its team's queue, an AI agent that opened it (the AI took intake)
or that could claim it (an AI of the team passing a queued case it will not own to a person
without owning it first). A case that already waits for a person (a hand-off nobody picked up yet)
is not handed off again: a person's queue never fills with duplicates, and two concurrent
hand-offs leave one.

The hand-off makes the receiving person the owner (status owned), or, when the team has nobody to
receive it, leaves the case unowned in the team's queue (status queued, or new without a team):
there is exactly one owner at a time, and the AI is no longer it. The whole context travels with
the case (the HandOff row); the audit log keeps its shape (reason, attempts, transcript length),
not the customer's words.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from . import access
from .amounts import plain_decimal
from .audit import audit_record
from .audit.refusals import audits_refusals, case_of
from .errors import CaseNotOpen, IdempotencyConflict, NotCaseOwner
from .lock_objects import case_locked
from .models import Case, CaseEvent, CaseStatus, HandOff, HandOffReason
from .models.cases import OPEN_STATUSES
from .prepared import PreparedQuery
from .services import case_snapshot, idempotency_key_validate, payload_fingerprint
from .transactions import outermost, service_atomic

TRANSCRIPT_MAX_LINES = 200
TRANSCRIPT_MAX_TEXT = 4000
TRANSCRIPT_SPEAKERS = ("customer", "ai")
ATTEMPTS_MAX = 50
ATTEMPT_KEYS = ("kind", "amount", "currency", "outcome", "reasons", "rationale", "confidence")
ATTEMPT_TEXT_MAX = 200
REASON_TEXT_MAX = 2000
SUMMARY_MAX = 8000

Permission = access.Permission


# --- input -------------------------------------------------------------------------------------


def hand_off_transcript_validate(transcript: Any) -> list[dict]:
    """Return the conversation as [{"from": "customer"|"ai", "text": str}], or raise ValidationError."""
    if transcript is None:
        return []
    if isinstance(transcript, (str, bytes, dict)) or not isinstance(transcript, Iterable):
        raise ValidationError({"transcript": "Give the conversation as a list of lines "
                                             '({"from": "customer" or "ai", "text": "..."}).'})
    lines = list(transcript)
    if len(lines) > TRANSCRIPT_MAX_LINES:
        raise ValidationError({"transcript": f"At most {TRANSCRIPT_MAX_LINES} lines; this one has {len(lines)}."})
    clean = []
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, dict):
            raise ValidationError({"transcript": f"Line {number} is not an object with \"from\" and \"text\"."})
        unknown = sorted(set(line) - {"from", "text"})
        if unknown:
            raise ValidationError({"transcript": f"Line {number} has unknown fields: {', '.join(map(str, unknown))}."})
        speaker, text = line.get("from"), line.get("text")
        if speaker not in TRANSCRIPT_SPEAKERS:
            raise ValidationError({"transcript": f"Line {number}: \"from\" must be \"customer\" or \"ai\"."})
        if not isinstance(text, str) or not text.strip():
            raise ValidationError({"transcript": f"Line {number}: \"text\" must be non-empty text."})
        if len(text) > TRANSCRIPT_MAX_TEXT:
            raise ValidationError({"transcript": f"Line {number} is {len(text)} characters long; "
                                                 f"at most {TRANSCRIPT_MAX_TEXT}."})
        if "\x00" in text:
            raise ValidationError({"transcript": f"Line {number} contains a NUL character."})
        clean.append({"from": speaker, "text": text})
    return clean


def _attempt_text(value, *, number: int, key: str) -> str:
    if not isinstance(value, str) or len(value) > ATTEMPT_TEXT_MAX or "\x00" in value:
        raise ValidationError({"attempts": f"Attempt {number}: \"{key}\" must be text of at most "
                                           f"{ATTEMPT_TEXT_MAX} characters."})
    return value


def hand_off_attempts_validate(attempts: Any) -> list[dict]:
    """Return what the AI tried as [{kind, amount, currency, outcome, reasons}], or raise ValidationError.

    Every field is optional; amounts are plain decimals (kept as text), reasons a list of texts;
    the AI's rationale and stated confidence may come along (kept as text).
    """
    if attempts is None:
        return []
    if isinstance(attempts, (str, bytes, dict)) or not isinstance(attempts, Iterable):
        raise ValidationError({"attempts": "Give what the AI tried as a list of objects."})
    items = list(attempts)
    if len(items) > ATTEMPTS_MAX:
        raise ValidationError({"attempts": f"At most {ATTEMPTS_MAX} attempts; this one has {len(items)}."})
    clean = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ValidationError({"attempts": f"Attempt {number} is not an object."})
        unknown = sorted(set(item) - set(ATTEMPT_KEYS))
        if unknown:
            raise ValidationError({"attempts": f"Attempt {number} has unknown fields: "
                                               f"{', '.join(map(str, unknown))} (known: {', '.join(ATTEMPT_KEYS)})."})
        attempt: dict = {}
        for key in ("kind", "currency", "outcome", "confidence"):
            if item.get(key) is not None:
                attempt[key] = _attempt_text(str(item[key]) if key == "confidence" else item[key],
                                             number=number, key=key)
        if item.get("rationale") is not None:
            attempt["rationale"] = _reason(item["rationale"], number=number, what="rationale")
        if item.get("amount") is not None:
            try:
                attempt["amount"] = format(plain_decimal(item["amount"], label=f"amount of attempt {number}"), "f")
            except ValidationError as error:
                raise ValidationError({"attempts": error.messages}) from None
        reasons = item.get("reasons")
        if reasons is not None:
            if isinstance(reasons, str):
                reasons = [reasons]
            if not isinstance(reasons, list) or len(reasons) > 20:
                raise ValidationError({"attempts": f"Attempt {number}: \"reasons\" must be a list of at most "
                                                   "20 texts."})
            attempt["reasons"] = [_reason(r, number=number) for r in reasons]
        clean.append(attempt)
    return clean


def _reason(reason, *, number: int, what: str = "each reason") -> str:
    if not isinstance(reason, str) or len(reason) > TRANSCRIPT_MAX_TEXT or "\x00" in reason:
        raise ValidationError({"attempts": f"Attempt {number}: {what} must be text of at most "
                                           f"{TRANSCRIPT_MAX_TEXT} characters."})
    return reason


def _text(value, *, field: str, limit: int, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({field: "Must be text."})
    value = value.strip()
    if required and not value:
        raise ValidationError({field: "Say why the case goes to a person."})
    if len(value) > limit:
        raise ValidationError({field: f"At most {limit} characters."})
    if "\x00" in value:
        raise ValidationError({field: "Contains a NUL character."})
    return value


# --- rules -------------------------------------------------------------------------------------


def pending_hand_off(case: Case) -> HandOff | None:
    """Return the case's hand-off nobody has picked up yet, if any (one query, compiled once per process)."""
    return _PENDING_HAND_OFF.first(case_id=case.pk)


_PENDING_HAND_OFF = PreparedQuery(
    lambda shape, *, case_id: HandOff.objects.filter(case_id=case_id, picked_up_at__isnull=True)
    .order_by("-created_at", "-id")[:1],
    ints=("case_id",))


def may_hand_off(actor, case: Case, *, by=None) -> Permission:
    """Return whether AI agent `actor` (or manager `by` on its behalf) may hand `case` to a person now.

    Ask under the case's row lock, with the locked case.
    """
    if not access.is_ai_agent(actor):
        return access.Permission.deny("Only an AI agent hands a case off to a person.")
    if by is not None:
        if not (getattr(by, "is_authenticated", False) and (by.is_superuser or case.team_id in
                                                           access.managed_team_ids(by))):
            return access.Permission.deny(f"Only a manager of the team of {case.reference} hands its cases off "
                                          "on an AI agent's behalf.")
    elif not actor.is_active:
        return access.Permission.deny(f"{actor.get_username()} is inactive.")
    if case.status not in OPEN_STATUSES:
        return access.Permission.deny(f"Case {case.reference} is {case.get_status_display().lower()}.", CaseNotOpen)
    if case.owner_id == actor.pk:
        return access.ALLOWED
    waiting = case.owner_id is None and case.status in (CaseStatus.NEW, CaseStatus.QUEUED)
    if waiting and (case.opened_by_id == actor.pk or access.is_team_member(actor, case.team_id)):
        return access.ALLOWED
    return access.Permission.deny(f"Only the AI agent that owns {case.reference} hands it off.", NotCaseOwner)


def may_receive_hand_off(user, case: Case) -> Permission:
    """A hand-off goes to an active person (not an AI agent) who may receive the case."""
    if user is None:
        return access.ALLOWED  # the case waits in the team's queue
    if not getattr(user, "is_active", False) or not access.is_human_agent(user):
        return access.Permission.deny(f"{user.get_username()} is not a person who owns cases.")
    return access.may_receive_case(user, case)


def may_pick_up(user, hand_off: HandOff, case: Case) -> Permission:
    """The person who owns the case now (the receiver, or whoever claimed it from the queue) picks it up."""
    if not access.is_human_agent(user):
        return access.Permission.deny("Only a person picks up a hand-off.")
    if case.status not in OPEN_STATUSES:
        return access.Permission.deny(f"Case {case.reference} is {case.get_status_display().lower()}.", CaseNotOpen)
    if case.owner_id != user.pk:
        if hand_off.to_user_id is None and case.owner_id is None:
            return access.Permission.deny(f"Claim {case.reference} from the queue to pick it up.", NotCaseOwner)
        return access.Permission.deny(f"Only the owner of {case.reference} picks up its hand-off.", NotCaseOwner)
    return access.ALLOWED


def may_claim_handed_off(user, case: Case) -> Permission:
    """A case an AI agent handed to a person is claimed from the queue by a person, never by an AI agent."""
    if access.is_ai_agent(user) and case.owner_id is None and pending_hand_off(case) is not None:
        return access.Permission.deny(f"{case.reference} was handed to a person by an AI agent: a person claims it.")
    return access.ALLOWED


# --- reads -------------------------------------------------------------------------------------


def hand_offs_visible_to(user) -> QuerySet[HandOff]:
    """Hand-offs on the cases `user` may see (the one visibility selector), nothing else."""
    return HandOff.objects.filter(case_id__in=access.cases_visible_to(user).values("pk"))


def latest_hand_offs(hand_offs: QuerySet[HandOff]) -> QuerySet[HandOff]:
    """Of `hand_offs`, each case's latest only (one query with the caller's filters)."""
    later = HandOff.objects.filter(case_id=OuterRef("case_id")).filter(
        Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk")))
    return hand_offs.exclude(Exists(later))


# --- writes ------------------------------------------------------------------------------------


def _label(user) -> str:
    return user.get_username() if user is not None else ""


@audits_refusals("case.hand_off", object_type="case", object_from=case_of)
def case_hand_off(
    *,
    actor,
    case: Case,
    to_user,
    reason: str,
    reason_text: str,
    summary: str = "",
    transcript: Iterable[dict] = (),
    attempts: Iterable[dict] = (),
    idempotency_key: str | None = None,
    by=None,
) -> HandOff:
    """Hand `case` from AI agent `actor` to person `to_user` (None: the team's queue), with its context.

    `by` is a manager acting on the AI agent's behalf (suspending it): the audit names both. With an
    idempotency key, a repeat of the same hand-off by the same AI agent returns the first one
    (marked `replayed`); the same key with another payload is refused.
    """
    clean = _clean_input(actor=actor, case=case, reason=reason, reason_text=reason_text, summary=summary,
                         transcript=transcript, attempts=attempts, idempotency_key=idempotency_key, by=by)
    key, fingerprint = clean["key"], clean["fingerprint"]
    if key and (existing := _handed_off_with(actor=actor, key=key, fingerprint=fingerprint)):
        return existing
    alone = outermost()
    try:
        with service_atomic():
            hand_off = _hand_off_locked(actor=actor, case=case, to_user=to_user, by=by, **clean)
    except IntegrityError:
        # The same key committed by a concurrent call: answer with its hand-off.
        if alone and key and (existing := _handed_off_with(actor=actor, key=key, fingerprint=fingerprint)):
            return existing
        raise
    return hand_off


def hand_off_replayed(*, actor, case: Case, reason: str, reason_text: str, summary: str = "",
                      transcript: Iterable[dict] = (), attempts: Iterable[dict] = (),
                      idempotency_key: str | None = None, by=None) -> HandOff | None:
    """Return the hand-off an earlier call with this key made (None: no key, or none yet), with the
    same arguments as `case_hand_off`; another payload with the same key raises IdempotencyConflict."""
    clean = _clean_input(actor=actor, case=case, reason=reason, reason_text=reason_text, summary=summary,
                         transcript=transcript, attempts=attempts, idempotency_key=idempotency_key, by=by)
    if clean["key"] is None:
        return None
    return _handed_off_with(actor=actor, key=clean["key"], fingerprint=clean["fingerprint"])


def _clean_input(*, actor, case, reason, reason_text, summary, transcript, attempts, idempotency_key, by) -> dict:
    if reason not in HandOffReason.values:
        raise ValidationError({"reason": f"Unknown hand-off reason {reason!r}; "
                                         f"one of {', '.join(HandOffReason.values)}."})
    reason_text = _text(reason_text, field="reason_text", limit=REASON_TEXT_MAX, required=True)
    summary = _text(summary, field="summary", limit=SUMMARY_MAX, required=False)
    transcript = hand_off_transcript_validate(transcript)
    attempts = hand_off_attempts_validate(attempts)
    key = idempotency_key_validate(idempotency_key)
    fingerprint = payload_fingerprint({
        "case": case.pk, "reason": reason, "reason_text": reason_text, "summary": summary,
        "transcript": transcript, "attempts": attempts, "by": getattr(by, "pk", None),
    }) if key else ""
    return {"reason": reason, "reason_text": reason_text, "summary": summary, "transcript": transcript,
            "attempts": attempts, "key": key, "fingerprint": fingerprint}


def _hand_off_locked(*, actor, case, to_user, reason, reason_text, summary, transcript, attempts, key,
                     fingerprint, by) -> HandOff:
    case = case_locked(case.pk, related=("team",))
    may_hand_off(actor, case, by=by).require()
    receiver = may_receive_hand_off(to_user, case)
    if not receiver:
        raise ValidationError({"to_user": receiver.reason})
    waiting = pending_hand_off(case)
    if waiting is not None:
        raise CaseNotOpen(f"{case.reference} already waits for a person (handed off "
                          f"{waiting.created_at:%Y-%m-%d %H:%M} UTC).")
    before = case_snapshot(case)
    now = timezone.now()
    case.owner = to_user
    case.status = CaseStatus.OWNED if to_user is not None else (CaseStatus.QUEUED if case.team_id else CaseStatus.NEW)
    case.save(update_fields=["owner", "status"])
    hand_off = HandOff.objects.create(
        case=case, from_agent=actor, to_user=to_user, reason=reason, reason_text=reason_text, summary=summary,
        transcript=transcript, attempts=attempts, created_at=now, idempotency_key=key,
        payload_fingerprint=fingerprint,
    )
    where = _label(to_user) if to_user is not None else (
        f"the {case.team.name} queue" if case.team_id else "triage (no team)")
    on_behalf = f" (on behalf of the AI, by {_label(by)})" if by is not None else ""
    CaseEvent.objects.create(case=case, actor=by or actor, kind=CaseEvent.Kind.HAND_OFF, at=now,
                             text=f"Handed to {where} by AI agent {_label(actor)}{on_behalf}: {reason_text}")
    audit_record(
        actor=by or actor, action="case.handed_off", object_type="case", object_id=case.pk,
        before=before,
        after={**case_snapshot(case), "hand_off_id": hand_off.pk, "from_agent_id": actor.pk,
               "from_agent": _label(actor), "to_user_id": getattr(to_user, "pk", None),
               "by_id": getattr(by, "pk", None), "by": _label(by), "reason": reason,
               "attempts": attempts, "transcript_lines": len(transcript), "summary_length": len(summary)},
        reason=f"{reason}: {reason_text}",
    )
    return hand_off


def _handed_off_with(*, actor, key: str, fingerprint: str) -> HandOff | None:
    existing = HandOff.objects.filter(from_agent_id=actor.pk, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.payload_fingerprint != fingerprint:
        raise IdempotencyConflict("This idempotency key was already used for a different hand-off.",
                                  hand_off_id=existing.pk)
    existing.replayed = True
    return existing


@audits_refusals("hand_off.pick_up", object_type="hand_off", object_from=lambda kwargs: kwargs.get("hand_off"))
def hand_off_pick_up(*, actor, hand_off: HandOff) -> HandOff:
    """Record that the person who owns the case now has picked its hand-off up; once (a repeat is a no-op)."""
    if hand_off.picked_up_at is not None:
        return hand_off
    with service_atomic():
        case = case_locked(hand_off.case_id)
        hand_off = HandOff.objects.get(pk=hand_off.pk)
        if hand_off.picked_up_at is not None:
            return hand_off
        may_pick_up(actor, hand_off, case).require()
        now = timezone.now()
        # Conditional: under the case lock nobody else records it, and a second call finds it recorded.
        HandOff.objects.filter(pk=hand_off.pk, picked_up_at__isnull=True).update(picked_up_at=now,
                                                                                 picked_up_by=actor)
        hand_off.picked_up_at, hand_off.picked_up_by = now, actor
        audit_record(actor=actor, action="hand_off.picked_up", object_type="hand_off", object_id=hand_off.pk,
                     after={"case_id": case.pk, "reference": case.reference, "picked_up_by_id": actor.pk,
                            "to_user_id": hand_off.to_user_id,
                            "waited_seconds": int((now - hand_off.created_at).total_seconds())})
    return hand_off


__all__ = [
    "ATTEMPTS_MAX",
    "TRANSCRIPT_MAX_LINES",
    "TRANSCRIPT_MAX_TEXT",
    "case_hand_off",
    "hand_off_attempts_validate",
    "hand_off_pick_up",
    "hand_off_replayed",
    "hand_off_transcript_validate",
    "hand_offs_visible_to",
    "latest_hand_offs",
    "may_claim_handed_off",
    "may_hand_off",
    "may_pick_up",
    "may_receive_hand_off",
    "pending_hand_off",
]
