"""Roles, case visibility and the case rules: one predicate per rule, each returning its reason.

h2h_core needs these itself (the case services enforce them under the case's row lock);
`authority.policy` re-exports them, so there is one place to ask "may this person…". Views,
serializers, templates and viewflow's node hooks ask the same predicates what to show.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from .errors import CaseNotOpen, DomainError, NotAllowed, NotCaseOwner
from .models import Case, CaseStatus, Role, Team
from .models.cases import OPEN_STATUSES


@dataclass(frozen=True)
class Permission:
    """The answer of a rule: allowed, or denied with the reason a person can act on."""

    allowed: bool
    reason: str = ""
    error: type[DomainError] = NotAllowed

    @classmethod
    def allow(cls) -> Permission:
        return cls(True)

    @classmethod
    def deny(cls, reason: str, error: type[DomainError] = NotAllowed) -> Permission:
        return cls(False, reason, error)

    def __bool__(self) -> bool:
        return self.allowed

    def require(self) -> None:
        """Raise the rule's domain error, with its reason, unless allowed."""
        if not self.allowed:
            raise self.error(self.reason)


ALLOWED = Permission.allow()



def roles_of(user) -> frozenset[str]:
    """Return the user's role names, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_h2h_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._h2h_roles = cached
    return cached


def is_manager(user) -> bool:
    return Role.MANAGER in roles_of(user)


def is_auditor(user) -> bool:
    return Role.AUDITOR in roles_of(user)


def is_agent(user) -> bool:
    return bool({Role.AGENT, Role.SENIOR_AGENT} & roles_of(user))


def managed_team_ids(user) -> list[int]:
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_h2h_managed_team_ids", None)
    if cached is None:
        teams = get_objects_for_user(user, "h2h_core.manage_team", klass=Team, accept_global_perms=False)
        cached = sorted(teams.values_list("pk", flat=True))
        user._h2h_managed_team_ids = cached
    return cached


def may_manage_user(manager, user) -> bool:
    """A manager manages the members of their teams, never themselves."""
    if manager.pk == user.pk:
        return False
    return Team.members.through.objects.filter(user_id=user.pk, team_id__in=managed_team_ids(manager)).exists()


def cases_visible_to(user) -> QuerySet[Case]:
    """Auditors see every case; managers their teams' cases; agents their teams' and their own."""
    cases = Case.objects.all()
    if not getattr(user, "is_authenticated", False):
        return cases.none()
    if user.is_superuser or is_auditor(user):
        return cases
    visible = Q(owner_id=user.pk)
    if is_manager(user):
        visible |= Q(team_id__in=managed_team_ids(user))
    if is_agent(user):
        visible |= Q(team__members=user.pk)
    return cases.filter(visible).distinct() if is_agent(user) else cases.filter(visible)


def may_view_case(user, case: Case) -> Permission:
    if cases_visible_to(user).filter(pk=case.pk).exists():
        return ALLOWED
    return Permission.deny("You cannot see this case.")


def is_team_member(user, team_id: int | None) -> bool:
    return bool(team_id) and Team.members.through.objects.filter(team_id=team_id, user_id=user.pk).exists()


def _authenticated(user) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def may_claim(user, case: Case) -> Permission:
    """An agent of the case's team may claim it while it waits in the queue."""
    if case.status not in (CaseStatus.NEW, CaseStatus.QUEUED):
        if case.owner_id and case.owner_id == getattr(user, "pk", None):
            return Permission.deny(f"You already own {case.reference}.", CaseNotOpen)
        owner = case.owner.get_username() if case.owner_id else "nobody"
        return Permission.deny(f"{case.reference} is no longer in the queue (owner: {owner}).", CaseNotOpen)
    if not (_authenticated(user) and is_agent(user) and is_team_member(user, case.team_id)):
        return Permission.deny(f"Only an agent of the case's team may claim {case.reference}.")
    return ALLOWED


def may_act_as_owner(user, case: Case) -> Permission:
    """Only the current owner of an open case acts on it: decides, asks for authority, resolves (rule 4)."""
    if case.status not in OPEN_STATUSES:
        return Permission.deny(f"Case {case.reference} is {case.get_status_display().lower()}.", CaseNotOpen)
    if not _authenticated(user) or case.owner_id != user.pk:
        return Permission.deny(f"Only the owner of {case.reference} may act on it.", NotCaseOwner)
    return ALLOWED


def may_hand_over(user, case: Case) -> Permission:
    """The owner, or a manager of the case's team, may pass an open case on."""
    if case.status not in OPEN_STATUSES:
        return Permission.deny(f"Case {case.reference} is {case.get_status_display().lower()}.", CaseNotOpen)
    if not _authenticated(user) or (case.owner_id != user.pk and case.team_id not in managed_team_ids(user)):
        return Permission.deny(f"Only the owner of {case.reference} or a manager of its team may hand it over.",
                               NotCaseOwner)
    return ALLOWED


def may_receive_case(user, case: Case) -> Permission:
    """A handover goes to another agent of the case's team."""
    if user.pk == case.owner_id:
        return Permission.deny(f"{user.get_username()} already owns {case.reference}.")
    if not (is_agent(user) and is_team_member(user, case.team_id)):
        return Permission.deny(f"{user.get_username()} is not an agent of {case.team}.")
    return ALLOWED


def may_reopen(user, case: Case) -> Permission:
    """The last owner, or a manager of the case's team, may reopen a resolved or closed case."""
    if case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
        return Permission.deny(f"{case.reference} is still open.", CaseNotOpen)
    if not _authenticated(user) or (case.owner_id != user.pk and case.team_id not in managed_team_ids(user)):
        return Permission.deny(f"Only the last owner of {case.reference} or its team's manager may reopen it.")
    return ALLOWED
