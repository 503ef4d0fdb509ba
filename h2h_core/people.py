"""Every write about people and their access: accounts, roles, flags, passwords, teams, sign-ins, API tokens.

The admin, the API, the seed and commands call these; each writes its audit event in the same
transaction as the change. The rules are predicates (`may_…`, returning `access.Permission`) that
the services enforce on the stored state of the account and that an edge may ask what to offer:

- nobody changes their own roles or their own active, staff or superuser flags;
- only a superuser grants or removes staff or superuser status, and only a superuser changes
  anything of a superuser's account (a staff member could otherwise take it over);
- managing accounts at all needs an active staff member with the `auth.change_user` permission
  (the system, `actor=None`, is the seed or a command).

Passwords and API tokens never reach the audit log: an event says that a password was set (or
disabled) and names a token by the first characters of its key at most.

Account rows are locked FOR NO KEY UPDATE, never FOR UPDATE: the foreign-key checks other writers
make on users (KEY SHARE, see `h2h_core.lock_objects`) never wait for them.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.views.decorators.debug import sensitive_variables
from guardian.shortcuts import assign_perm

from . import lock_objects
from .access import (
    may_administer_accounts,
    may_change_account,
    may_grant_flags,
    may_set_flags,
    may_set_password,
    may_set_roles,
)

# The API token services have their own module; callers of the account services find them here too.
from .api_tokens import api_token_issue, api_token_revoke, token_prefix  # noqa: F401
from .audit import audit_record
from .audit.refusals import audits_refusals
from .errors import DomainError
from .models import AuditEvent, Team
from .models.audit import Outcome
from .transactions import service_atomic

User = get_user_model()

FLAGS = ("is_active", "is_staff", "is_superuser")
PROFILE_FIELDS = ("username", "first_name", "last_name", "email")
# Personal data: the audit log names which of these changed, never their values.
PRIVATE_PROFILE_FIELDS = ("first_name", "last_name", "email")
USERNAME_LOGGED_MAX = 150


def _user_of(kwargs: dict):
    return kwargs.get("user")


def _locked_user(user):
    """Return the stored account, locked against other account changes (not against foreign-key checks)."""
    return lock_objects.user_qs_select_for_update().get(pk=user.pk)


# --- accounts --------------------------------------------------------------------------------


def _groups(roles: Iterable[str]) -> list[Group]:
    return [Group.objects.get_or_create(name=role)[0] for role in sorted(set(roles))]


def _flags(user) -> dict[str, bool]:
    return {flag: bool(getattr(user, flag)) for flag in FLAGS}


@sensitive_variables("password")
@audits_refusals("user.create", object_type="user")
def user_create(
    *,
    actor,
    username: str,
    password: str | None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_active: bool = True,
    is_staff: bool = False,
    is_superuser: bool = False,
    roles: Iterable[str] = (),
):
    """Create an account; `password=None` creates one that cannot log in with a password."""
    may_grant_flags(actor, is_staff=is_staff, is_superuser=is_superuser).require()
    user = User(username=username, email=email, first_name=first_name, last_name=last_name,
                is_active=is_active, is_staff=is_staff, is_superuser=is_superuser)
    if password is None:
        user.set_unusable_password()
    else:
        password_validation.validate_password(password, user)
        user.set_password(password)
    user.full_clean(exclude=["password", "last_login"])
    roles = sorted(set(roles))
    with service_atomic():
        user.save()
        if roles:
            user.groups.set(_groups(roles))
        audit_record(actor=actor, action="user.created", object_type="user", object_id=user.pk,
                     after={"username": user.username, **_flags(user), "roles": roles,
                            "password": "set" if password is not None else "unusable",
                            "profile": [field for field in PRIVATE_PROFILE_FIELDS if getattr(user, field)]})
    return user


@audits_refusals("user.profile_change", object_type="user", object_from=_user_of)
def user_set_profile(
    *,
    actor,
    user,
    username: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    email: str | None = None,
) -> list[str]:
    """Change the account's name fields; return the fields that changed (none: nothing is written).

    The audit event keeps the user name before and after, and only the names of the other fields.
    """
    wanted = {"username": username, "first_name": first_name, "last_name": last_name, "email": email}
    with service_atomic():
        current = _locked_user(user)
        changed = [field for field, value in wanted.items() if value is not None and value != getattr(current, field)]
        if not changed:
            return []
        may_change_account(actor, current).require()
        before_username = current.username
        for field in changed:
            setattr(current, field, wanted[field])
        current.full_clean(exclude=[field.name for field in User._meta.fields if field.name not in changed])
        current.save(update_fields=changed)
        before, after = {"changed": changed}, {"changed": changed}
        if "username" in changed:
            before["username"], after["username"] = before_username, current.username
        audit_record(actor=actor, action="user.profile_changed", object_type="user", object_id=current.pk,
                     before=before, after=after)
    return changed


@audits_refusals("user.flags_change", object_type="user", object_from=_user_of)
def user_set_flags(
    *,
    actor,
    user,
    is_active: bool | None = None,
    is_staff: bool | None = None,
    is_superuser: bool | None = None,
) -> dict[str, bool]:
    """Set the account's active, staff and superuser flags; return those that changed.

    Nobody changes their own; only a superuser grants or removes staff or superuser status.
    """
    wanted = {"is_active": is_active, "is_staff": is_staff, "is_superuser": is_superuser}
    with service_atomic():
        current = _locked_user(user)
        before = _flags(current)
        changed = {flag: bool(value) for flag, value in wanted.items()
                   if value is not None and bool(value) != before[flag]}
        if not changed:
            return {}
        may_set_flags(actor, current, changed).require()
        for flag, value in changed.items():
            setattr(current, flag, value)
        current.save(update_fields=list(changed))
        audit_record(actor=actor, action="user.flags_changed", object_type="user", object_id=current.pk,
                     before=before, after=_flags(current))
    return changed


@audits_refusals("user.roles_change", object_type="user", object_from=_user_of)
def user_set_roles(*, actor, user, roles: Iterable[str]) -> bool:
    """Replace the user's roles (Django groups); return whether they changed. Nobody changes their own."""
    roles = sorted(set(roles))
    with service_atomic():
        current = _locked_user(user)
        before = sorted(current.groups.values_list("name", flat=True))
        if before == roles:
            return False
        may_set_roles(actor, current).require()
        current.groups.set(_groups(roles))
        for changed in (user, current):  # the roles remembered on them for the request are no longer theirs
            changed.__dict__.pop("_h2h_roles", None)
        audit_record(actor=actor, action="user.roles_changed", object_type="user", object_id=current.pk,
                     before=before, after=roles)
    return True


@audits_refusals("user.update", object_type="user", object_from=_user_of)
def user_account_update(
    *,
    actor,
    user,
    profile: dict[str, str] | None = None,
    flags: dict[str, bool] | None = None,
    roles: Iterable[str] | None = None,
) -> bool:
    """Apply an account form (name fields, flags, roles) all or nothing; return whether anything changed.

    Each part is written and audited by its own service; a refusal of any part changes nothing.
    """
    with service_atomic():
        changed = bool(user_set_profile(actor=actor, user=user, **(profile or {})))
        changed = bool(user_set_flags(actor=actor, user=user, **(flags or {}))) or changed
        if roles is not None:
            changed = user_set_roles(actor=actor, user=user, roles=roles) or changed
    return changed


@sensitive_variables("password")
@audits_refusals("user.password_change", object_type="user", object_from=_user_of)
def user_set_password(*, actor, user, password: str | None) -> None:
    """Set the user's password, or disable password login with `password=None`.

    The audit event says that the password was changed; neither the password nor its hash is kept.
    """
    if password is not None:
        password_validation.validate_password(password, user)
    with service_atomic():
        current = _locked_user(user)
        may_set_password(actor, current).require()
        if password is None:
            current.set_unusable_password()
        else:
            current.set_password(password)
        current.save(update_fields=["password"])
        audit_record(actor=actor, action="user.password_changed", object_type="user", object_id=current.pk,
                     after={"password": "set" if password is not None else "unusable"})
    user.password = current.password  # the caller's object keeps working (session auth hash)


def user_refusal_record(*, actor, user, action: str, error: DomainError) -> AuditEvent:
    """Record a refused account change in the caller's transaction, after the change was rolled back.

    For an edge that runs the services inside its own transaction (the admin): the refused services
    leave the recording to their outermost caller, and there the edge is the outermost caller.
    """
    with service_atomic():
        return audit_record(actor=actor, action=f"{action}.refused", object_type="user",
                            object_id=getattr(user, "pk", None) or "", outcome=Outcome.DENIED,
                            after={"error": error.code}, reason=error.message)


# --- teams -----------------------------------------------------------------------------------


def team_create(*, actor, name: str, slug: str) -> Team:
    with service_atomic():
        team = Team.objects.create(name=name, slug=slug)
        audit_record(actor=actor, action="team.created", object_type="team", object_id=team.pk,
                     after={"name": name, "slug": slug})
    return team


def team_add_member(*, actor, team: Team, user) -> None:
    with service_atomic():
        team.members.add(user)
        audit_record(actor=actor, action="team.member_added", object_type="team", object_id=team.pk,
                     after={"user_id": user.pk})


def team_add_manager(*, actor, team: Team, user) -> None:
    """Make `user` a manager of `team`: the object permission that puts them in its approver pool."""
    with service_atomic():
        assign_perm("h2h_core.manage_team", user, team)
        audit_record(actor=actor, action="team.manager_added", object_type="team", object_id=team.pk,
                     after={"user_id": user.pk})


# --- signing in ------------------------------------------------------------------------------

AUTH_EVENTS = {
    # event: (action, outcome)
    "login": ("auth.logged_in", Outcome.SUCCESS),
    "login_failed": ("auth.login_failed", Outcome.DENIED),
    "locked_out": ("auth.locked_out", Outcome.DENIED),
    "logout": ("auth.logged_out", Outcome.SUCCESS),
}


def _username_tried(username) -> str:
    # Whatever was typed, as text a JSON column stores on every database (no NUL), and not too long.
    return str(username or "").replace("\x00", "")[:USERNAME_LOGGED_MAX]


def auth_event_record(*, event: str, user=None, username: str = "", path: str = "") -> AuditEvent:
    """Record a sign-in event: a login, a failed login, a lockout or a logout, with the request's IP and id.

    `user` is the account signing in or out when it is known; for a failed login or a lockout,
    `username` is what was typed (never the password). The event joins the caller's transaction
    when there is one, so it also works for code that authenticates inside a transaction.
    """
    action, outcome = AUTH_EVENTS[event]
    tried = _username_tried(username or (user.get_username() if user is not None else ""))
    if user is None and tried:
        user = User.objects.filter(**{User.USERNAME_FIELD: tried}).first()
    actor = user if outcome == Outcome.SUCCESS else None  # a failure is nobody's act but the caller's IP
    with service_atomic():
        return audit_record(actor=actor, action=action, object_type="user",
                            object_id=user.pk if user is not None else "", outcome=outcome,
                            after={"username": tried, "path": str(path)[:200]})


@audits_refusals("auth.lockout_clear", object_type="user")
def login_lockout_clear(*, actor, username: str) -> int:
    """Lift the lockout of a username after too many failed logins; return the attempts removed."""
    from axes.utils import reset

    may_administer_accounts(actor).require()
    user_id = User.objects.filter(**{User.USERNAME_FIELD: username}).values_list("pk", flat=True).first()
    with service_atomic():
        removed = reset(username=username)
        audit_record(actor=actor, action="auth.lockout_cleared", object_type="user", object_id=user_id or "",
                     after={"username": _username_tried(username), "attempts": removed})
    return removed
