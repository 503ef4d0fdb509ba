"""Evidence exports: decisions and audit events as CSV or JSON Lines, streamed in constant memory.

Rows are read with `.iterator()` in chunks (a server-side cursor on PostgreSQL) and written one at a
time into a StreamingHttpResponse, so memory stays flat whether the export holds ten rows or ten
million. The export is itself recorded in the audit log (who exported what, with which filters)
before the first byte leaves, in its own transaction.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator

from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone

from h2h_core.audit import audit_record, snapshot_value

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


class _Echo:
    """A file-like object whose write returns what it was given (csv.writer into a generator)."""

    def write(self, value):
        return value


def _plain(value):
    value = snapshot_value(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "" if value is None else value


def _csv_lines(header: list[str], rows: Iterable[tuple]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([_plain(value) for value in row])


def _jsonl_lines(header: list[str], rows: Iterable[tuple]) -> Iterator[str]:
    for row in rows:
        record = {name: snapshot_value(value) for name, value in zip(header, row, strict=True)}
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def _record_export(*, actor, dataset: str, fmt: str, filters: dict) -> None:
    with transaction.atomic(durable=True):
        audit_record(actor=actor, action="audit.exported", object_type="export", object_id=dataset,
                     after={"dataset": dataset, "format": fmt, "filters": filters})


def _response(*, lines: Iterator[str], dataset: str, fmt: str) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(lines, content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="h2h-{dataset}-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


def export_decisions(*, actor, queryset, fmt: str, filters: dict) -> StreamingHttpResponse:
    """Stream the decisions of `queryset` (already filtered and ordered) as CSV or JSON Lines."""
    header = [name for name, _ in DECISION_COLUMNS]
    rows = queryset.values_list(*(path for _, path in DECISION_COLUMNS)).iterator(chunk_size=CHUNK)
    _record_export(actor=actor, dataset="decisions", fmt=fmt, filters=filters)
    lines = _csv_lines(header, rows) if fmt == "csv" else _jsonl_lines(header, rows)
    return _response(lines=lines, dataset="decisions", fmt=fmt)


def export_events(*, actor, queryset, fmt: str, filters: dict) -> StreamingHttpResponse:
    """Stream audit events (already filtered and ordered) as CSV or JSON Lines, hash fields included."""
    rows = queryset.values_list(*EVENT_COLUMNS).iterator(chunk_size=CHUNK)
    _record_export(actor=actor, dataset="audit-events", fmt=fmt, filters=filters)
    lines = _csv_lines(list(EVENT_COLUMNS), rows) if fmt == "csv" else _jsonl_lines(list(EVENT_COLUMNS), rows)
    return _response(lines=lines, dataset="audit-events", fmt=fmt)

