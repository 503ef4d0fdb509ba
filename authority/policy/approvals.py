"""Who may approve an authority request (DESIGN.md rule 3a): one pool, asked by every page and service.

The pool for a request is the managers of the case's team whose own authority covers it, with the
managers to whom one of them hands their approval rights while that delegation is in force (never
passed on further); when none of them covers it, the covered members of the fallback group get it
directly. Never the requester, never a chain. The decision form, the review page, the live check,
the request service and the workflow's fallback offer all ask `approver_pool`; the approve and
reject services and the approvals inbox ask `may_approve` and `may_reject`.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Value

from authority.models import AuthorityKind, AuthorityRequest
from authority.quantities import format_quantity, parse_amount
from h2h_core.access import ALLOWED, Permission
from h2h_core.models import Case
from h2h_core.prepared import PreparedQuery

from .permissions import managed_team_ids
from .service import evaluate, evaluate_many, validate_instant
from .verdict import Verdict

User = get_user_model()

NOT_IN_POOL = "You are not in the approver pool of this request."


@dataclass(frozen=True)
class ApproverPool:
    """The people a request goes to; when there are none, why, and what to do instead."""

    users: list = field(default_factory=list)
    is_fallback: bool = False
    reason: str = ""

    def __bool__(self) -> bool:
        return bool(self.users)

    @property
    def user_ids(self) -> list[int]:
        return [user.pk for user in self.users]

    @property
    def names(self) -> list[str]:
        return [user.get_username() for user in self.users]


def approver_pool(
    *,
    requester,
    case: Case,
    kind: AuthorityKind,
    amount,
    currency: str | None = None,
    at: datetime | None = None,
    fallback_only: bool = False,
) -> ApproverPool:
    """Return who a request by `requester` for `amount` of `kind` on `case` goes to (rule 3a).

    `fallback_only` asks only the fallback group (the workflow's offer once the team window has
    passed). Pass `case` with its customer loaded. Queries, whatever the number of candidates: the
    candidates (1) and their evaluation (evaluate_many: at most 5).
    """
    at = validate_instant(at)
    amount = parse_amount(amount, kind=kind, currency=currency)
    candidates = _candidates(requester_id=requester.pk, team_id=None if fallback_only else case.team_id, at=at)
    verdicts = evaluate_many(agents=candidates, kind=kind, amount=amount, currency=currency, case=case, at=at)
    team_pool = [user for user in candidates if user.in_team_pool and verdicts[user.pk].allowed]
    if team_pool:
        return ApproverPool(users=team_pool)
    fallback = [user for user in candidates if user.in_fallback and verdicts[user.pk].allowed]
    if fallback:
        return ApproverPool(users=fallback, is_fallback=True)
    return ApproverPool(is_fallback=fallback_only,
                        reason=_nobody_reason(case=case, kind=kind, amount=amount, currency=currency or "",
                                              candidates=candidates, verdicts=verdicts))


def with_pool(verdict: Verdict, pool: ApproverPool) -> Verdict:
    """Return the verdict naming the pool a request would go to (or why nobody can approve it)."""
    return dataclasses.replace(verdict, approvers=pool.names, approvers_are_fallback=bool(pool) and pool.is_fallback,
                               no_approver=pool.reason)


def _candidates(*, requester_id: int, team_id: int | None, at: datetime) -> list:
    """Active people other than the requester who could be in the pool, flagged by why: one query.

    Compiled once per process (h2h_core.prepared): every refusal over a limit and every request asks
    for the pool, and building this query cost more than running it.
    """
    return _CANDIDATES.all(shape=team_id is None, requester_id=requester_id, team_key=str(team_id),
                           fallback_group=settings.H2H_FALLBACK_APPROVER_GROUP, at=at)


def _candidate_people(fallback_only: bool, *, requester_id: int, team_key: str, fallback_group: str,
                      at: datetime) -> QuerySet:
    from guardian.models import UserObjectPermission

    from authority.services.oversight import delegations_in_force  # services import the policy, not back

    fallback_members = User.groups.through.objects.filter(group__name=fallback_group)
    people = User.objects.filter(is_active=True).exclude(pk=requester_id)
    if fallback_only:
        return (
            people.filter(pk__in=fallback_members.values("user_id"))
            .annotate(in_team_pool=Value(False), in_fallback=Value(True))
            .order_by("username")
        )
    manages = UserObjectPermission.objects.filter(
        permission__codename="manage_team", permission__content_type__app_label="h2h_core", object_pk=team_key,
    )
    managers = manages.filter(user__is_active=True).exclude(user_id=requester_id).values("user_id")
    # Only the team's own managers' delegations count, so what a delegate received never passes on.
    delegates = delegations_in_force(at=at).filter(manager_id__in=managers).values("delegate_id")
    return (
        people.filter(Q(pk__in=managers) | Q(pk__in=delegates) | Q(pk__in=fallback_members.values("user_id")))
        .annotate(
            in_team_pool=ExpressionWrapper(Q(pk__in=managers) | Q(pk__in=delegates), output_field=BooleanField()),
            in_fallback=Exists(fallback_members.filter(user_id=OuterRef("pk"))),
        )
        .order_by("username")
    )


_CANDIDATES = PreparedQuery(_candidate_people, ints=("requester_id",), texts=("team_key", "fallback_group"),
                            instants=("at",), unused_in_some_shapes=("team_key", "at"))


def _nobody_reason(*, case: Case, kind: AuthorityKind, amount: Decimal, currency: str, candidates: list,
                   verdicts: dict[int, Verdict]) -> str:
    asked = format_quantity(amount, unit=kind.unit, currency=currency)
    head = f"Nobody can approve {asked} of {kind.name.lower()}"
    largest = _largest_approval(verdicts.values(), currency)
    if largest is not None and largest[0] > 0:
        return (f"{head}: the largest approval anyone here can give is "
                f"{format_quantity(largest[0], unit=kind.unit, currency=largest[1])}; lower the amount or ask an "
                f"administrator to name a fallback approver.")
    if candidates:
        return (f"{head}: no manager of the team and no fallback approver has {kind.name.lower()} authority left "
                f"for this case; ask an administrator to name a fallback approver.")
    team = case.team.name if case.team_id else "the case's team"
    return (f"{head}: {team} has no other manager and no fallback approver is named; "
            f"ask an administrator to name one.")


def _largest_approval(verdicts: Iterable[Verdict], currency: str) -> tuple[Decimal, str] | None:
    """The most any candidate could approve on this case: their smaller headroom, in the asked currency first."""
    by_currency: dict[str, Decimal] = {}
    for verdict in verdicts:
        if verdict.suspended or not verdict.deciding_grants:
            continue
        lefts = [left for left in (verdict.per_case_headroom, verdict.period_headroom) if left is not None]
        if not lefts:
            continue
        left = min(lefts)
        by_currency[verdict.counted_currency] = max(left, by_currency.get(verdict.counted_currency, left))
    if not by_currency:
        return None
    chosen = currency if currency in by_currency else sorted(by_currency)[0]
    return by_currency[chosen], chosen


# --- who may decide a request ------------------------------------------------------------------


@dataclass(frozen=True)
class Approval(Permission):
    """may_approve's answer: a Permission that also carries the approver's own verdict.

    Refused because the approver's own authority does not cover the amount, `require()` raises
    AuthorityDenied with that verdict, so every edge shows the headroom as for any refusal.
    """

    verdict: Verdict | None = None

    def require(self) -> None:
        if not self.allowed and self.verdict is not None and not self.verdict.allowed:
            from authority.errors import AuthorityDenied  # errors import the policy's Verdict

            raise AuthorityDenied(self.verdict)
        super().require()


@dataclass(frozen=True)
class ApproverRights:
    """What puts a person in a team's pool: the teams they manage, and who delegates to them now."""

    approver_id: int
    managed_team_ids: frozenset[int]
    delegators_by_team: dict[int, frozenset[int]]

    def holds_delegation_for(self, team_id: int | None, *, requester_id: int | None = None) -> bool:
        """True while a manager of the team (other than the requester) hands them their approval rights."""
        return bool(self.delegators_by_team.get(team_id, frozenset()) - {requester_id})


def approver_rights(approver, *, at: datetime | None = None) -> ApproverRights:
    """Load `approver`'s rights once (two queries, the first cached on the user), for any number of requests."""
    from guardian.models import UserObjectPermission

    from authority.services.oversight import delegations_in_force

    at = validate_instant(at)
    delegators = delegations_in_force(at=at).filter(delegate_id=approver.pk).values("manager_id")
    teams: dict[int, set[int]] = defaultdict(set)
    for manager_id, team_pk in UserObjectPermission.objects.filter(
        permission__codename="manage_team", permission__content_type__app_label="h2h_core",
        user_id__in=delegators, user__is_active=True,
    ).values_list("user_id", "object_pk"):
        teams[int(team_pk)].add(manager_id)
    return ApproverRights(
        approver_id=approver.pk,
        managed_team_ids=frozenset(managed_team_ids(approver)),
        delegators_by_team={team_id: frozenset(ids) for team_id, ids in teams.items()},
    )


def holds_delegation_for_team(user, team_id: int | None, *, at: datetime | None = None) -> bool:
    """True while a manager of the team hands `user` their approval rights (never passed on further)."""
    return team_id is not None and approver_rights(user, at=at).holds_delegation_for(team_id)


def requests_visible_to(user) -> QuerySet[AuthorityRequest]:
    """Requests a person may read: on cases they may see, their own, and those they are or were asked
    to decide (named in the pool, or holding a delegation from a manager of the case's team).

    The approvals inbox, the approve and reject pages and the API all read requests through this.
    """
    from authority import selectors

    from .permissions import cases_visible_to, is_auditor

    requests = AuthorityRequest.objects.all()
    if not getattr(user, "is_authenticated", False):
        return requests.none()
    if user.is_superuser or is_auditor(user):
        return requests
    delegated_teams = list(approver_rights(user).delegators_by_team)
    return requests.filter(
        Q(case__in=cases_visible_to(user).values("pk")) | Q(requester_id=user.pk) | selectors.in_pool_of(user)
        | Q(case__team_id__in=delegated_teams)
    )


def may_reject(approver, request: AuthorityRequest, *, rights: ApproverRights | None = None,
               at: datetime | None = None) -> Permission:
    """Whether `approver` may decide `request` at all: not their own, and in its pool now.

    In a team's pool means: named in it and still a manager of the case's team, or handed the approval
    rights of one of the team's managers by a delegation in force. A fallback pool is as named.
    Rejecting needs nothing more; approving also needs the approver's own authority (may_approve).
    """
    if approver.pk == request.requester_id:
        return Permission.deny("Nobody approves their own request.")
    if request.pool_is_fallback:
        return ALLOWED if approver.pk in request.pool else Permission.deny(NOT_IN_POOL)
    rights = rights or approver_rights(approver, at=at)
    team_id = request.case.team_id
    if approver.pk in request.pool and team_id in rights.managed_team_ids:
        return ALLOWED
    if rights.holds_delegation_for(team_id, requester_id=request.requester_id):
        return ALLOWED
    if approver.pk in request.pool:
        return Permission.deny("The delegation that put you in this request's approver pool has ended.")
    return Permission.deny(NOT_IN_POOL)


def may_approve(
    approver,
    request: AuthorityRequest,
    *,
    rights: ApproverRights | None = None,
    verdict: Verdict | None = None,
    at: datetime | None = None,
) -> Approval:
    """Whether `approver` may approve `request` now, and why not (rule 3a).

    Not their own request; in its pool (may_reject); and their own authority covers the amount on
    that case now. Pass `rights` and `verdict` (the approver's own verdict for the request) to ask
    for many requests without queries per request; `request.case` should come with its customer.
    The approve service asks under the request's lock and spends the period usage the verdict names.
    """
    member = may_reject(approver, request, rights=rights, at=at)
    if not member:
        return Approval(False, member.reason, member.error)
    if verdict is None:
        verdict = evaluate(agent=approver, kind=request.kind, amount=request.amount,
                           currency=request.currency or None, case=request.case, at=at, with_approvers=False)
    if not verdict.allowed:
        asked = format_quantity(request.amount, unit=request.kind.unit, currency=request.currency)
        return Approval(False, f"Your own authority does not cover {asked}: {' '.join(verdict.reasons)}",
                        verdict=verdict)
    return Approval(True, verdict=verdict)
