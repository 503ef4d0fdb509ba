"""Who may see and do what. Lists are filtered by queryset, never by a per-object loop."""

from __future__ import annotations

from h2h_core.access import (  # noqa: F401  (re-exported: the one place to ask)
    cases_visible_to,
    is_agent,
    is_auditor,
    is_manager,
    managed_team_ids,
    may_manage_user,
    may_view_case,
    roles_of,
)
from h2h_core.models import Role


def navigation_for(user) -> list[tuple[str, str]]:
    """Return (label, url name) pairs of the sections this user may open."""
    items = [("My authority", "authority:mine")]
    roles = roles_of(user)
    if roles & {Role.AGENT, Role.SENIOR_AGENT, Role.MANAGER} or user.is_superuser:
        items.insert(0, ("Cases", "cases:list"))
    if Role.MANAGER in roles or user.is_superuser:
        items.append(("Approvals", "authority:approvals"))
        items.append(("Pending grants", "authority:pending"))
    if Role.AUDITOR in roles or user.is_superuser:
        items.append(("Audit log", "audit:log"))
    return items
