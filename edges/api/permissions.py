"""Thin adapters from DRF to authority.policy: who may see which rows, and which endpoints.

Lists are filtered by queryset, never by a per-object loop; an object outside a caller's queryset
is a 404. Whether an action is allowed on an object is the service's answer (through the policy),
not the view's.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from rest_framework.permissions import BasePermission

from authority import policy
from authority.models import Grant
from authority.policy.grants import own_authority_q
from h2h_core.models import Case, Team

User = get_user_model()


def is_auditor_or_superuser(user) -> bool:
    return bool(user.is_superuser or policy.is_auditor(user))


def cases_visible_to(user) -> QuerySet[Case]:
    return policy.cases_visible_to(user)


def grants_visible_to(user) -> QuerySet[Grant]:
    """Auditors see every grant; managers those of their teams, their members and the roles; others their own.

    "Their own" means every grant that can speak for them: personal, their teams' and their roles'.
    A manager also sees every pending change they may check (`policy.pending_changes_checkable_by`):
    any other manager is a valid checker, whichever team the change is for.
    """
    if is_auditor_or_superuser(user):
        return Grant.objects.all()
    visible = own_authority_q(user)
    if policy.is_manager(user):
        teams = policy.managed_team_ids(user)
        members = Team.members.through.objects.filter(team_id__in=teams).values("user_id")
        visible |= Q(subject_team_id__in=teams) | Q(subject_user_id__in=members) | Q(subject_role__isnull=False)
        visible |= Q(pk__in=policy.pending_changes_checkable_by(user).values("pk"))
    return Grant.objects.filter(visible)


class IsAuditor(BasePermission):
    """The audit log is for auditors (and superusers) only."""

    message = "Only auditors read the audit log."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and is_auditor_or_superuser(request.user))


class MayOpenCases(BasePermission):
    """Asks the rule the intake service enforces, so a refusal comes before any input is read."""

    message = "Only people who work cases (or an integration account allowed to add cases) open cases."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and policy.may_open_cases(request.user))


__all__ = [
    "IsAuditor",
    "MayOpenCases",
    "cases_visible_to",
    "grants_visible_to",
]
