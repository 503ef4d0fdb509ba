"""Read-only admin for the processes: they move only through the workflow services and timers."""

from django.contrib import admin
from viewflow.workflow.admin import ProcessAdmin, TaskAdmin
from viewflow.workflow.models import Process, Task

from edges.admin.base import ReadOnlyAdmin
from workflows.models import CaseProcess, RequestProcess


class ViewflowProcessAdmin(ReadOnlyAdmin, ProcessAdmin):
    """viewflow's own process list, without its edit and delete (a process moves only through its steps)."""


class ViewflowTaskAdmin(ReadOnlyAdmin, TaskAdmin):
    """viewflow's own task list, without its edit and delete."""


for _model, _admin_class in ((Process, ViewflowProcessAdmin), (Task, ViewflowTaskAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin_class)


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
