"""Canonical serialisation and hashing of audit events.

An event's hash is SHA-256 over the canonical JSON of every field except `hash` itself, including
`seq` and `prev_hash`, so a changed, removed or inserted row breaks the chain where it happened.
Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, times as UTC ISO 8601 with
microseconds and a trailing Z. docs/audit.md shows how to recompute it outside the product.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64

HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_username",
    "actor_roles",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "before",
    "after",
    "reason",
    "ip",
    "request_id",
    "prev_hash",
)


def format_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_body(fields: dict) -> dict:
    body = {name: fields[name] for name in HASHED_FIELDS}
    body["occurred_at"] = format_instant(fields["occurred_at"])
    return body


def event_hash(fields: dict) -> str:
    """Return the SHA-256 hex digest of an event given as a mapping of its field values."""
    return hashlib.sha256(canonical_json(event_body(fields)).encode()).hexdigest()
