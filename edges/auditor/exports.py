"""Evidence exports: decisions and audit events as CSV or JSON Lines, in constant memory.

One function (`export_query`) turns the filters, given as GET parameters, into the rows to export;
the request uses it, and so does the job that builds a large export into a file later
(edges.auditor.jobs), with the parameters it stored. Rows are read with `.iterator()` in chunks (a
server-side cursor on PostgreSQL) and written one at a time, into a StreamingHttpResponse or a file,
so memory stays flat whether the export holds ten rows or ten million. Every export is recorded in
the audit log once (who exported what, with which filters) before any row is read.

CSV cells pass through edges.web.csv_cells, so text that a spreadsheet would run as a formula is
prefixed with `'`. JSON Lines are written exactly as stored: recompute the chain from those.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from authority import reports
from authority.policy.permissions import may_use_auditor_console
from edges.auditor import filtering
from edges.models import ExportFile
from edges.web.csv_cells import csv_lines
from h2h_core.access import ALLOWED, Permission
from h2h_core.audit import audit_record, audit_seal, snapshot_value

CHUNK = 2000
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}

DECISION_COLUMNS = (
    ("id", "id"),
    ("executed_at", "executed_at"),
    ("case_id", "case_id"),
    ("customer_id", "case__customer_id"),
    ("team", "case__team__name"),
    ("agent", "agent__username"),
    ("kind", "kind__code"),
    ("amount", "amount"),
    ("currency", "currency"),
    ("counted_amount", "counted_amount"),
    ("counted_currency", "counted_currency"),
    ("rate", "rate"),
    ("rate_date", "rate_date"),
    ("grant_id", "grant_id"),
    ("grant_lineage", "grant__lineage"),
    ("grant_version", "grant__version"),
    ("grant_level_user", "grant__subject_user_id"),
    ("grant_level_team", "grant__subject_team_id"),
    ("grant_level_role", "grant__subject_role_id"),
    ("request_id", "request_id"),
    ("approved_by", "request__decided_by__username"),
    ("rationale", "rationale"),
)

# Everything the chain hashes, so that an outsider can recompute it from the export alone.
EVENT_COLUMNS = ("seq", "occurred_at", "actor_id", "actor_username", "actor_roles", "action", "object_type",
                 "object_id", "outcome", "before", "after", "reason", "ip", "request_id", "prev_hash", "hash")


class UnknownDataset(LookupError):
    """The URL names no dataset that can be exported."""


class InvalidExportFilters(ValueError):
    """The filters do not validate (the decision-log form refuses them)."""


@dataclass(frozen=True)
class ExportQuery:
    """What one export holds: its rows, its columns, and the filters that select them."""

    dataset: str  # as in the URL: "decisions" or "events"
    name: str  # as in the file name and the audit record: "decisions" or "audit-events"
    queryset: QuerySet
    columns: tuple[str, ...]
    paths: tuple[str, ...]
    #: The GET parameters that rebuild this query (stored with an export built by a job).
    params: dict[str, str] = field(default_factory=dict)
    #: The filters as the audit record states them.
    audited_filters: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> Iterator[tuple]:
        return self.queryset.values_list(*self.paths).iterator(chunk_size=CHUNK)


def export_name(*, dataset: str, params: Mapping[str, str]) -> str:
    """What the file and the audit record call an export: refused decisions are audit events."""
    return "audit-events" if dataset == "events" or params.get("outcome") == "refused" else "decisions"


def export_query(*, dataset: str, params: Mapping[str, str]) -> ExportQuery:
    """Build the rows of an export from the filters of the page it was asked from (GET parameters)."""
    name = export_name(dataset=dataset, params=params)
    if dataset == "events":
        queryset, filters = filtering.events_matching(params)
        return ExportQuery(dataset=dataset, name=name, queryset=queryset, columns=EVENT_COLUMNS, paths=EVENT_COLUMNS,
                           params=filters, audited_filters=filters)
    if dataset != "decisions":
        raise UnknownDataset(dataset)
    _, filters = filtering.decision_filters(params)
    if filters is None:
        raise InvalidExportFilters(dataset)
    query = filters.as_query()
    if filters.outcome == "refused":
        return ExportQuery(dataset=dataset, name=name, queryset=reports.refusals_matching(filters),
                           columns=EVENT_COLUMNS, paths=EVENT_COLUMNS, params=query,
                           audited_filters={"dataset": "refused decisions", **query})
    return ExportQuery(dataset=dataset, name=name, queryset=reports.decisions_matching(filters),
                       columns=tuple(column for column, _ in DECISION_COLUMNS),
                       paths=tuple(path for _, path in DECISION_COLUMNS), params=query, audited_filters=query)


def may_read_export(*, user, export: ExportFile) -> Permission:
    """Whether `user` may have `export` built and download it: its requester, while they may still export."""
    if not (may_use_auditor_console(user) and user.is_active):
        return Permission.deny("Exports are for auditors.")
    if export.requested_by_id != user.pk:
        return Permission.deny("This export was asked for by someone else.")
    return ALLOWED


def export_record(*, actor, query: ExportQuery, fmt: str, export_file: ExportFile | None = None) -> None:
    """Record the export in the audit log, inside the caller's transaction."""
    after = {"dataset": query.name, "format": fmt, "filters": query.audited_filters}
    if export_file is not None:
        after["export_file"] = export_file.pk
    audit_record(actor=actor, action="audit.exported", object_type="export", object_id=query.name, after=after)


def _plain(value):
    value = snapshot_value(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "" if value is None else value


def _jsonl_lines(header: tuple[str, ...], rows: Iterator[tuple]) -> Iterator[str]:
    for row in rows:
        record = {name: snapshot_value(value) for name, value in zip(header, row, strict=True)}
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def export_lines(*, query: ExportQuery, fmt: str, rows: Iterator[tuple] | None = None) -> Iterator[str]:
    """The export's text, a line at a time (the header first, for CSV)."""
    rows = query.rows() if rows is None else rows
    if fmt == "csv":
        return csv_lines(query.columns, rows, plain=_plain)
    return _jsonl_lines(query.columns, rows)


def export_filename(*, name: str, fmt: str, at) -> str:
    return f"h2h-{name}-{at.strftime('%Y%m%dT%H%M%SZ')}.{fmt}"


def export_stream(*, actor, query: ExportQuery, fmt: str) -> StreamingHttpResponse:
    """Stream the export from the request, recorded in the audit log before the first byte leaves."""
    with transaction.atomic(durable=True):
        export_record(actor=actor, query=query, fmt=fmt)
    audit_seal()  # the file carries the chain link of every event committed by now, its own record's too
    response = StreamingHttpResponse(export_lines(query=query, fmt=fmt), content_type=FORMATS[fmt])
    filename = export_filename(name=query.name, fmt=fmt, at=timezone.now())
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
