"""Large exports as files: asked for from the request, built by a job, deleted when they expire.

The request writes the ExportFile row, its audit record and the job in one transaction, so either
all three exist or none does. The job rebuilds the query from the stored filters with the same
function the streamed export uses, as the requester, and asks again at run time whether the
requester may still export. The audit record is written when the export is asked for, not when the
file is ready: it is the auditor's act that the log must show, it is then in the same transaction
as the row and the job (nothing to reconcile if the worker dies), and an events export contains its
own record, as a streamed one does.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from edges.auditor.exports import (
    ExportQuery,
    InvalidExportFilters,
    UnknownDataset,
    export_lines,
    export_query,
    export_record,
    may_read_export,
)
from edges.models import ExportFile
from h2h_core.audit import audit_seal
from h2h_core.jobs import enqueue, task
from h2h_core.transactions import service_atomic

logger = logging.getLogger("h2h.exports")

Status = ExportFile.Status
#: A queued or running export not finished this long after it was asked for is marked failed
#: (its worker stopped): the Exports page then stops refreshing and says to ask again.
UNFINISHED_AFTER = timedelta(days=1)
BUILD_FAILED = "The export could not be built. Ask for it again; if it fails again, tell an administrator."


def _keep() -> timedelta:
    return timedelta(days=settings.H2H_EXPORT_KEEP_DAYS)


def export_file_request(*, actor, query: ExportQuery, fmt: str, row_count: int) -> tuple[ExportFile, bool]:
    """Queue a file export of `query` for `actor`, audited; return (the export, whether it is new).

    The same export (dataset, format, filters) still queued or running for the same person is
    returned instead of queueing another, so a second click does not build the file twice.
    """
    now = timezone.now()
    with service_atomic():
        pending = ExportFile.objects.filter(requested_by=actor, dataset=query.dataset, format=fmt,
                                            filters=query.params, status__in=(Status.QUEUED, Status.RUNNING))
        existing = pending.order_by("-created_at").first()
        if existing is not None:
            return existing, False
        export = ExportFile.objects.create(requested_by=actor, dataset=query.dataset, format=fmt, filters=query.params,
                                           row_count=row_count, created_at=now, expires_at=now + _keep())
        export_record(actor=actor, query=query, fmt=fmt, export_file=export)
        enqueue(export_file_build, export.pk)
    return export, True


def _fail(export_id: int, message: str) -> None:
    ExportFile.objects.filter(pk=export_id, status=Status.RUNNING).update(
        status=Status.FAILED, message=message[:500], finished_at=timezone.now())


def _write(export: ExportFile, query: ExportQuery) -> tuple[str, int]:
    """Write the export into a private file of the default storage; return (its name, the rows written)."""
    written = 0

    def counted(rows):
        nonlocal written
        for row in rows:
            written += 1
            yield row

    with tempfile.TemporaryFile() as spool:
        for line in export_lines(query=query, fmt=export.format, rows=counted(query.rows())):
            spool.write(line.encode())
        spool.seek(0)
        # A name nobody can guess, even if the storage were ever exposed by mistake.
        name = default_storage.save(f"exports/{export.pk}-{secrets.token_urlsafe(24)}.{export.format}", File(spool))
    return name, written


@task(queue_name="default")
def export_file_build(export_id: int) -> dict:
    """Build one queued export into its file; do nothing if it was built, is being built, or is gone."""
    claimed = ExportFile.objects.filter(pk=export_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now())
    if not claimed:
        return {"skipped": "not queued"}
    try:
        export = ExportFile.objects.select_related("requested_by").get(pk=export_id)
        permission = may_read_export(user=export.requested_by, export=export)
        if not permission:
            _fail(export_id, f"Not built: {permission.reason}")
            return {"refused": permission.reason}
        try:
            query = export_query(dataset=export.dataset, params=export.filters)
        except (UnknownDataset, InvalidExportFilters):
            _fail(export_id, "Not built: its filters are no longer valid (a team or kind may have been removed). "
                             "Ask for it again from the log.")
            return {"refused": "invalid filters"}
        audit_seal()  # the file carries the chain link of every event committed by now, its own record's too
        name, rows = _write(export, query)
    except Exception:
        logger.exception("Export %s could not be built", export_id)
        _fail(export_id, BUILD_FAILED)
        raise
    finished = timezone.now()
    done = ExportFile.objects.filter(pk=export_id, status=Status.RUNNING).update(
        status=Status.READY, file=name, row_count=rows, finished_at=finished, expires_at=finished + _keep())
    if not done:  # deleted (or failed by the cleanup) while it was being built: keep no orphan file
        default_storage.delete(name)
        return {"skipped": "gone while building"}
    return {"rows": rows}


def export_files_expire(*, now: datetime | None = None) -> dict:
    """Delete expired export files and their rows; mark exports that never finished as failed."""
    now = now or timezone.now()
    unfinished = ExportFile.objects.filter(status__in=(Status.QUEUED, Status.RUNNING),
                                           created_at__lt=now - UNFINISHED_AFTER).update(
        status=Status.FAILED, message=BUILD_FAILED, finished_at=now)
    deleted = 0
    for pk, name in ExportFile.objects.filter(expires_at__lte=now).values_list("pk", "file").iterator():
        # The file first: a failure leaves the row, and tomorrow's run tries again (no orphan file).
        if name:
            default_storage.delete(name)
        deleted += ExportFile.objects.filter(pk=pk).delete()[0]
    return {"deleted": deleted, "unfinished": unfinished}


@task(queue_name="default")
def export_files_cleanup() -> dict:
    """The daily sweep of export files (export_files_expire) as a job."""
    return export_files_expire()
