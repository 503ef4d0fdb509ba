"""Stream sealed audit events with their hashes recomputed, fast enough for a million-event log.

Verification is the one place that reads every event, so it skips the ORM: one raw query per run on
a server-side cursor (constant memory), times formatted by the database, and the canonical JSON
written by orjson instead of the standard library (ten times faster here). chain.event_hash stays
the definition. A row whose fast hash does not match its stored hash is recomputed through the ORM
and chain.event_hash before anything is called broken, so the fast path can only ever save time.

Why a fast match is proof: orjson and json.dumps both write faithful JSON (parsing their output
gives back the value written; the database's values hold no NaN or infinity, which orjson would
write as null). If orjson's text of a row hashes to the stored hash, it is the text json.dumps
wrote when the row was sealed (SHA-256 has no known collisions), so the row holds the value it
held then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple

import orjson
from django.db import connection

from h2h_core.models import AuditEvent

from .chain import HASHED_FIELDS, event_hash

_TABLE = AuditEvent._meta.db_table
_JSON_FIELDS = ("actor_roles", "before", "after")

_POSTGRESQL_SQL = f"""
SELECT id, seq, prev_hash, hash,
       to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       actor_id, actor_username, actor_roles::text, action, object_type, object_id, outcome,
       before::text, after::text, reason, host(ip), request_id
  FROM {_TABLE} WHERE seq IS NOT NULL AND seq > %s AND seq <= %s ORDER BY seq
"""
_SQLITE_SQL = f"""
SELECT id, seq, prev_hash, hash, occurred_at,
       actor_id, actor_username, actor_roles, action, object_type, object_id, outcome,
       before, after, reason, ip, request_id
  FROM {_TABLE} WHERE seq IS NOT NULL AND seq > %s AND seq <= %s ORDER BY seq
"""
_FIRST, _LAST = -(2**63), 2**63 - 1


class SealedRow(NamedTuple):
    # A named tuple, not a frozen dataclass: made once per entry, it is a quarter of the cost.
    pk: int
    seq: int
    prev_hash: str
    hash: str
    content_intact: bool  # the row's fields hash to its stored hash (chain.event_hash's verdict)
    fast: bool = True  # the fast path alone proved it (False: the definitional path was asked)


def sealed_rows(*, after_seq: int | None = None, up_to_seq: int | None = None,
                chunk_size: int = 5000) -> Iterator[SealedRow]:
    """Yield the sealed events (after `after_seq` and up to `up_to_seq`, or all of them) in sequence order,
    each with its content checked.

    All of them includes rows numbered 0 or below, which only a forger writes: the walk names them.
    """
    postgresql = connection.vendor == "postgresql"
    sql = _POSTGRESQL_SQL if postgresql else _SQLITE_SQL
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [_FIRST if after_seq is None else after_seq, _LAST if up_to_seq is None else up_to_seq])
        while rows := cursor.fetchmany(chunk_size):
            for row in rows:
                pk, seq, prev_hash, stored = row[0], row[1], row[2], row[3]
                fast = _fast_hash(row, postgresql) == stored
                intact = fast or _definitional_hash(pk) == stored
                yield SealedRow(pk, seq, prev_hash, stored, intact, fast)


def _fast_hash(row: tuple, postgresql: bool) -> str | None:
    # The row's columns in _POSTGRESQL_SQL's order; a dict display, as it is made once per entry.
    body = {
        "seq": row[1], "prev_hash": row[2], "occurred_at": row[4] if postgresql else _sqlite_instant(row[4]),
        "actor_id": row[5], "actor_username": row[6], "actor_roles": row[7], "action": row[8],
        "object_type": row[9], "object_id": row[10], "outcome": row[11], "before": row[12], "after": row[13],
        "reason": row[14], "ip": row[15], "request_id": row[16],
    }
    try:
        for name in _JSON_FIELDS:
            if body[name] is not None:
                body[name] = orjson.loads(body[name])
        text = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError):
        return None  # e.g. an integer beyond 64 bits: the definitional path decides
    return hashlib.sha256(text).hexdigest()


def _sqlite_instant(value) -> str | None:
    # SQLite keeps UTC without a zone; Django's driver hands it back as a naive datetime (or, read
    # without its converters, as "YYYY-MM-DD HH:MM:SS[.ffffff]", the fraction left out when zero).
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if not isinstance(value, str) or len(value) not in (19, 26):
        return None
    return f"{value[:10]}T{value[11:]}{'' if len(value) == 26 else '.000000'}Z"


def _definitional_hash(pk: int) -> str | None:
    fields = AuditEvent.objects.filter(pk=pk).values(*HASHED_FIELDS).first()
    if fields is None:
        return None
    try:
        return event_hash(fields)
    except (TypeError, ValueError, AttributeError, KeyError):
        return None
