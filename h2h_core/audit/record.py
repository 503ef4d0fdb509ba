"""Write audit events in the caller's transaction: sealed into the chain later (PostgreSQL) or at once (SQLite)."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from h2h_core import request_context
from h2h_core.access import roles_of
from h2h_core.lock_objects import audit_head_locked
from h2h_core.models import AuditEvent, AuditHead
from h2h_core.models.audit import Outcome
from h2h_core.prepared_writes import InsertBatch, PreparedInsert

from .chain import GENESIS_HASH, event_hash, format_instant
from .sealer import sealed_after_commit


def snapshot_value(value: Any) -> Any:
    """Turn a value into plain JSON that survives a database round trip unchanged."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): snapshot_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [snapshot_value(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if hasattr(value, "pk"):
        return value.pk
    return str(value)


def stored_ip(text: str) -> str:
    """Return an address as the database gives it back, so the hash computed at once is the one recomputed later.

    IPv6 as Django's field stores it: compressed, and an IPv4-mapped address in dotted form
    (`::ffff:10.0.0.1`, where the ipaddress module writes `::ffff:a00:1`).
    """
    address = ipaddress.ip_address(text)
    return clean_ipv6_address(str(address)) if address.version == 6 else str(address)


def actor_roles(actor) -> list[str]:
    """The roles the actor acts under: those every permission check of the request read (access.roles_of)."""
    if actor is None or not getattr(actor, "pk", None):
        return []
    if "groups" in getattr(actor, "_prefetched_objects_cache", {}):  # the caller read them already
        return sorted(group.name for group in actor.groups.all())
    return sorted(roles_of(actor))


# Every audited write appends here: its INSERT is compiled once per process (h2h_core.prepared_writes),
# which took about 30 % of an append's client CPU off (docs/performance.md).
_APPEND = PreparedInsert(AuditEvent)


def audit_record(
    *,
    actor,
    action: str,
    object_type: str,
    object_id: Any = "",
    outcome: str = Outcome.SUCCESS,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    roles: list[str] | None = None,
    batch: InsertBatch | None = None,
) -> AuditEvent:
    """Record one event inside the caller's transaction: it commits or rolls back with the change.

    PostgreSQL: one INSERT, with the chain link (seq, prev_hash, hash) left empty; the sealer links
    it after commit (h2h_core/audit/sealer.py), so writers never
    wait for each other here. With `batch` that INSERT is the batch's (the event's key is set when the
    batch ends). SQLite (one writer at a time anyway): linked at once, under the head
    row's lock, the last lock of the transaction; everything but the link is prepared before it.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    meta = request_context.current()
    fields = {
        "actor_id": getattr(actor, "pk", None),
        "actor_username": getattr(actor, "username", "") or "",
        "actor_roles": roles if roles is not None else actor_roles(actor),
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id) if object_id is not None else "",
        "outcome": str(outcome),
        "before": snapshot_value(before),
        "after": snapshot_value(after),
        "reason": reason or "",
        # Normalised as the database returns it (PostgreSQL's inet compresses IPv6), so the hash
        # computed here is the one recomputed from the stored row.
        "ip": stored_ip(meta.ip) if meta.ip else None,
        "request_id": meta.request_id,
    }
    if sealed_after_commit():
        # The returned event carries no chain link; read it back once the sealer has run.
        event = AuditEvent(**fields, occurred_at=timezone.now(), prev_hash="", hash="")
        return batch.add(_APPEND, event) if batch is not None else _APPEND.insert(event)
    head = audit_head_locked()
    if head is None:  # an emptied database (tests flush it); the first writer recreates the head
        AuditHead.objects.bulk_create([AuditHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True)
        head = audit_head_locked()
    fields["occurred_at"] = timezone.now()  # under the lock: on SQLite time never runs backwards along seq
    fields["seq"] = head.seq + 1
    fields["prev_hash"] = head.hash
    fields["hash"] = event_hash(fields)
    event = _APPEND.create(**fields, sealed_at=fields["occurred_at"])
    AuditHead.objects.filter(pk=1).update(seq=fields["seq"], hash=fields["hash"])
    return event
