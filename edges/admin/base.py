"""Admin for audited models is read-only: every change goes through the services and the audit log."""

from django.contrib import admin, messages

from edges.web.service_calls import error_text
from h2h_core.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin):
    """View-only: the admin may look, never write around the services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def retry_action(*, name: str, service, description: str, done: str):
    """An admin action that retries each selected row through `service(actor=, <row>)`, reporting refusals.

    `name` is the action's name in the admin's form; `done` is the message for how many were
    retried, with `{count}` in it. Shown to superusers only
    (the admin class's `has_retry_permission`).
    """
    @admin.action(description=description, permissions=["retry"])
    def retry(modeladmin, request, queryset):
        retried = 0
        for row in queryset.order_by("pk"):
            try:
                service(request.user, row)
                retried += 1
            except DomainError as error:  # a refusal is reported, never a 500
                modeladmin.message_user(request, error_text(error), messages.ERROR)
        if retried:
            modeladmin.message_user(request, done.format(count=retried), messages.SUCCESS)

    retry.__name__ = name
    return retry
