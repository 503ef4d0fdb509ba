"""The auditor console's exports: streamed from the request when small, built by a job when large.

An export of more than H2H_EXPORT_INLINE_ROWS rows is queued (edges.auditor.jobs) and the auditor
is sent to the Exports page, which lists their exports and offers each file once it is ready.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from authority import reports
from edges.auditor import exports, jobs
from edges.models import ExportFile
from edges.web.console import auditor_console

#: The Exports page lists this many of the person's latest exports (they expire within days anyway).
LISTED = 50
REFRESH_SECONDS = 5


@auditor_console
def export(request, dataset: str, fmt: str):
    """Export decisions or audit events, following the filters of the page they were asked from."""
    if fmt not in exports.FORMATS:
        raise Http404("Unknown format")
    try:
        query = exports.export_query(dataset=dataset, params=request.GET)
    except exports.UnknownDataset:
        raise Http404("Unknown dataset") from None
    except exports.InvalidExportFilters:
        messages.error(request, "Correct the filters before exporting.")
        return redirect(reverse("audit:decisions") + "?" + request.GET.urlencode())
    limit = settings.H2H_EXPORT_INLINE_ROWS
    count, more = reports.capped_count(query.queryset, cap=limit)  # one bounded query
    if not more:
        return exports.export_stream(actor=request.user, query=query, fmt=fmt)
    _, created = jobs.export_file_request(actor=request.user, query=query, fmt=fmt, row_count=count)
    if created:
        messages.success(request, f"More than {limit} rows: the export is being prepared as a file. It is listed "
                                  "here, with a download link once it is ready; the export is in the audit log.")
    else:
        messages.info(request, "The same export is already being prepared; it is listed here.")
    return redirect("audit:exports")


@auditor_console
def export_list(request):
    """The person's own exports, newest first; the page refreshes itself while one is being built."""
    files = list(ExportFile.objects.filter(requested_by=request.user).order_by("-created_at", "-id")[:LISTED])
    refresh = REFRESH_SECONDS if any(export.in_progress for export in files) else None
    return render(request, "authority/exports.html", {
        "exports": files, "refresh": refresh, "limit": settings.H2H_EXPORT_INLINE_ROWS,
    })


@auditor_console
def export_download(request, pk: int):
    """The file of a ready export, to the person who asked for it only (anyone else: 404, nothing said)."""
    export = ExportFile.objects.filter(pk=pk, status=ExportFile.Status.READY).first()
    if export is None or not exports.may_read_export(user=request.user, export=export):
        raise Http404("No such export")
    try:
        handle = default_storage.open(export.file.name, "rb")
    except FileNotFoundError:
        raise Http404("The file of this export is gone; ask for it again.") from None
    filename = exports.export_filename(name=exports.export_name(dataset=export.dataset, params=export.filters),
                                      fmt=export.format, at=export.created_at)
    response = FileResponse(handle, as_attachment=True, filename=filename,
                            content_type=exports.FORMATS[export.format])
    response["Cache-Control"] = "no-store"
    return response
