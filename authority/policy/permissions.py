"""Who may see and do what. Lists are filtered by queryset, never by a per-object loop.

The consoles: managers (and superusers) reach the manager console and see only their teams;
auditors (and superusers) reach the auditor console and read everything; agents reach neither.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Q, QuerySet

from authority.models import Decision
from h2h_core.access import (  # noqa: F401  (re-exported: the one place to ask)
    case_visible_to,
    cases_visible_to,
    is_agent,
    is_auditor,
    is_manager,
    managed_team_ids,
    may_manage_user,
    may_open_cases,
    may_use_auditor_console,
    may_view_case,
    roles_of,
)
from h2h_core.models import Role, Team

from .grants import own_lines  # noqa: F401  (re-exported: the matrix marks a manager's own lines with it)

User = get_user_model()


def decisions_visible_to(user) -> QuerySet[Decision]:
    """Decisions on the cases the user may see: every page and the API read decisions through this."""
    if not getattr(user, "is_authenticated", False):
        return Decision.objects.none()
    if user.is_superuser or is_auditor(user):
        return Decision.objects.all()
    return Decision.objects.filter(case__in=cases_visible_to(user).values("pk"))


def may_use_manager_console(user) -> bool:
    """Managers and superusers; never agents or auditors (an auditor changes nothing)."""
    return bool(getattr(user, "is_authenticated", False)) and (user.is_superuser or is_manager(user))



def console_teams(user) -> QuerySet[Team]:
    """The teams a manager's console shows: the teams they manage (every team for a superuser)."""
    if user.is_superuser:
        return Team.objects.order_by("name")
    return Team.objects.filter(pk__in=managed_team_ids(user)).order_by("name")


def console_people(user) -> QuerySet:
    """The people a manager's console shows: members of their teams (everyone in a team for a superuser)."""
    people = User.objects.filter(is_active=True)
    if user.is_superuser:
        people = people.filter(Q(teams__isnull=False) | Q(grants__isnull=False))
    else:
        people = people.filter(teams__in=managed_team_ids(user))
    return people.distinct().order_by("username")


def console_roles() -> QuerySet[Group]:
    """The roles whose authority a manager sets: the agent roles and the manager role."""
    return Group.objects.filter(name__in=[Role.AGENT, Role.SENIOR_AGENT, Role.MANAGER]).order_by("name")


def grants_visible_in_console(user) -> Q:
    """Filter for grants a manager's console may show: roles, their teams, their teams' people."""
    if user.is_superuser:
        return Q()
    teams = managed_team_ids(user)
    members = Team.members.through.objects.filter(team_id__in=teams).values("user_id")
    return Q(subject_role__isnull=False) | Q(subject_team_id__in=teams) | Q(subject_user_id__in=members)


def navigation_for(user) -> list[tuple[str, str]]:
    """Return (label, url name) pairs of the sections this user may open."""
    items = [("My authority", "authority:mine")]
    roles = roles_of(user)
    if roles & {Role.AGENT, Role.SENIOR_AGENT, Role.MANAGER} or user.is_superuser:
        items.insert(0, ("Cases", "cases:list"))
    if may_use_manager_console(user):
        items += [("Approvals", "authority:approvals"), ("Manager console", "authority:matrix")]
    if may_use_auditor_console(user):
        items += [("Auditor console", "audit:decisions"), ("Audit log", "audit:log")]
    return items
