"""Read-only admin for the processes: they move only through the workflow services and timers."""

from django.contrib import admin

from edges.admin.base import ReadOnlyAdmin
from workflows.models import CaseProcess, RequestProcess


@admin.register(CaseProcess)
class CaseProcessAdmin(ReadOnlyAdmin):
    list_display = ("pk", "case", "status", "created", "finished")
    list_filter = ("status",)
    list_select_related = ("case",)
    search_fields = ("case__id",)


@admin.register(RequestProcess)
class RequestProcessAdmin(ReadOnlyAdmin):
    list_display = ("pk", "request", "status", "created", "finished")
    list_filter = ("status",)
    list_select_related = ("request",)
