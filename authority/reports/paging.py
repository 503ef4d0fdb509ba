"""Keyset (seek) paging: page 10,000 costs what page 1 costs. One query per page.

A page is ordered newest first by a key: either a unique integer (the audit log's seq, an id) or a
timestamp with the primary key as tie-breaker. The cursor is the key of the row at the page's edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Q, QuerySet
from django.utils import timezone


@dataclass(frozen=True)
class Page:
    rows: list
    newer: str | None
    older: str | None


def _encode(row, field_name: str) -> str:
    value = getattr(row, field_name)
    return f"{value.isoformat()}~{row.pk}" if isinstance(value, datetime) else str(value)


def _decode(cursor: str | None) -> tuple | None:
    """Return the cursor's key: (int,) or (aware datetime, pk); None for anything malformed."""
    if not cursor:
        return None
    if cursor.isascii() and cursor.isdigit():
        return (int(cursor),)
    stamp, sep, pk = cursor.rpartition("~")
    if not sep:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace(" ", "+"))
        key = int(pk)
    except ValueError:
        return None
    if timezone.is_naive(moment):
        return None
    return moment, key


def _beyond(field_name: str, key: tuple, direction: str) -> Q:
    """Rows strictly past `key` in `direction` ("lt" older, "gt" newer)."""
    if len(key) == 1:
        return Q(**{f"{field_name}__{direction}": key[0]})
    value, pk = key
    return Q(**{f"{field_name}__{direction}": value}) | Q(**{field_name: value, f"pk__{direction}": pk})


def seek_page(qs: QuerySet, *, field_name: str, after: str | None, before: str | None, size: int) -> Page:
    """Return one page of `qs` (ordered by -field, -pk) older than `after` or newer than `before`.

    `field_name` is a unique integer, or a timestamp whose ties the primary key breaks. A cursor
    that does not parse, or is of the other kind, is ignored: the first page is shown.
    """
    unique_int = qs.model._meta.get_field(field_name).get_internal_type() != "DateTimeField"
    key_length = 1 if unique_int else 2
    older_than, newer_than = _decode(after), _decode(before)
    order_newer = (field_name,) if unique_int else (field_name, "pk")
    if older_than is not None and len(older_than) == key_length:
        rows = list(qs.filter(_beyond(field_name, older_than, "lt"))[: size + 1])
        has_more, has_less = len(rows) > size, True
        rows = rows[:size]
    elif newer_than is not None and len(newer_than) == key_length:
        rows = list(qs.filter(_beyond(field_name, newer_than, "gt")).order_by(*order_newer)[: size + 1])
        has_less = len(rows) > size
        rows = list(reversed(rows[:size]))
        has_more = True
    else:
        rows = list(qs[: size + 1])
        has_more, has_less = len(rows) > size, False
        rows = rows[:size]
    if not rows:
        return Page(rows=[], newer=None, older=None)
    return Page(rows=rows, newer=_encode(rows[0], field_name) if has_less else None,
                older=_encode(rows[-1], field_name) if has_more else None)



def seek_page_events(qs: QuerySet, *, after: str | None, before: str | None, size: int) -> Page:
    """Return one page of audit events, newest first by their place in the chain (seq).

    Events not sealed into the chain yet have no seq: they lead the first page (newest, by id),
    marked as sealing by the template, in the same one query; every later page is the chain's
    alone, so a cursor stays a sequence number.
    """
    if _decode(after) is not None or _decode(before) is not None:
        return seek_page(qs.filter(seq__isnull=False), field_name="seq", after=after, before=before, size=size)
    rows = list(qs.order_by(F("seq").desc(nulls_first=True), "-id")[: size + 1])
    has_more, rows = len(rows) > size, rows[:size]
    if not rows:
        return Page(rows=[], newer=None, older=None)
    # A page of nothing but events still sealing: the next one starts at the newest sealed entry.
    edge = rows[-1].seq if rows[-1].seq is not None else _BEYOND_EVERY_SEQ
    return Page(rows=rows, newer=None, older=str(edge) if has_more else None)


_BEYOND_EVERY_SEQ = 2**63 - 1
