"""Who may act on a case's workflow tasks: thin adapters over the roles and teams in the policy.

Viewflow asks these through its node hooks (can_assign, can_unassign, can_execute); the workflow
services ask viewflow in turn, because a transition called from code checks nothing by itself.
The case services enforce the same rules again under the case's row lock.
"""

from __future__ import annotations

from authority import policy
from authority.policy import permissions as policy_permissions
from h2h_core.models import Case, CaseStatus, Team


def is_team_member(user, team_id: int | None) -> bool:
    return bool(team_id) and Team.members.through.objects.filter(team_id=team_id, user_id=user.pk).exists()


def may_claim(user, case: Case) -> bool:
    """An agent of the case's team may claim it while it waits in the queue."""
    return (
        getattr(user, "is_authenticated", False)
        and case.status in (CaseStatus.NEW, CaseStatus.QUEUED)
        and policy_permissions.is_agent(user)
        and is_team_member(user, case.team_id)
    )


def may_hand_over(user, case: Case) -> bool:
    """The owner, or a manager of the case's team, may pass the case on."""
    return getattr(user, "is_authenticated", False) and case.is_open and (
        case.owner_id == user.pk or case.team_id in policy.managed_team_ids(user)
    )


def may_resolve(user, case: Case) -> bool:
    return getattr(user, "is_authenticated", False) and case.is_open and case.owner_id == user.pk


def may_reopen(user, case: Case) -> bool:
    """The last owner, or a manager of the case's team, may reopen a resolved or closed case."""
    return getattr(user, "is_authenticated", False) and not case.is_open and (
        case.owner_id == user.pk or case.team_id in policy.managed_team_ids(user)
    )
