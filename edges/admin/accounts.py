"""People's accounts, roles, sign-in records and API tokens in the admin: audited services, or read-only.

Django's own admins for these (users, groups, axes' attempt logs) write straight to
the tables, and the only trace is django_admin_log, which is neither chained nor protected. Here:

- users: the change form, the add form and the password form call `h2h_core.people` services,
  which audit every change (who, before, after) and enforce the account rules. The change form
  runs inside the admin's transaction, so the services join it (in a savepoint: a refusal undoes
  this form's changes and only them); a refusal becomes an error message and a `*.refused` audit
  event, never a 500. Deleting is not offered (deactivate instead: audit events point at users);
  direct permissions, last login and date joined are read-only.
- groups (roles): read-only; people get roles in the user form (`user_set_roles`). Group
  permissions decide what the admin lets a staff member do, so they are not edited here.
- API tokens: read-only, showing only the start of a key (only its digest is stored); revoked with the
  user action below.
- axes' attempts and logs: read-only evidence; a locked-out username is unlocked with an audited
  action.
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from edges.admin.base import ReadOnlyAdmin
from edges.web.service_calls import error_text
from h2h_core import people
from h2h_core.errors import DomainError
from h2h_core.models import ApiToken

User = get_user_model()

_REFUSED = "_h2h_admin_refused"


def _refused(request) -> bool:
    return getattr(request, _REFUSED, False)


class AccountAdmin(DjangoUserAdmin):
    """Users: every write goes through an audited service of h2h_core.people."""

    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser")
    readonly_fields = ("user_permissions", "last_login", "date_joined")
    actions = ["revoke_api_tokens"]

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: audit events and decisions keep pointing at the account

    # --- the add and change forms ------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            # The admin's transaction is open: the services join it, inside this savepoint, so a
            # refusal rolls back this form's changes and leaves the transaction usable.
            with transaction.atomic():
                if change:
                    people.user_account_update(
                        actor=request.user,
                        user=obj,
                        profile={field: data[field] for field in people.PROFILE_FIELDS if field in data},
                        flags={flag: data[flag] for flag in people.FLAGS if flag in data},
                        roles=[group.name for group in data["groups"]] if "groups" in data else None,
                    )
                else:
                    created = people.user_create(
                        actor=request.user,
                        username=data["username"],
                        password=data["password1"] if data.get("set_usable_password", True) else None,
                    )
                    obj.pk, obj.password = created.pk, created.password
                    obj._state.adding, obj._state.db = False, created._state.db
        except (DomainError, ValidationError) as error:
            self._refuse(request, obj if change else None, "user.update" if change else "user.create", error)

    def save_related(self, request, form, formsets, change):
        # Roles were set by the service with the rest of the form; nothing else is written here.
        pass

    def _refuse(self, request, user, action: str, error: Exception) -> None:
        setattr(request, _REFUSED, True)
        self.message_user(request, f"Nothing was changed: {error_text(error)}", messages.ERROR)
        if isinstance(error, DomainError):  # bad input is not a refusal, and is not recorded
            people.user_refusal_record(actor=request.user, user=user, action=action, error=error)

    def log_addition(self, request, obj, message):
        if not _refused(request):
            return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if not _refused(request):
            return super().log_change(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if _refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if _refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)

    # --- the password form -------------------------------------------------------------------

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        """Set a password through `user_set_password`; Django's view still shows the form and its errors."""
        if request.method != "POST":
            return super().user_change_password(request, id, form_url)
        user = self.get_object(request, unquote(id))
        if user is None or not self.has_change_permission(request, user):
            return super().user_change_password(request, id, form_url)  # its 404 or 403
        form = self.change_password_form(user, request.POST)
        if not form.is_valid() or not (form.cleaned_data["set_usable_password"] or "unset-password" in request.POST):
            return super().user_change_password(request, id, form_url)  # the errors again; it writes nothing
        password = form.cleaned_data["password1"] if form.cleaned_data["set_usable_password"] else None
        try:
            people.user_set_password(actor=request.user, user=user, password=password)  # its own transaction
        except (DomainError, ValidationError) as error:
            self.message_user(request, f"The password was not changed: {error_text(error)}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        self.log_change(request, user, self.construct_change_message(request, form, None))
        self.message_user(request, "Password changed." if password is not None
                          else "Password-based authentication was disabled.", messages.SUCCESS)
        update_session_auth_hash(request, user)
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:auth_user_change", args=(user.pk,)))

    # --- actions -----------------------------------------------------------------------------

    @admin.action(description="Revoke the API tokens of the selected people", permissions=["change"])
    def revoke_api_tokens(self, request, queryset):
        revoked = 0
        for user in queryset.order_by("pk"):
            try:
                revoked += people.api_token_revoke(actor=request.user, user=user)
            except DomainError as error:  # a refusal is reported, never a 500
                self.message_user(request, f"{user.get_username()}: {error_text(error)}", messages.ERROR)
        self.message_user(request, f"{revoked} API token(s) revoked.", messages.SUCCESS)


class RoleAdmin(ReadOnlyAdmin, DjangoGroupAdmin):
    """Roles are Django groups: read-only here; people get roles in the user form."""

    list_display = ("name",)


class ApiTokenAdmin(ReadOnlyAdmin):
    """API tokens: whose, since and until when; only the start of the key (the key itself is not stored)."""

    list_display = ("key_prefix", "user", "created_at", "expires_at")
    list_select_related = ("user",)
    fields = ("key_prefix", "user", "created_at", "expires_at")
    readonly_fields = fields
    search_fields = ("user__username", "prefix")

    @admin.display(description="key starts with")
    def key_prefix(self, obj):
        return f"{obj.prefix}…"


class LoginAttemptAdmin(ReadOnlyAdmin, AccessAttemptAdmin):
    """Failed login attempts (axes): read-only; a locked-out username is unlocked by the action."""

    actions = ["unlock_usernames"]

    @admin.action(description="Unlock the selected usernames")
    def unlock_usernames(self, request, queryset):
        usernames = sorted({username for username in queryset.values_list("username", flat=True) if username})
        for username in usernames:
            try:
                removed = people.login_lockout_clear(actor=request.user, username=username)
            except DomainError as error:
                self.message_user(request, f"{username}: {error_text(error)}", messages.ERROR)
            else:
                self.message_user(request, f"{username}: unlocked ({removed} attempt record(s) removed).",
                                  messages.SUCCESS)


class LoginLogAdmin(ReadOnlyAdmin, AccessLogAdmin):
    pass


class LoginFailureLogAdmin(ReadOnlyAdmin, AccessFailureLogAdmin):
    pass


def _replace(model, admin_class) -> None:
    """Register our admin for a model another app registered (or not: axes' admin is optional)."""
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, admin_class)


_replace(User, AccountAdmin)
_replace(Group, RoleAdmin)
_replace(ApiToken, ApiTokenAdmin)
_replace(AccessAttempt, LoginAttemptAdmin)
_replace(AccessLog, LoginLogAdmin)
_replace(AccessFailureLog, LoginFailureLogAdmin)
