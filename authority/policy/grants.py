"""Who may set, change, end, confirm and reject authority: maker-checker (rule 6), one predicate each.

The grant services enforce these under their row locks; the manager console, the API and the admin
ask the same predicates (and the one selector below) what to list and which controls to offer.
"Own authority" is defined once, in `own_authority`: the person themselves, every team they are a
**member** of (managing a team is not membership), every role they hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from authority.models import Effect, Grant, GrantStatus
from h2h_core.access import ALLOWED, Permission, is_manager, managed_team_ids
from h2h_core.errors import AlreadyDecided
from h2h_core.models import Team

User = get_user_model()

NOT_PENDING = {
    GrantStatus.ACTIVE: "was confirmed already",
    GrantStatus.REJECTED: "was rejected already",
    GrantStatus.VOIDED: "was voided when its grant was ended",
}


@dataclass(frozen=True)
class OwnAuthority:
    """The subjects whose grants speak for one person: nobody changes or checks authority of these."""

    user_id: int | None
    team_ids: frozenset[int]
    role_ids: frozenset[int]

    def covers(self, *, user_id: int | None = None, team_id: int | None = None, role_id: int | None = None) -> bool:
        """True when a grant to this subject would change this person's own authority."""
        if user_id is not None:
            return user_id == self.user_id
        if team_id is not None:
            return team_id in self.team_ids
        return role_id is not None and role_id in self.role_ids

    def covers_grant(self, grant: Grant) -> bool:
        return self.covers(user_id=grant.subject_user_id, team_id=grant.subject_team_id,
                           role_id=grant.subject_role_id)


def _teams_of(user) -> QuerySet:
    """The teams `user` is a member of (managing a team is not membership)."""
    return Team.members.through.objects.filter(user_id=user.pk).values_list("team_id", flat=True)


def _roles_held_by(user) -> QuerySet:
    return User.groups.through.objects.filter(user_id=user.pk).values_list("group_id", flat=True)


def own_authority(user) -> OwnAuthority:
    """Return whose grants count as `user`'s own authority, read now (two queries), for per-grant checks."""
    if not getattr(user, "is_authenticated", False):
        return OwnAuthority(None, frozenset(), frozenset())
    return OwnAuthority(user.pk, frozenset(_teams_of(user)), frozenset(_roles_held_by(user)))


def own_authority_q(user) -> Q:
    """The same rule as a filter on grants (subqueries, no query of its own), for querysets."""
    return Q(subject_user_id=user.pk) | Q(subject_team_id__in=_teams_of(user)) | Q(
        subject_role_id__in=_roles_held_by(user))


def own_lines(user) -> dict[str, set[int]]:
    """Return the matrix lines that are `user`'s own authority, by kind of subject (see `own_authority`)."""
    own = own_authority(user)
    return {"user": {own.user_id} if own.user_id else set(), "team": set(own.team_ids), "role": set(own.role_ids)}


def may_grant(actor, *, user=None, team: Team | None = None, role=None,
              own: OwnAuthority | None = None) -> Permission:
    """Managers set authority for their teams and their members; nobody for themselves (rule 6)."""
    own = own or own_authority(actor)
    if own.covers(user_id=getattr(user, "pk", None), team_id=getattr(team, "pk", None),
                  role_id=getattr(role, "pk", None)):
        return Permission.deny("Nobody changes their own authority: ask another manager.")
    if actor.is_superuser:
        return ALLOWED
    if not is_manager(actor):
        return Permission.deny("Only managers set authority.")
    teams = managed_team_ids(actor)
    if user is not None and not Team.members.through.objects.filter(user_id=user.pk, team_id__in=teams).exists():
        return Permission.deny(f"{user.get_username()} is not in a team you manage.")
    if team is not None and team.pk not in teams:
        return Permission.deny(f"You do not manage {team.name}.")
    return ALLOWED


def grant_changeable(grant: Grant) -> Permission:
    """A change applies to the current version of a standing grant, one pending change at a time.

    Only a *pending* change blocks the next one: a rejected or voided proposal leaves the grant
    changeable. One query (the pending change) when the version itself is current.
    """
    if grant.case_id:
        return Permission.deny(f"Grant {grant.label} is a one-off grant: it is never changed.", AlreadyDecided)
    if grant.status != GrantStatus.ACTIVE or grant.superseded_at is not None:
        return Permission.deny(f"Grant {grant.label} is no longer the current version.", AlreadyDecided)
    if Grant.objects.filter(supersedes_id=grant.pk, status=GrantStatus.PENDING).exists():
        return Permission.deny(f"A change to grant {grant.label} is already waiting for confirmation.",
                               AlreadyDecided)
    return ALLOWED


def shadow_terms_allowed(*, shadow: bool, effect: str, one_off: bool = False) -> Permission:
    """A shadow (log-only) grant is a standing permit: never a suspension, never a one-off grant.

    A shadow grant only records what its holder would have decided; a suspension must forbid for
    real, and a one-off grant exists to let one decision execute.
    """
    if not shadow:
        return ALLOWED
    if effect != Effect.PERMIT:
        return Permission.deny("A suspension cannot be shadow: it forbids for real. Untick \"Shadow\".")
    if one_off:
        return Permission.deny("A one-off grant cannot be shadow: it exists to let one decision execute.")
    return ALLOWED


SHADOW_FLIPS = {(True, False): "promotion", (False, True): "demotion"}


def shadow_flip(*, before: Grant | None, shadow: bool) -> str:
    """Name what a change does to a grant's mode: "promotion" (shadow to live), "demotion" (live to
    shadow), or "" (no flip, or a new grant). A flip always waits for a second manager, whatever the
    kind's confirmation threshold: it changes what the holder's decisions do, not how much."""
    if before is None:
        return ""
    return SHADOW_FLIPS.get((bool(before.shadow), bool(shadow)), "")


def grant_endable(grant: Grant) -> Permission:
    """Only a version that is (or will be) in force can be ended; a pending one is rejected instead."""
    if grant.superseded_at is not None:
        return Permission.deny(f"Grant {grant.label} has already ended.", AlreadyDecided)
    if grant.status != GrantStatus.ACTIVE:
        return Permission.deny(f"Grant {grant.label} is {grant.get_status_display().lower()}, not in force: "
                               "there is nothing to end.", AlreadyDecided)
    return ALLOWED


def may_check(checker, grant: Grant, *, own: OwnAuthority | None = None) -> Permission:
    """Return whether `checker` may confirm or reject the pending `grant`, and why not.

    Four eyes: any manager (or superuser) other than the maker, unless the change touches the
    checker's own authority. The checker need not manage the subject's team.
    """
    if grant.status != GrantStatus.PENDING:
        return Permission.deny(f"Grant {grant.label} {NOT_PENDING.get(grant.status, 'is not pending')}.",
                               AlreadyDecided)
    if grant.granted_by_id is not None and grant.granted_by_id == checker.pk:
        return Permission.deny("The maker of a change cannot also confirm it: a second manager must.")
    if (own or own_authority(checker)).covers_grant(grant):
        return Permission.deny("Nobody changes their own authority, nor confirms a change to it.")
    if not (checker.is_superuser or is_manager(checker)):
        return Permission.deny("Only managers confirm authority changes.")
    return ALLOWED


def may_confirm(checker, grant: Grant, *, own: OwnAuthority | None = None) -> Permission:
    """Return whether `checker` may confirm the pending `grant` now, and why not.

    Beyond `may_check`: a change replaces a version still in force. Once that version has ended
    (or was replaced), confirming would bring back authority that was withdrawn. Reads
    `grant.supersedes` as loaded: the service passes it locked.
    """
    permission = may_check(checker, grant, own=own)
    if not permission:
        return permission
    previous = grant.supersedes if grant.supersedes_id else None
    if previous is not None and (previous.status != GrantStatus.ACTIVE or previous.superseded_at is not None):
        return Permission.deny(
            f"Grant {previous.label}, which this change would replace, has ended: confirming the change would "
            "bring back authority that was withdrawn. Propose a new grant instead.", AlreadyDecided)
    return ALLOWED


def pending_changes_checkable_by(user) -> QuerySet[Grant]:
    """The pending grant changes `user` may confirm or reject: the queryset form of `may_check`."""
    if not getattr(user, "is_authenticated", False) or not (user.is_superuser or is_manager(user)):
        return Grant.objects.none()
    return (Grant.objects.filter(status=GrantStatus.PENDING)
            .exclude(granted_by_id=user.pk)
            .exclude(own_authority_q(user)))
