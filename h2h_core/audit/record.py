"""Write audit events in the caller's transaction, chained under the head row's lock."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from h2h_core import request_context
from h2h_core.lock_objects import audit_head_qs_select_for_update
from h2h_core.models import AuditEvent, AuditHead
from h2h_core.models.audit import Outcome

from .chain import GENESIS_HASH, event_hash, format_instant


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


def actor_roles(actor) -> list[str]:
    if actor is None or not getattr(actor, "pk", None):
        return []
    # Reuse a prefetch when the caller made one; otherwise this is one small query.
    return sorted(group.name for group in actor.groups.all())


def check_deferred_constraints() -> None:
    """Run the transaction's deferred constraint checks now, and every later one at its statement.

    Django creates PostgreSQL foreign keys DEFERRABLE INITIALLY DEFERRED, so their checks, each a
    KEY SHARE lock on the referenced row, would otherwise run at COMMIT, after the audit head is
    locked. Checked here, any wait for a row another transaction holds happens before this one
    takes the head, and a transaction holding the head waits for no other lock (one statement).
    """
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


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
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction.

    Everything except the sequence number and the link to the previous hash is prepared before
    the head row is locked, so the lock (which serialises all writers) is held for two statements.
    Callers take their own locks first, and the transaction's foreign-key checks run before the
    head is locked (check_deferred_constraints): the head is really the last lock of a transaction.
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
        "ip": str(ipaddress.ip_address(meta.ip)) if meta.ip else None,
        "request_id": meta.request_id,
    }
    check_deferred_constraints()
    head = audit_head_qs_select_for_update().filter(pk=1).first()
    if head is None:  # an emptied database (tests flush it); the first writer recreates the head
        AuditHead.objects.bulk_create([AuditHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True)
        head = audit_head_qs_select_for_update().get(pk=1)
    fields["occurred_at"] = timezone.now()  # under the lock, so time never runs backwards along seq
    fields["seq"] = head.seq + 1
    fields["prev_hash"] = head.hash
    fields["hash"] = event_hash(fields)
    event = AuditEvent.objects.create(**fields)
    AuditHead.objects.filter(pk=1).update(seq=fields["seq"], hash=fields["hash"])
    return event
