"""The processes of the workflows (viewflow's Process with a real foreign key to what they follow) and their tasks."""

from django.db import models, router
from viewflow.workflow.models import Process, Task

from h2h_core.prepared_writes import PreparedSave


class CaseProcess(Process):
    """One run of the case flow, intake to close (a reopened closed case gets a new run)."""

    case = models.ForeignKey("h2h_core.Case", on_delete=models.PROTECT, related_name="processes")

    class Meta:
        verbose_name = "Case process"
        verbose_name_plural = "Case processes"


class RequestProcess(Process):
    """The life of one authority request: the team's managers, then at most the fallback pool."""

    request = models.OneToOneField("authority.AuthorityRequest", on_delete=models.PROTECT, related_name="process")

    class Meta:
        verbose_name = "Authority request process"
        verbose_name_plural = "Authority request processes"


class FlowTask(Task):
    """viewflow's task, written through statements compiled once (h2h_core.prepared_writes).

    The flows' task class (`task_class`): a node's task is inserted, then saved two to four times as
    it is activated, assigned and finished, and Django compiled a new statement for each save, about
    as much CPU as the rest of the node's work. The table and the rows are viewflow's own.
    """

    class Meta:
        proxy = True
        verbose_name = "Flow task"

    def save(self, *args, **kwargs):
        if args or kwargs:
            return super().save(*args, **kwargs)
        if self.flow_task and not self.flow_task_type:  # as viewflow's Task.save
            self.flow_task_type = self.flow_task.task_type
        if not _TASK_WRITES.save(self, using=router.db_for_write(FlowTask, instance=self)):
            super().save()
        return None


_TASK_WRITES = PreparedSave(FlowTask)
