"""An analytics table as a CSV download, recorded in the audit log before it leaves.

The consoles' report pages (AI beside people, outcomes, …) export the table they show through
`audited_csv`, so every export is audited the same way and its cells are made safe for
spreadsheets by `csv_lines`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import StreamingHttpResponse

from h2h_core.audit import audit_record

from .csv_cells import csv_lines


def report_filters(*, team, every_case: bool, days: int, since: datetime, until: datetime) -> dict:
    """What an export's audit event records of the page's filters."""
    return {"team": team.pk if team is not None else ("every case" if every_case else "all my teams"),
            "days": days, "since": since, "until": until}


def audited_csv(*, actor, dataset: str, filters: dict, header: Iterable[str], rows: Iterable[Iterable[Any]],
                until: datetime) -> StreamingHttpResponse:
    """Record the export (who, which dataset, which filters), then stream the table as CSV."""
    with transaction.atomic(durable=True):
        audit_record(actor=actor, action="audit.exported", object_type="export", object_id=dataset,
                     after={"dataset": dataset, "format": "csv", "filters": filters})
    response = StreamingHttpResponse(csv_lines(list(header), rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="h2h-{dataset}-{until:%Y%m%dT%H%M%SZ}.csv"'
    response["Cache-Control"] = "no-store"
    return response
