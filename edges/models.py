"""What the edges themselves store: the one-time tokens of submitted web forms, and export files."""

from django.conf import settings
from django.db import models


class FormToken(models.Model):
    """A web form's one-time token, claimed by the form's first submission.

    A second submission of the same form (a double click, a second tab, the back button) finds the
    token taken and is shown the first one's result instead of acting again.
    """

    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(db_index=True)
    result_url = models.CharField(max_length=2000, blank=True)

    def __str__(self) -> str:
        return f"form token of {self.user_id} at {self.created_at:%Y-%m-%d %H:%M}"


class ExportFile(models.Model):
    """An evidence export too large to stream from the request: built by a job into a private file.

    The filters are the GET parameters the export was asked with; the job rebuilds the same query
    from them (edges.auditor.exports.export_query), as the requester, when it runs.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "being built"
        READY = "ready", "ready"
        FAILED = "failed", "failed"

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    dataset = models.CharField(max_length=20)
    format = models.CharField(max_length=10)
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    #: Rows matching when it was asked for (counted up to H2H_EXPORT_INLINE_ROWS + 1); once ready, the rows in the file.
    row_count = models.PositiveBigIntegerField(default=0)
    file = models.FileField(max_length=300, blank=True)
    #: Why it failed, in words for the person who asked.
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["requested_by", "-created_at"], name="export_file_by_requester")]

    def __str__(self) -> str:
        return f"{self.dataset}.{self.format} export {self.pk} ({self.status})"

    @property
    def in_progress(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
