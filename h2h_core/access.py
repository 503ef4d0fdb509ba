"""Roles and case visibility: the rules h2h_core needs itself; authority.policy re-exports them."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from .models import Case, Role, Team


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


def may_view_case(user, case: Case) -> bool:
    return cases_visible_to(user).filter(pk=case.pk).exists()
