"""What waits for me: one list, and its count for the navigation.

For an approver: the requests they may decide now (the approvals inbox's own selector,
`authority.reports.inbox_for`, without those already past their expiry). For an agent, on the open
cases they own: cases handed over to them they have not acted on since, cases past a due time or
with a breached SLA, their approved requests whose one-off grant is still usable, and their
rejected requests they have not acted on since the rejection. For a person who works cases: the
hand-offs from AI agents to them not picked up yet, and those waiting unowned in their teams'
queues, oldest first.

"Acted on" means the person wrote anything on the case's timeline after the event (a note, a
decision, a request, a resolution...): the timeline is the record of what they did, so reading
the page alone does not clear an item. Every list and count costs a fixed number of queries,
whatever the number of cases and requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import DecimalField, Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from authority.models import AuthorityRequest, GrantStatus, RequestStatus, UsageCounter
from authority.policy.permissions import may_use_manager_console
from authority.reports import approvals as approval_reports
from h2h_core.access import is_human_agent
from h2h_core.models import Case, CaseEvent, HandOff, Team
from h2h_core.models.cases import OPEN_STATUSES

LIMIT = 50


@dataclass(frozen=True)
class Inbox:
    """The items waiting for one person: cases by due time, requests latest decision first, approvals by expiry."""

    approvals: list = field(default_factory=list)
    handovers: list = field(default_factory=list)
    overdue: list = field(default_factory=list)
    approved: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    hand_offs: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return (len(self.approvals) + len(self.handovers) + len(self.overdue) + len(self.approved)
                + len(self.rejected) + len(self.hand_offs))


@dataclass(frozen=True)
class WaitingCounts:
    """The navigation's numbers: everything waiting for me, and the part of it that is approvals."""

    total: int = 0
    approvals: int = 0


def approvals_waiting(user, *, now: datetime | None = None) -> QuerySet[AuthorityRequest]:
    """Open requests `user` may decide now: the approvals inbox's selector, still before their expiry."""
    return approval_reports.inbox_for(user).filter(expires_at__gt=now or timezone.now())


def _owned_open_cases(user) -> QuerySet[Case]:
    # A person always sees the cases they own (h2h_core.access.cases_visible_to): no join needed.
    return Case.objects.filter(owner_id=user.pk, status__in=OPEN_STATUSES)


def _unacknowledged_handover(user) -> tuple[dict, Q]:
    """Annotations and filter: ownership last moved to `user` by a handover they have not acted on since."""
    latest = CaseEvent.objects.filter(case=OuterRef("pk")).order_by("-at", "-id")
    handover_at = Subquery(latest.filter(kind=CaseEvent.Kind.HANDOVER).values("at")[:1])
    claimed_at = Subquery(latest.filter(kind=CaseEvent.Kind.CLAIMED).values("at")[:1])
    acted = Exists(CaseEvent.objects.filter(case=OuterRef("pk"), actor_id=user.pk, at__gt=OuterRef("handover_at")))
    annotations = {"handover_at": handover_at, "claimed_at": claimed_at, "acted_since_handover": acted}
    condition = (Q(handover_at__isnull=False, acted_since_handover=False)
                 & (Q(claimed_at__isnull=True) | Q(claimed_at__lt=F("handover_at"))))
    return annotations, condition


def hand_offs_waiting(user) -> QuerySet[HandOff]:
    """Hand-offs from AI agents waiting for `user`, a person: to them and not picked up while they still
    own the case, and those waiting unowned in the queue of one of their teams (none for anyone else)."""
    if not is_human_agent(user):
        return HandOff.objects.none()
    my_teams = Team.members.through.objects.filter(user_id=user.pk).values("team_id")
    to_me = Q(to_user_id=user.pk, case__owner_id=user.pk)
    in_my_queue = Q(to_user__isnull=True, case__owner__isnull=True, case__team_id__in=my_teams)
    return HandOff.objects.filter(to_me | in_my_queue, picked_up_at__isnull=True, case__status__in=OPEN_STATUSES)


def _overdue(now: datetime) -> Q:
    return (Q(sla_breached=True) | Q(resolution_due__lt=now)
            | Q(first_response_at__isnull=True, first_response_due__lt=now))


def _requests_of(user) -> QuerySet[AuthorityRequest]:
    """The person's requests on open cases they still own, with what is left of each one-off grant."""
    used = UsageCounter.objects.filter(grant_id=OuterRef("one_off_grant_id"),
                                       scope=UsageCounter.Scope.ONE_OFF).values("used")[:1]
    money = DecimalField(max_digits=20, decimal_places=4)
    acted = Exists(CaseEvent.objects.filter(case=OuterRef("case_id"), actor_id=user.pk, at__gt=OuterRef("decided_at")))
    return (
        AuthorityRequest.objects.filter(requester_id=user.pk, case__owner_id=user.pk, case__status__in=OPEN_STATUSES)
        .annotate(left=F("one_off_grant__per_case_limit") - Coalesce(Subquery(used), Value(Decimal(0)),
                                                                     output_field=money),
                  acted_since_decision=acted)
    )


def _usable(now: datetime) -> Q:
    # An approval covers exactly its amount, once: usable while in force (not voided) and unused.
    return Q(status=RequestStatus.APPROVED, one_off_grant__status=GrantStatus.ACTIVE,
             one_off_grant__valid_until__gt=now, one_off_grant__superseded_at__isnull=True,
             left=F("one_off_grant__per_case_limit"), left__gt=0)


def _rejected_unseen() -> Q:
    return Q(status=RequestStatus.REJECTED, acted_since_decision=False)


def approved_to_execute(user, *, case: Case, now: datetime | None = None) -> list[AuthorityRequest]:
    """`user`'s approved requests on `case` whose one-off grant is still usable, with `left` on each: one query."""
    now = now or timezone.now()
    return list(_requests_of(user).filter(_usable(now), case_id=case.pk)
                .select_related("kind", "one_off_grant").order_by("-decided_at", "-id"))


def inbox_for(user, *, now: datetime | None = None) -> Inbox:
    """Everything waiting for `user`, each group at most LIMIT long: a fixed number of queries."""
    if not getattr(user, "is_authenticated", False):
        return Inbox()
    now = now or timezone.now()
    approvals = []
    if may_use_manager_console(user):
        approvals = list(approvals_waiting(user, now=now).order_by("expires_at", "id")[:LIMIT])
    annotations, unacknowledged = _unacknowledged_handover(user)
    cases = list(
        _owned_open_cases(user).annotate(**annotations)
        .filter(unacknowledged | _overdue(now)).select_related("customer", "team")
        .order_by("resolution_due", "-stakes_score", "id")[: 2 * LIMIT]
    )
    handovers = [case for case in cases if _is_unacknowledged(case)]
    overdue = [case for case in cases if not _is_unacknowledged(case)]
    requests = list(
        _requests_of(user).filter(_usable(now) | _rejected_unseen())
        .select_related("case__customer", "kind", "decided_by", "one_off_grant")
        .order_by("-decided_at", "-id")[: 2 * LIMIT]
    )
    hand_offs = list(hand_offs_waiting(user).select_related("case__customer", "case__team", "from_agent")
                     .order_by("created_at", "id")[:LIMIT])
    return Inbox(
        hand_offs=hand_offs,
        approvals=approvals,
        handovers=handovers[:LIMIT],
        overdue=overdue[:LIMIT],
        approved=[r for r in requests if r.status == RequestStatus.APPROVED][:LIMIT],
        rejected=[r for r in requests if r.status == RequestStatus.REJECTED][:LIMIT],
    )


def _is_unacknowledged(case: Case) -> bool:
    return (case.handover_at is not None and not case.acted_since_handover
            and (case.claimed_at is None or case.claimed_at < case.handover_at))


def waiting_counts(user, *, with_approvals: bool) -> WaitingCounts:
    """The navigation's counts: one COUNT of the cases and requests waiting, and one of approvals if asked."""
    now = timezone.now()
    annotations, unacknowledged = _unacknowledged_handover(user)
    cases = _owned_open_cases(user).annotate(**annotations).filter(unacknowledged | _overdue(now))
    requests = _requests_of(user).filter(_usable(now) | _rejected_unseen())
    hand_offs = hand_offs_waiting(user)
    # UNION ALL of the id lists, counted in one statement.
    own = cases.order_by().values("pk").union(requests.order_by().values("pk"), hand_offs.order_by().values("pk"),
                                              all=True).count()
    approvals = approvals_waiting(user, now=now).count() if with_approvals else 0
    return WaitingCounts(total=own + approvals, approvals=approvals)
