"""The audit log as readers filter it: the auditor console's page and export, and the API's list."""

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import F, QuerySet

from h2h_core.models import AuditEvent

from .decision_log import time_bounds


@dataclass(frozen=True)
class AuditFilters:
    """Exact matches on the event's columns; `case` is shorthand for the events about that case.

    `date_from`/`date_to` are whole days in the organisation's time zone (both included); `after`
    and `before` exact instants (at or after, strictly before).
    """

    action: str = ""
    actor: str = ""
    object_type: str = ""
    object_id: str = ""
    outcome: str = ""
    case: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    after: datetime | None = None
    before: datetime | None = None


COLUMNS = (("action", "action"), ("actor", "actor_username"), ("object_type", "object_type"),
           ("object_id", "object_id"), ("outcome", "outcome"))


def events_matching(filters: AuditFilters, *, among: QuerySet[AuditEvent] | None = None) -> QuerySet[AuditEvent]:
    """Audit events matching the filters, newest first (one query, on the sequence number).

    `among`: the events to filter (default all of them).
    """
    qs = AuditEvent.objects.all() if among is None else among
    for name, column in COLUMNS:
        value = getattr(filters, name)
        if value:
            qs = qs.filter(**{column: value})
    if filters.case:
        qs = qs.filter(object_type="case", object_id=str(filters.case))
    start, end = time_bounds(date_from=filters.date_from, date_to=filters.date_to, after=filters.after,
                             before=filters.before)
    if start:
        qs = qs.filter(occurred_at__gte=start)
    if end:
        qs = qs.filter(occurred_at__lt=end)
    # Newest first: events not sealed into the chain yet (seq NULL) are the newest, in the order written.
    return qs.order_by(F("seq").desc(nulls_first=True), "-id")
