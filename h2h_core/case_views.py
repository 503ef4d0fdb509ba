"""The version of a case a person saw, and what changed since: so a submit made on a stale page is refused.

A version names what a person acts on: the owner, the status, and the latest ownership step
(claim, hand-over, resolution, reopening, closing: so a round trip back to the same owner or status
still counts), decision and authority request event of the case. It is signed (it cannot be forged
to pass the check) and keeps its parts readable, so a refusal can say what changed, not only that
something did.
Decisions and requests are read through the case's own events, written in the same transaction
as the decision or request, so the core needs nothing of the authority layer to version a case.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core import signing
from django.db.models import Max, OuterRef, Q, QuerySet, Subquery

from .models import Case, CaseEvent, CaseStatus

VIEW_SALT = "h2h.case-view-version"
_SIGNER = signing.Signer(salt=VIEW_SALT)
_DECISION = CaseEvent.Kind.DECISION
_REQUEST = CaseEvent.Kind.REQUEST
_STEPS = {
    CaseEvent.Kind.CLAIMED: "claimed",
    CaseEvent.Kind.HANDOVER: "handed over",
    CaseEvent.Kind.RESOLVED: "resolved",
    CaseEvent.Kind.REOPENED: "reopened",
    CaseEvent.Kind.CLOSED: "closed",
}


@dataclass(frozen=True)
class ViewParts:
    case_id: int
    owner_id: int | None
    status: str
    step_event_id: int
    decision_event_id: int
    request_event_id: int

    def compact(self) -> str:
        return (f"{self.case_id}:{self.owner_id or 0}:{self.status}:{self.step_event_id}:"
                f"{self.decision_event_id}:{self.request_event_id}")


def _latest_event(*kinds: str):
    return Subquery(CaseEvent.objects.filter(case_id=OuterRef("pk"), kind__in=kinds).order_by("-pk").values("pk")[:1])


def with_view_parts(cases: QuerySet[Case]) -> QuerySet[Case]:
    """Annotate `cases` with what `case_view_version` needs, so a version costs no query of its own."""
    return cases.annotate(view_step_event=_latest_event(*_STEPS), view_decision_event=_latest_event(_DECISION),
                          view_request_event=_latest_event(_REQUEST))


def view_parts(case: Case) -> ViewParts:
    """Return the current parts of `case`'s version (annotated by `with_view_parts`, or one query)."""
    if hasattr(case, "view_decision_event"):
        step, decision, request = case.view_step_event, case.view_decision_event, case.view_request_event
    else:
        latest = CaseEvent.objects.filter(case_id=case.pk, kind__in=[*_STEPS, _DECISION, _REQUEST]).aggregate(
            step=Max("pk", filter=Q(kind__in=list(_STEPS))), decision=Max("pk", filter=Q(kind=_DECISION)),
            request=Max("pk", filter=Q(kind=_REQUEST)))
        step, decision, request = latest["step"], latest["decision"], latest["request"]
    return ViewParts(case_id=case.pk, owner_id=case.owner_id, status=case.status, step_event_id=step or 0,
                     decision_event_id=decision or 0, request_event_id=request or 0)


def case_view_version(case: Case) -> str:
    """Return the signed version of what a person sees of `case` now (deterministic: equal states, equal strings)."""
    return _SIGNER.sign(view_parts(case).compact())


def parse_view_version(version: str) -> ViewParts | None:
    """Return the parts of a version this server signed, or None when it was forged or mangled."""
    try:
        case_id, owner_id, status, step, decision, request = _SIGNER.unsign(version).split(":")
        return ViewParts(case_id=int(case_id), owner_id=int(owner_id) or None, status=status, step_event_id=int(step),
                         decision_event_id=int(decision), request_event_id=int(request))
    except (signing.BadSignature, ValueError, TypeError):
        return None


def _username(user_id: int | None) -> str:
    if not user_id:
        return "nobody"
    return get_user_model().objects.filter(pk=user_id).values_list("username", flat=True).first() or "a former user"


def _by(event: CaseEvent) -> str:
    return f" by {event.actor.get_username()}" if event.actor_id else ""


def _event_line(event: CaseEvent) -> str:
    if event.kind == _DECISION:
        # A decision event reads "<kind> of <amount>: <rationale>"; the person needs the first half.
        return f"a decision was executed{_by(event)} ({event.text.split(': ', 1)[0]})"
    if event.kind == _REQUEST:
        return f"an authority request changed ({event.text.rstrip('.')})"
    return f"the case was {_STEPS[event.kind]}{_by(event)}"


def view_changes(seen: ViewParts, now: ViewParts) -> list[str]:
    """Return, in words, what changed on the case between two versions of it (empty when nothing did)."""
    changes = []
    if seen.owner_id != now.owner_id:
        changes.append(f"the owner changed from {_username(seen.owner_id)} to {_username(now.owner_id)}")
    if seen.status != now.status:
        changes.append(f"the status changed from {CaseStatus(seen.status).label.lower()} to "
                       f"{CaseStatus(now.status).label.lower()}")
    events_seen = (seen.step_event_id, seen.decision_event_id, seen.request_event_id)
    if events_seen != (now.step_event_id, now.decision_event_id, now.request_event_id):
        since_seen = Q(kind=_DECISION, pk__gt=seen.decision_event_id) | Q(kind=_REQUEST, pk__gt=seen.request_event_id)
        if not changes:
            # Owner and status are back where they were: the steps in between are what changed.
            since_seen |= Q(kind__in=list(_STEPS), pk__gt=seen.step_event_id)
        newer = CaseEvent.objects.filter(since_seen, case_id=now.case_id).select_related("actor").order_by("pk")[:5]
        changes += [_event_line(event) for event in newer]
    return changes
