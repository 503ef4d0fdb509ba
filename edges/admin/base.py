"""Admin for audited models is read-only: every change goes through the services and the audit log."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """View-only: the admin may look, never write around the services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
