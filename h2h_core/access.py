"""Roles, case visibility and the case rules: one predicate per rule, each returning its reason.

h2h_core needs these itself (the case services enforce them under the case's row lock);
`authority.policy` re-exports them, so there is one place to ask "may this person…". Views,
serializers, templates and viewflow's node hooks ask the same predicates what to show.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from .case_views import parse_view_version, view_changes, view_parts
from .errors import CaseNotOpen, DomainError, NotAllowed, NotCaseOwner, StaleView
from .models import Case, CaseStatus, Customer, Role, Team
from .models.cases import OPEN_STATUSES
from .prepared import Bound, PreparedQuery, joining


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
        cached = frozenset(name for (name,) in _ROLE_NAMES.rows(user_id=user.pk))
        user._h2h_roles = cached
    return cached


def roles_known(user, names: Iterable[str]) -> None:
    """Remember the user's role names, read along with the user: `roles_of` then asks the database nothing."""
    user._h2h_roles = frozenset(names)


def _role_names(shape, *, user_id: int) -> QuerySet:
    from django.contrib.auth import get_user_model

    return get_user_model()(pk=user_id).groups.values_list("name", flat=True)


# Asked on almost every request: compiled once (h2h_core.prepared).
_ROLE_NAMES = PreparedQuery(_role_names, ints=("user_id",))


def is_manager(user) -> bool:
    return Role.MANAGER in roles_of(user)


def is_auditor(user) -> bool:
    return Role.AUDITOR in roles_of(user)


def is_agent(user) -> bool:
    """Anyone who owns cases and decides on them: people, and AI agents."""
    return bool({Role.AGENT, Role.SENIOR_AGENT, Role.AI_AGENT} & roles_of(user))


def is_human_agent(user) -> bool:
    return bool({Role.AGENT, Role.SENIOR_AGENT} & roles_of(user))


def is_ai_agent(user) -> bool:
    return Role.AI_AGENT in roles_of(user)


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


def case_visible_to(user, pk: int, *, related: tuple[str, ...] = ()) -> Case | None:
    """Return case `pk` (with `related` loaded) if `user` may see it, else None: `cases_visible_to`, first row.

    Run from SQL compiled once per kind of viewer (superuser or not, roles), since building and
    compiling the queryset cost more than running it. A manager's visibility names their teams, so
    it is built afresh for them.
    """
    read = case_visible_read(user, pk, related=related)
    if read is None:
        return joining(cases_visible_to(user), related).filter(pk=pk).first()
    return read.first()


def case_visible_read(user, pk: int, *, related: tuple[str, ...] = ()) -> Bound | None:
    """`case_visible_to`'s read, not yet run, to be sent with others (h2h_core.prepared.read_together);
    None for a viewer whose visibility is built afresh (a manager, or no one signed in)."""
    if not getattr(user, "is_authenticated", False) or is_manager(user):
        return None
    return _CASE_VISIBLE.bound(shape=(bool(user.is_superuser), roles_of(user), related), user_id=user.pk, pk=pk)


def _case_visible(shape, *, user_id: int, pk: int) -> QuerySet[Case]:
    from django.contrib.auth import get_user_model

    is_superuser, roles, related = shape
    # A viewer like the caller in all that visibility reads: id, superuser flag, roles.
    viewer = get_user_model()(pk=user_id, is_superuser=is_superuser)
    viewer._h2h_roles = roles
    queryset = joining(cases_visible_to(viewer), related).filter(pk=pk)
    return (queryset if queryset.ordered else queryset.order_by("pk"))[:1]  # as QuerySet.first()


# Whoever sees every case sees it whoever they are: no user id in that SQL.
_CASE_VISIBLE = PreparedQuery(_case_visible, ints=("user_id", "pk"), unused_in_some_shapes=("user_id",))


def may_view_case(user, case: Case) -> Permission:
    if cases_visible_to(user).filter(pk=case.pk).exists():
        return ALLOWED
    return Permission.deny("You cannot see this case.")


def customers_visible_to(user) -> QuerySet[Customer]:
    """Whoever may see one of a customer's cases sees the customer (and, through the selectors,
    only those of their cases and decisions)."""
    return Customer.objects.filter(Exists(cases_visible_to(user).filter(customer_id=OuterRef("pk"))))


def may_view_customer(user, customer) -> Permission:
    if customers_visible_to(user).filter(pk=customer.pk).exists():
        return ALLOWED
    return Permission.deny("You cannot see this customer.")


def may_add_customer_note(user, customer) -> Permission:
    """Agents and managers who may see the customer write internal notes; auditors only read."""
    if not (_authenticated(user) and (is_agent(user) or is_manager(user))):
        return Permission.deny("Only agents and managers add notes on a customer.")
    return may_view_customer(user, customer)


def is_team_member(user, team_id: int | None) -> bool:
    return bool(team_id) and bool(_MEMBERSHIP.rows(team_id=team_id, user_id=user.pk))


# Asked by every claim and hand-over: compiled once per process.
_MEMBERSHIP = PreparedQuery(
    lambda shape, *, team_id, user_id: Team.members.through.objects.filter(team_id=team_id, user_id=user_id)
    .values_list("pk", flat=True)[:1],
    ints=("team_id", "user_id"))


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


def may_act_on_view(case: Case, seen_version: str | None) -> Permission:
    """A submit acts on the state its page showed: refused, saying what changed, when the case moved on.

    `seen_version` is `h2h_core.case_views.case_view_version` as the page rendered it; None (an API
    caller that sends none) is not checked. Ask it under the case's row lock, with the locked case.
    """
    if seen_version is None:
        return ALLOWED
    seen = parse_view_version(seen_version)
    if seen is None or seen.case_id != case.pk:
        return Permission.deny(f"The page of {case.reference} you acted on could not be verified: "
                               "reload the case and try again.", StaleView)
    changes = view_changes(seen, view_parts(case))
    if changes:
        return Permission.deny("Since you opened this case: " + "; ".join(changes)
                               + ". Nothing was changed: check the case as it is now and act again.", StaleView)
    return ALLOWED


def may_use_auditor_console(user) -> Permission:
    """Auditors and superusers: they read everything, export evidence and verify the audit chain."""
    if getattr(user, "is_authenticated", False) and (user.is_superuser or is_auditor(user)):
        return Permission.allow()
    return Permission.deny("Only auditors read the audit log, export evidence and verify the chain.")


def may_open_cases(user) -> Permission:
    """People who work cases open them (agents, managers); so does an integration account given
    the `h2h_core.add_case` permission. The system (the seed, an import: no user) always may."""
    if user is None:
        return ALLOWED
    if _authenticated(user) and (user.is_superuser or is_agent(user) or is_manager(user)
                                 or user.has_perm("h2h_core.add_case")):
        return ALLOWED
    return Permission.deny("Only people who work cases (or an integration account allowed to add cases) open cases.")


def may_share_rating_link(user, case: Case) -> Permission:
    """The owner, or a manager of the case's team, hands the customer the rating link of a resolved,
    unrated case."""
    if case.status != CaseStatus.RESOLVED or case.rating is not None:
        return Permission.deny(f"{case.reference} is not waiting for a rating.", CaseNotOpen)
    if not _authenticated(user) or (case.owner_id != user.pk and case.team_id not in managed_team_ids(user)):
        return Permission.deny(f"Only the owner of {case.reference} or its team's manager shares its rating link.")
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


# --- accounts: roles, flags, passwords, API tokens ------------------------------------------


def _is_self(actor, user) -> bool:
    return actor is not None and user is not None and actor.pk is not None and actor.pk == user.pk


def may_administer_accounts(actor) -> Permission:
    """Return whether `actor` manages people's accounts at all (the system always does)."""
    if actor is None:
        return ALLOWED
    if not (getattr(actor, "is_active", False) and getattr(actor, "is_staff", False)):
        return Permission.deny("Only administrators manage people's accounts.")
    if actor.is_superuser or actor.has_perm("auth.change_user"):
        return ALLOWED
    return Permission.deny("You may not change people's accounts.")


def may_change_account(actor, user) -> Permission:
    """Return whether `actor` may change `user`'s account; a superuser's only by a superuser."""
    allowed = may_administer_accounts(actor)
    if allowed and actor is not None and user.is_superuser and not actor.is_superuser:
        return Permission.deny("Only a superuser changes a superuser's account.")
    return allowed


def may_set_roles(actor, user) -> Permission:
    if _is_self(actor, user):
        return Permission.deny("Nobody changes their own roles.")
    return may_change_account(actor, user)


def may_set_flags(actor, user, changed: Iterable[str]) -> Permission:
    """Return whether `actor` may change these of `user`'s flags (active, staff, superuser)."""
    if _is_self(actor, user):
        return Permission.deny("Nobody changes their own active, staff or superuser status.")
    allowed = may_change_account(actor, user)
    if allowed and actor is not None and not actor.is_superuser and {"is_staff", "is_superuser"} & set(changed):
        return Permission.deny("Only a superuser grants or removes staff or superuser status.")
    return allowed


def may_grant_flags(actor, *, is_staff: bool, is_superuser: bool) -> Permission:
    """Return whether `actor` may create an account with these flags."""
    allowed = may_administer_accounts(actor)
    if allowed and actor is not None and not actor.is_superuser and (is_staff or is_superuser):
        return Permission.deny("Only a superuser grants staff or superuser status.")
    return allowed


def may_set_password(actor, user) -> Permission:
    """Everyone sets their own password; administrators set others' (a superuser's only a superuser)."""
    if _is_self(actor, user):
        return ALLOWED
    return may_change_account(actor, user)


def may_manage_api_token(actor, user) -> Permission:
    """A person issues and revokes their own API token; administrators revoke anyone's."""
    if _is_self(actor, user):
        return ALLOWED
    return may_change_account(actor, user)
