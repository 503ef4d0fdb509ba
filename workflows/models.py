"""The processes of the workflows: viewflow's Process with a real foreign key to what they follow."""

from django.db import models
from viewflow.workflow.models import Process


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
