"""API tokens: issue, authenticate, list, revoke, purge. The account services of `h2h_core.people`, for the API.

A token is 256 random bits, shown once when it is issued; the database keeps its SHA-256 digest
and its first characters (`ApiToken.prefix`: what the owner, the admin and the audit log see). It
opens the API until it expires (`H2H_API_TOKEN_DAYS`), is revoked, or its user's password changes:
the token keeps a keyed fingerprint of the password hash it was issued under, so every way of
changing a password (the services, the admin, `manage.py changepassword`, a shell) ends it, with
nothing to remember. A rehash of the same password (Django upgrading its hasher at the next login)
ends it too, as it ends that user's other sessions.

A person issues and revokes their own tokens; administrators revoke anyone's
(`h2h_core.access.may_manage_api_token`). Issuing and revoking are audited; the key never is.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.decorators.debug import sensitive_variables

from . import lock_objects
from .access import ALLOWED, Permission, may_manage_api_token, roles_known
from .audit import audit_record
from .audit.refusals import audits_refusals
from .errors import DomainError
from .jobs import task
from .models import ApiToken
from .models.tokens import TOKEN_PREFIX_LENGTH, token_digest
from .prepared import PreparedQuery
from .transactions import service_atomic

User = get_user_model()

_FINGERPRINT_SALT = "h2h_core.api_tokens.password"
# An issued key has 43 characters; longer text is refused before it is hashed or looked up.
KEY_MAX_LENGTH = 100


class ApiTokenRejected(DomainError):
    """The token does not open the API: unknown or revoked (and the subclasses say why else)."""

    code = "authentication_failed"
    status = 401


class ApiTokenExpired(ApiTokenRejected):
    code = "token_expired"


class ApiTokenPasswordChanged(ApiTokenRejected):
    code = "token_password_changed"


class ApiTokenUserInactive(ApiTokenRejected):
    code = "user_inactive"


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued, with its key: the only time the key exists outside the client."""

    token: ApiToken
    key: str


def _user_of(kwargs: dict):
    return kwargs.get("user")


def token_prefix(key: str) -> str:
    """Return what the audit log may keep of a token: the first few characters of its key."""
    return key[:TOKEN_PREFIX_LENGTH]


def _password_fingerprint(password_hash: str, secret: str | None = None) -> str:
    return salted_hmac(_FINGERPRINT_SALT, password_hash, secret=secret, algorithm="sha256").hexdigest()


def _issued_under_current_password(token: ApiToken) -> bool:
    # Keyed like Django's session hash, and like it valid across a SECRET_KEY rotation through the fallbacks.
    password_hash = token.user.password or ""
    return any(constant_time_compare(token.password_fingerprint, _password_fingerprint(password_hash, secret))
               for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS))


def api_token_usable(token: ApiToken, *, at) -> Permission:
    """Return whether `token` opens the API at `at`: not expired, issued under the current password, user active."""
    if token.expires_at <= at:
        return Permission.deny(f"This API token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC; "
                               "ask for a new one with your username and password.", ApiTokenExpired)
    if not _issued_under_current_password(token):
        return Permission.deny("This API token stopped working when the account's password changed; "
                               "ask for a new one with your username and password.", ApiTokenPasswordChanged)
    if not token.user.is_active:
        return Permission.deny("This account is deactivated.", ApiTokenUserInactive)
    return ALLOWED


def api_token_state(token: ApiToken, *, at) -> str:
    """Return `active`, or the code of what stops the token from working."""
    usable = api_token_usable(token, at=at)
    return "active" if usable else usable.error.code


def _token_with_roles(shape, *, digest: str) -> QuerySet[ApiToken]:
    # The user joined, and the user's role names, one row per role: nearly every request asks for them next.
    return (ApiToken.objects.select_related("user").filter(digest=digest)
            .annotate(role_name=F("user__groups__name")).order_by("pk"))


# Read by every API request: compiled once per process (h2h_core.prepared).
_TOKEN_WITH_ROLES = PreparedQuery(_token_with_roles, texts=("digest",))


def api_token_authenticate(*, key: str) -> ApiToken:
    """Return the usable token with this key, its user joined; raise ApiTokenRejected with the reason otherwise."""
    rows = _TOKEN_WITH_ROLES.all(digest=token_digest(key)) if 0 < len(key) <= KEY_MAX_LENGTH else []
    if not rows:
        raise ApiTokenRejected("Invalid token.")
    token = rows[0]  # the digest is unique: every row is this token
    roles_known(token.user, (row.role_name for row in rows if row.role_name is not None))
    api_token_usable(token, at=timezone.now()).require()
    return token


def api_tokens_of(user) -> QuerySet[ApiToken]:
    """Return the user's tokens, newest first."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-pk")


@sensitive_variables("key")
def _new_key() -> str:
    # A key is pasted after `--token` on command lines, where a leading dash reads as an option
    # (argparse refuses `--token -abc`). Redrawing the 1 in 64 such keys costs under 0.03 bits.
    while (key := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return key


@sensitive_variables("key")
def api_token_new(*, user) -> IssuedToken:
    """Return a new token for the user, not yet saved, with its key: the one way a token and its key are made."""
    key = _new_key()
    now = timezone.now()
    # The stored hash, not the caller's copy: the login that led here may just have rehashed it.
    password_hash = User.objects.filter(pk=user.pk).values_list("password", flat=True).get()
    token = ApiToken(user=user, prefix=token_prefix(key), digest=token_digest(key),
                     password_fingerprint=_password_fingerprint(password_hash or ""), created_at=now,
                     expires_at=now + timedelta(days=settings.H2H_API_TOKEN_DAYS))
    return IssuedToken(token=token, key=key)


@audits_refusals("api_token.issue", object_type="user", object_from=_user_of)
def api_token_issue(*, actor, user) -> IssuedToken:
    """Issue a new API token for the user; return it with its key, which is shown this once and never stored."""
    may_manage_api_token(actor, user).require()
    issued = api_token_new(user=user)
    token = issued.token
    with service_atomic():
        token.save(force_insert=True)
        audit_record(actor=actor, action="api_token.created", object_type="user", object_id=user.pk,
                     after={"key_prefix": token.prefix, "token_id": token.pk,
                            "expires_at": token.expires_at.isoformat()})
    return issued


@audits_refusals("api_token.revoke", object_type="user", object_from=_user_of)
def api_token_revoke(*, actor, user, token_id: int | None = None) -> int:
    """Revoke one of the user's API tokens (`token_id`), or all of them; return how many.

    Requests using them fail from now on. Each revoked token is its own audit event.
    """
    may_manage_api_token(actor, user).require()
    with service_atomic():
        tokens = lock_objects.api_token_qs_select_for_update().filter(user=user)
        if token_id is not None:
            tokens = tokens.filter(pk=token_id)
        revoked = [(token.pk, token.prefix) for token in tokens.only("pk", "prefix")]
        if not revoked:
            return 0
        ApiToken.objects.filter(pk__in=[pk for pk, _ in revoked]).delete()
        for pk, prefix in revoked:
            audit_record(actor=actor, action="api_token.revoked", object_type="user", object_id=user.pk,
                         before={"key_prefix": prefix, "token_id": pk})
    return len(revoked)


@task()
def api_tokens_purge() -> int:
    """Delete the expired API tokens; return how many. They open nothing, and their issue is on the record.

    A periodic job (daily is plenty). Run twice, or on two workers at once, it deletes each token once.
    """
    with service_atomic():
        purged, _ = ApiToken.objects.filter(expires_at__lte=timezone.now()).delete()
        if purged:
            audit_record(actor=None, action="api_token.expired_purged", object_type="api_token", object_id="",
                         after={"count": purged})
    return purged
